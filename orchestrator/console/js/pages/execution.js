// One execution: its timeline, what the runbook received, and its output, live.
import { errorText, get, post, qs } from "../api.js";
import { confirmDialog, fill, h, toast } from "../dom.js";
import { badge, duration, isActive, ran, timeEl } from "../format.js";
import * as ansi from "../ansi.js";

export async function render(main, id, me) {
  let e = await get(`/api/executions/${encodeURIComponent(id)}`);
  const head = h("div", { class: "exec-head" });
  const details = h("div", { class: "exec-details" });
  const out = output(id);
  fill(main, head, details, out.el);
  const paint = () => {
    fill(head,
      h("h1", {}, e.name || e.schema_id, " ", badge(e.status), e.dry_run ? h("span", { class: "tag" }, "dry run") : null),
      h("p", { class: "muted" }, "Execution ", h("code", {}, e.exec_id)),
      actions(e, me, async () => { e = await get(`/api/executions/${encodeURIComponent(id)}`); paint(); }));
    fill(details, summary(e), timeline(e), variables(e), notifications(e));
  };
  paint();
  out.start(async (status) => {
    if (status !== e.status) {
      e = await get(`/api/executions/${encodeURIComponent(id)}`);
      paint();
    }
  });
  return () => out.stop();
}

function actions(e, me, refresh) {
  const box = h("div", { class: "buttons" });
  const may = me.role === "operator" || me.role === "admin";
  if (may && isActive(e.status)) {
    box.append(h("button", { type: "button", class: "danger", id: "cancel", onclick: async () => {
      if (!(await confirmDialog("Cancel this execution?", `${e.name || e.schema_id} will be stopped${e.status === "running" ? " (its runbook is killed)" : ""}.`, "Cancel execution"))) return;
      try { await post(`/api/executions/${encodeURIComponent(e.exec_id)}/cancel`); toast("Cancelled"); await refresh(); } catch (err) { toast(errorText(err)); }
    } }, "Cancel…"));
  }
  if (may && !isActive(e.status)) {
    box.append(h("button", { type: "button", id: "rerun", onclick: async () => {
      if (!(await confirmDialog("Run it again?", `${e.schema_id} runs again${e.dry_run ? " as a dry run" : ""}, with the same request.`, "Run again"))) return;
      try {
        const r = await post(`/api/Trigger${qs({ id: e.schema_id, dry_run: e.dry_run ? "true" : undefined })}`, e.request_body || undefined);
        location.hash = `#/executions/${encodeURIComponent(r.exec_id)}`;
      } catch (err) { toast(errorText(err)); }
    } }, "Run again…"));
  }
  return box;
}

function dl(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function summary(e) {
  const verification = e.verification
    ? h("a", { href: `#/executions/${encodeURIComponent(e.verification.exec_id)}` }, e.verification.status || "verification run")
    : null;
  return h("section", { "aria-labelledby": "s-summary" }, h("h2", { id: "s-summary" }, "Summary"), dl([
    ["Schema", h("a", { href: `#/catalog/${encodeURIComponent(e.schema_id)}` }, e.schema_id)],
    ["Runbook", h("code", {}, e.runbook, e.run_args ? ` ${e.run_args}` : "")],
    ["Commit", e.runbook_commit ? h("code", {}, e.runbook_commit) : "working tree"],
    ["Pool", e.worker], ["Worker", e.worker_id], ["Sandbox", e.sandbox],
    ["Initiator", e.initiator],
    ["Requested", timeEl(e.requested_at)], ["Started", timeEl(e.started_at)], ["Finished", timeEl(e.finished_at)],
    ["Duration", duration(ran(e))],
    ["Exit code", e.exit_code === null ? "" : String(e.exit_code)],
    ["Reason", e.error],
    ["Verification", verification],
    ["Approval", e.approval ? `${e.approval.approvals.length}/${e.approval.required} approvals, until ${new Date(e.approval.expires_at).toLocaleString()}` : ""],
  ]));
}

function timeline(e) {
  const items = (e.transitions || []).map((t) => h("li", {},
    timeEl(t.at), " ", t.from ? `${t.from} → ` : "", h("strong", {}, t.to),
    t.by ? ` by ${t.by}` : "", t.reason ? h("span", { class: "muted" }, ` — ${t.reason}`) : ""));
  for (const a of (e.approval && e.approval.approvals) || []) {
    items.push(h("li", {}, timeEl(a.at), " ", h("strong", {}, a.decision || "decision"), ` by ${a.by}${a.via ? ` (${a.via})` : ""}`, a.comment ? ` — “${a.comment}”` : ""));
  }
  return h("section", { "aria-labelledby": "s-timeline" }, h("h2", { id: "s-timeline" }, "Timeline"),
    items.length ? h("ol", { class: "timeline" }, items) : h("p", { class: "muted" }, "Requested ", timeEl(e.requested_at), "; nothing happened since."));
}

function variables(e) {
  const env = Object.entries(e.env || {});
  const secrets = (e.secrets || []).map((s) => h("li", {}, h("code", {}, s), " (a secret: its value is never shown)"));
  return h("section", { "aria-labelledby": "s-vars" }, h("h2", { id: "s-vars" }, "Variables"),
    env.length ? h("table", { class: "kv" }, h("tbody", {}, env.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, h("code", {}, k)), h("td", {}, h("code", {}, v))))))
      : h("p", { class: "muted" }, "No alert variables."),
    secrets.length ? h("ul", {}, secrets) : null);
}

