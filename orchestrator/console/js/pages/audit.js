// The audit log (admins): who did what, when, from where, and how it ended.
import { get, qs } from "../api.js";
import { field, fill, h } from "../dom.js";
import { timeEl } from "../format.js";

export async function render(main) {
  const actor = h("input", { name: "actor" });
  const action = h("input", { name: "action", placeholder: "POST or DELETE /api/keys" });
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter the audit log" },
    field("Actor", actor), field("Action starts with", action),
    h("div", { class: "buttons" }, h("button", { type: "submit" }, "Apply")));
  const body = h("tbody");
  const more = h("button", { type: "button", hidden: true }, "Older");
  let cursor = null;
  const row = (r) => h("tr", { class: r.outcome >= 400 ? "failed-row" : "" },
    h("td", {}, timeEl(r.at)), h("td", {}, r.actor), h("td", {}, r.role), h("td", {}, h("code", {}, r.action)),
    h("td", {}, h("code", {}, r.target)), h("td", {}, r.source), h("td", {}, String(r.outcome)));
  const load = async (append) => {
    const page = await get(`/api/audit${qs({ actor: actor.value, action: action.value, limit: 100, cursor: append ? cursor : undefined })}`);
    cursor = page.next;
    if (append) body.append(...page.items.map(row)); else fill(body, page.items.map(row));
    more.hidden = !cursor;
  };
  form.addEventListener("submit", (ev) => { ev.preventDefault(); load(false); });
  more.addEventListener("click", () => load(true));
  fill(main, h("h1", {}, "Audit log"), form, h("div", { class: "table-wrap" }, h("table", { class: "list" },
    h("thead", {}, h("tr", {}, ["When", "Actor", "Role", "Action", "Target", "Source", "Outcome"].map((c) => h("th", { scope: "col" }, c)))), body)), more);
  await load(false);
}
