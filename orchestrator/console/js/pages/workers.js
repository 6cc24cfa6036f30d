// Worker pools and workers: heartbeats and what they run.
import { get } from "../api.js";
import { fill, h } from "../dom.js";
import { timeEl } from "../format.js";

export async function render(main) {
  const box = h("div");
  fill(main, h("h1", {}, "Workers"), box);
  const load = async () => {
    const { pools, workers } = await get("/api/workers");
    fill(box,
      h("h2", {}, "Pools"),
      h("table", { class: "list" },
        h("thead", {}, h("tr", {}, ["Pool", "Workers", "Capacity", "Running"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, pools.map((p) => h("tr", {}, h("td", {}, p.pool), h("td", {}, String(p.workers)), h("td", {}, String(p.capacity)), h("td", {}, String(p.running)))))),
      h("h2", {}, "Workers"),
      h("div", { class: "table-wrap" }, h("table", { class: "list" },
        h("thead", {}, h("tr", {}, ["Worker", "Pools", "State", "Last heartbeat", "Started", "Version", "Running"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, workers.map((w) => h("tr", { class: w.alive ? "" : "failed-row" },
          h("td", {}, h("code", {}, w.id)), h("td", {}, w.pools.join(", ")),
          h("td", {}, w.alive ? "✓ alive" : "✗ silent"),
          h("td", {}, timeEl(w.last_seen)), h("td", {}, timeEl(w.started_at)), h("td", {}, w.version),
          h("td", {}, w.running.length ? w.running.map((id) => h("a", { href: `#/executions/${encodeURIComponent(id)}` }, id.slice(0, 8), " ")) : "–")))))));
  };
  await load();
  const timer = setInterval(() => { if (!document.hidden) load().catch(() => {}); }, 5000);
  return () => clearInterval(timer);
}