function notifications(e) {
  const n = e.notifications || [];
  return h("section", { "aria-labelledby": "s-notes" }, h("h2", { id: "s-notes" }, "Notifications"),
    n.length ? h("ul", {}, n.map((x) => h("li", {}, `${x.channel} ${x.action}`, x.team ? ` (${x.team})` : "", `: ${x.state}`,
      x.last_error ? h("span", { class: "muted" }, ` — ${x.last_error}`) : ""))) : h("p", { class: "muted" }, "None sent."));
}

/** The output panel: streamed live, with follow/pause, search, colours and download. */
function output(id) {
  let text = "";
  let source = null;
  let paused = false;
  const pre = h("pre", { class: "output", id: "output", tabindex: "0", "aria-label": "Runbook output", "aria-live": "off" });
  const follow = h("input", { type: "checkbox", id: "follow", checked: true });
  const colours = h("input", { type: "checkbox", id: "colours", checked: true });
  const search = h("input", { type: "search", id: "out-search", placeholder: "Find in output" });
  const state = h("span", { class: "muted", id: "stream-state", "aria-live": "polite" });
  const pause = h("button", { type: "button", id: "pause", "aria-pressed": "false" }, "Pause");
  const download = h("button", { type: "button", id: "download" }, "Download log");
  const paint = () => {
    if (paused) return;
    const q = search.value;
    const shown = colours.checked ? text : ansi.strip(text);
    if (q) {
      const lines = ansi.strip(shown).split("\n").filter((l) => l.toLowerCase().includes(q.toLowerCase()));
      fill(pre, lines.map((l) => highlight(l, q)).flatMap((l) => [l, "\n"]));
    } else {
      fill(pre, colours.checked ? ansi.render(shown) : shown);
    }
    if (follow.checked) pre.scrollTop = pre.scrollHeight;
  };
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
    paint();
  });
  for (const c of [colours, search]) c.addEventListener("input", paint);
  download.addEventListener("click", async () => {
    let all = "";
    let offset = 0;
    for (;;) {
      const r = await get(`/api/executions/${encodeURIComponent(id)}/output${qs({ offset, limit: 1048576 })}`);
      all += r.data;
      if (r.next >= r.size || !r.data) break;
      offset = r.next;
    }
    const a = h("a", { href: URL.createObjectURL(new Blob([all], { type: "text/plain" })), download: `${id}.log` });
    document.body.append(a);
    a.click();
    a.remove();
  });
  const el = h("section", { "aria-labelledby": "s-output", class: "output-box" },
    h("h2", { id: "s-output" }, "Output"),
    h("div", { class: "toolbar" },
      h("label", {}, follow, " Follow"), pause,
      h("label", {}, colours, " Colours"),
      h("label", { class: "sr-only", for: "out-search" }, "Find in output"), search,
      download, state),
    pre);
  return {
    el,
    start(onStatus) {
      source = new EventSource(`/api/executions/${encodeURIComponent(id)}/stream`);
      state.textContent = "connecting…";
      source.addEventListener("open", () => { state.textContent = "live"; });
      source.addEventListener("output", (ev) => {
        const d = JSON.parse(ev.data);
        text += d.text;
        paint();
      });
      source.addEventListener("status", (ev) => onStatus(JSON.parse(ev.data).status));
      source.addEventListener("end", (ev) => {
        state.textContent = "ended";
        source.close();
        onStatus(JSON.parse(ev.data).status);
        paint();
      });
      source.addEventListener("error", () => {
        if (source.readyState === EventSource.CLOSED) state.textContent = "disconnected";
        else state.textContent = "reconnecting…";
      });
    },
    stop() { if (source) source.close(); },
  };
}

function highlight(line, q) {
  const i = line.toLowerCase().indexOf(q.toLowerCase());
  if (i < 0) return line;
  return h("span", {}, line.slice(0, i), h("mark", {}, line.slice(i, i + q.length)), line.slice(i + q.length));
}
