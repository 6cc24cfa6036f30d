// Schedules and their next runs.
import { get } from "../api.js";
import { fill, h } from "../dom.js";
import { timeEl } from "../format.js";

export async function render(main) {
  const { schedules, file } = await get("/api/schedules");
  fill(main, h("h1", {}, "Schedules"),
    file ? h("p", { class: "note" }, `Loaded from ${file} at start-up.`) : null,
    schedules.length ? h("div", { class: "table-wrap" }, h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["Schedule", "Schema", "Cron", "Time zone", "Enabled", "Next run", "Last run", "Defined in"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, schedules.map((s) => h("tr", {},
        h("td", {}, s.id),
        h("td", {}, h("a", { href: `#/catalog/${encodeURIComponent(s.schema)}` }, s.schema)),
        h("td", {}, h("code", {}, s.cron)), h("td", {}, s.tz),
        h("td", {}, s.enabled ? "yes" : "no (paused)"),
        h("td", {}, timeEl(s.next_run)),
        h("td", {}, s.last_run ? timeEl(s.last_run.at || s.last_run) : "–"),
        h("td", {}, s.source))))))
      : h("p", { class: "muted" }, "No schedules."));
}
