// Sign in with an API key (kept by the server behind a cookie), or single sign-on.
import { ApiError, get, post } from "../api.js";
import { field, fill, h } from "../dom.js";

export async function render(main, message, done) {
  const key = h("input", { type: "password", name: "key", autocomplete: "off", required: true, spellcheck: "false" });
  const err = h("p", { class: "error-box", role: "alert", hidden: !message }, message || "");
  const form = h("form", { class: "card signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    err,
    field("API key", key, "A viewer, operator or admin key. It is kept by the server, not in this browser."),
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, "Sign in")));
  const sso = h("p", { class: "sso", hidden: true });
  form.append(sso);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    try {
      const who = await post("/api/session", { key: key.value });
      key.value = "";
      done(who);
    } catch (e) {
      err.textContent = e instanceof ApiError && e.status === 401 ? "That key is unknown, revoked or expired." : e.message;
      err.hidden = false;
      key.focus();
    }
  });
  fill(main, form);
  key.focus();
  try {
    const cfg = await get("/api/session/providers");
    if (cfg && cfg.oidc) {
      fill(sso, h("a", { class: "button", href: cfg.oidc.login_url }, `Sign in with ${cfg.oidc.name || "single sign-on"}`));
      sso.hidden = false;
    }
  } catch { /* no single sign-on */ }
}
