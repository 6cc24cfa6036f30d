// Reports, not alerts: runs per status over time, the slowest and most failing schemas,
// and how long an alert waits for its runbook to finish.
import { get, qs } from "../api.js";
import { fill, h } from "../dom.js";
import { duration, isBad } from "../format.js";

const DAYS = 7;
const MAX_RUNS = 2000;
const KINDS = [["succeeded", "good"], ["failed", "bad"], ["other", "neutral"]];

export async function render(main) {
  const since = new Date(Date.now() - DAYS * 86400e3).toISOString();
  let items = [];
  let cursor;
  do {
    const page = await get(`/api/executions${qs({ since, limit: 1000, cursor })}`);
    items = items.concat(page.items);
    cursor = page.next;
  } while (cursor && items.length < MAX_RUNS);
  fill(main, h("h1", {}, "Dashboard"),
    h("p", { class: "muted" }, `The last ${DAYS} days: ${items.length} runs${cursor ? ` (the newest ${items.length})` : ""}.`),
    h("div", { class: "grid" }, perDay(items), mttr(items), slowest(items), failing(items)));
}

function kindOf(e) {
  if (e.status === "succeeded") return "succeeded";
  if (isBad(e.status)) return "failed";
  return "other";
}

function perDay(items) {
  const days = [];
  for (let i = DAYS - 1; i >= 0; i--) days.push(new Date(Date.now() - i * 86400e3).toISOString().slice(0, 10));
  const counts = new Map(days.map((d) => [d, { succeeded: 0, failed: 0, other: 0 }]));
  for (const e of items) {
    const c = counts.get(e.requested_at.slice(0, 10));
    if (c) c[kindOf(e)] += 1;
  }
  const max = Math.max(1, ...[...counts.values()].map((c) => c.succeeded + c.failed + c.other));
  return h("section", { class: "card", "aria-labelledby": "d-days" }, h("h2", { id: "d-days" }, "Runs per day"),
    h("div", { class: "bars", "aria-hidden": "true" }, days.map((d) => {
      const c = counts.get(d);
      return h("div", { class: "bar", title: `${d}: ${c.succeeded} succeeded, ${c.failed} failed, ${c.other} other` },
        KINDS.map(([k, cls]) => h("span", { class: `seg ${cls}`, style: { height: `${(c[k] / max) * 100}%` } })),
        h("small", {}, d.slice(5)));
    })),
    h("table", { class: "list compact" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Day"), KINDS.map(([k]) => h("th", { scope: "col" }, k)))),
      h("tbody", {}, days.map((d) => h("tr", {}, h("th", { scope: "row" }, d), KINDS.map(([k]) => h("td", {}, String(counts.get(d)[k]))))))));
}

function bySchema(items) {
  const m = new Map();
  for (const e of items) {
    const s = m.get(e.schema_id) || { runs: 0, failed: 0, ms: 0, timed: 0 };
    s.runs += 1;
    if (isBad(e.status)) s.failed += 1;
    if (e.started_at && e.finished_at) { s.ms += new Date(e.finished_at) - new Date(e.started_at); s.timed += 1; }
    m.set(e.schema_id, s);
  }
  return [...m.entries()];
}

function table(id, title, head, rows) {
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title),
    rows.length ? h("table", { class: "list compact" }, h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => (i === 0 ? h("th", { scope: "row" }, h("a", { href: `#/catalog/${encodeURIComponent(c)}` }, c)) : h("td", {}, c)))))))
      : h("p", { class: "muted" }, "No runs yet."));
}

function slowest(items) {
  const rows = bySchema(items).filter(([, s]) => s.timed).sort((a, b) => b[1].ms / b[1].timed - a[1].ms / a[1].timed).slice(0, 5)
    .map(([id, s]) => [id, duration(s.ms / s.timed), String(s.timed)]);
  return table("d-slow", "Slowest schemas", ["Schema", "Mean duration", "Runs"], rows);
}

function failing(items) {
  const rows = bySchema(items).filter(([, s]) => s.failed).sort((a, b) => b[1].failed - a[1].failed).slice(0, 5)
    .map(([id, s]) => [id, `${s.failed} of ${s.runs}`, `${Math.round((100 * s.failed) / s.runs)} %`]);
  return table("d-fail", "Most failing schemas", ["Schema", "Failed", "Rate"], rows);
}

function mttr(items) {
  const alerts = items.filter((e) => e.initiator === "alert" && e.finished_at);
  const mean = alerts.length ? alerts.reduce((t, e) => t + (new Date(e.finished_at) - new Date(e.requested_at)), 0) / alerts.length : null;
  return h("section", { class: "card", "aria-labelledby": "d-mttr" }, h("h2", { id: "d-mttr" }, "Alert to finished runbook"),
    h("p", { class: "big", id: "mttr" }, mean === null ? "–" : duration(mean)),
    h("p", { class: "muted" }, `Mean over ${alerts.length} alert-triggered runs.`));
}
