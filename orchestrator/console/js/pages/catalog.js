// The catalog: every schema with what it runs, where, and how its last runs went.
import { get } from "../api.js";
import { fill, h } from "../dom.js";
import { badge } from "../format.js";

export async function render(main) {
  const [{ schemas, file }, recent] = await Promise.all([get("/api/schemas"), get("/api/executions?limit=500")]);
  const runs = new Map();
  for (const e of recent.items) {
    const list = runs.get(e.schema_id) || [];
    if (list.length < 5) list.push(e);
    runs.set(e.schema_id, list);
  }
  const rows = schemas.map((s) => h("tr", { dataset: { schema: s.id } },
    h("td", {}, h("a", { href: `#/catalog/${encodeURIComponent(s.id)}` }, s.id), s.enabled === false ? h("span", { class: "tag" }, "disabled") : null,
      h("div", { class: "muted small" }, s.name)),
    h("td", {}, h("code", {}, s.runbook)),
    h("td", {}, s.worker),
    h("td", {}, s.oncall ? "yes" : "no"),
    h("td", {}, s.require_approval ? `${s.approval.required} needed` : "no"),
    h("td", {}, s.schedule ? h("code", {}, s.schedule) : "–"),
    h("td", {}, limits(s)),
    h("td", { class: "recent" }, (runs.get(s.id) || []).map((e) => h("a", { href: `#/executions/${encodeURIComponent(e.exec_id)}`, title: e.requested_at }, badge(e.status))))));
  fill(main,
    h("h1", {}, "Catalog"),
    file ? h("p", { class: "note" }, `Loaded from ${file} at start-up: a change made here is replaced by that file at the next start.`) : null,
    h("div", { class: "table-wrap" }, h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["Schema", "Runbook", "Pool", "On-call", "Approval", "Schedule", "Limits", "Recent runs"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows))));
}

export function limits(s) {
  const p = s.policy || {};
  const parts = [];
  if (p.max_concurrency) parts.push(`${p.max_concurrency} at once`);
  if (p.max_runs_per_hour) parts.push(`${p.max_runs_per_hour}/h`);
  if (p.max_runs_per_hour_per_resource) parts.push(`${p.max_runs_per_hour_per_resource}/h per resource`);
  if (p.dry_run) parts.push("dry run by default");
  return parts.join(", ") || "–";
}
