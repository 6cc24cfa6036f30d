// Executions: newest first, filtered, refreshed every few seconds while shown.
import { get, qs } from "../api.js";
import { field, fill, h } from "../dom.js";
import { badge, duration, isBad, ran, resource, timeEl } from "../format.js";

const STATUSES = ["", "pending", "accepted", "running", "succeeded", "failed", "error", "timeout", "lost", "stopped", "skipped", "rejected"];
const REFRESH_MS = 3000;

export async function render(main) {
  const saved = new URLSearchParams(sessionStorage.getItem("cloudo.filters") || "");
  const input = (name, type = "text") => h("input", { name, type, value: saved.get(name) || "" });
  const status = h("select", { name: "status" }, STATUSES.map((s) => h("option", { value: s, selected: saved.get("status") === s }, s || "any")));
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter executions" },
    field("Status", status),
    field("Schema", input("schema_id")),
    field("Initiator", input("initiator")),
    field("From", input("since", "datetime-local")),
    field("To", input("until", "datetime-local")),
    field("Text", input("q", "search")),
    h("div", { class: "buttons" }, h("button", { type: "submit" }, "Apply")));
  const body = h("tbody");
  const table = h("table", { class: "list executions" },
    h("caption", { class: "sr-only" }, "Executions, newest first"),
    h("thead", {}, h("tr", {}, ["Status", "Schema", "Resource", "Initiator", "Requested", "Started", "Finished", "Duration"].map((c) => h("th", { scope: "col" }, c)))),
    body);
  const more = h("button", { type: "button", hidden: true }, "Older");
  const note = h("p", { class: "muted", "aria-live": "polite" });
  fill(main, h("h1", {}, "Executions"), form, h("div", { class: "table-wrap" }, table), note, more);

  let cursor = null;
  let extra = [];
  const params = () => {
    const f = new FormData(form);
    const p = {};
    for (const [k, v] of f.entries()) if (v) p[k] = k === "since" || k === "until" ? new Date(v).toISOString() : v;
    return p;
  };
  const load = async () => {
    const page = await get(`/api/executions${qs({ ...params(), limit: 50 })}`);
    cursor = page.next;
    fill(body, [...page.items, ...extra].map(row));
    more.hidden = !cursor;
    note.textContent = page.items.length || extra.length ? "" : "No executions match.";
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("cloudo.filters", new URLSearchParams(params()).toString());
    extra = [];
    load();
  });
  more.addEventListener("click", async () => {
    const page = await get(`/api/executions${qs({ ...params(), limit: 50, cursor })}`);
    extra = extra.concat(page.items);
    cursor = page.next;
    body.append(...page.items.map(row));
    more.hidden = !cursor;
  });
  await load();
  const timer = setInterval(() => { if (!document.hidden) load().catch(() => {}); }, REFRESH_MS);
  return () => clearInterval(timer);
}

export function row(e) {
  const link = h("a", { href: `#/executions/${encodeURIComponent(e.exec_id)}` }, e.name || e.schema_id);
  return h("tr", { class: isBad(e.status) ? "failed-row" : "", dataset: { exec: e.exec_id, status: e.status } },
    h("td", {}, badge(e.status), e.dry_run ? h("span", { class: "tag" }, "dry run") : null),
    h("td", {}, link, h("div", { class: "muted small" }, e.schema_id)),
    h("td", {}, resource(e)),
    h("td", {}, e.initiator),
    h("td", {}, timeEl(e.requested_at)),
    h("td", {}, timeEl(e.started_at)),
    h("td", {}, timeEl(e.finished_at)),
    h("td", {}, duration(ran(e))));
}
