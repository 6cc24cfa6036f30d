// Routing rules, and a tester: which runbook would this alert run?
import { errorText, post, get, qs } from "../api.js";
import { field, fill, h } from "../dom.js";

export async function render(main) {
  const { rules, file } = await get("/api/routes");
  const payload = h("textarea", { name: "payload", rows: 10, spellcheck: "false", placeholder: "An Azure Monitor (common schema) or Alertmanager payload" });
  const source = h("select", { name: "source" }, h("option", { value: "azure" }, "Azure Monitor"), h("option", { value: "alertmanager" }, "Alertmanager"));
  const answer = h("div", { "aria-live": "polite", id: "route-answer" });
  const form = h("form", { class: "card", "aria-labelledby": "s-test" },
    h("h2", { id: "s-test" }, "Which runbook would this alert run?"),
    field("Source", source), field("Alert payload (JSON)", payload),
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, "Test")), answer);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const r = await post(`/api/routes/test${qs({ source: source.value })}`, payload.value || "{}");
      fill(answer, h("pre", { class: "source" }, JSON.stringify(r, null, 2)));
    } catch (e) {
      fill(answer, h("p", { class: "error-box", role: "alert" }, errorText(e)));
    }
  });
  fill(main, h("h1", {}, "Routing"),
    file ? h("p", { class: "note" }, `Loaded from ${file} at start-up.`) : null,
    rules.length ? h("ol", { class: "rules" }, rules.map((r) => h("li", {}, h("pre", { class: "source" }, JSON.stringify(r, null, 2)))))
      : h("p", { class: "muted" }, "No rules: alerts run the schema their id names (ClouDO's default)."),
    form);
}
