// The approvals inbox: pending requests with their context; approve or reject with a comment.
import { errorText, get, post } from "../api.js";
import { field, fill, h, toast } from "../dom.js";
import { resource, timeEl } from "../format.js";

export async function render(main, _param, me) {
  const list = h("div", { class: "cards" });
  fill(main, h("h1", {}, "Approvals"), list);
  const load = async () => {
    const page = await get("/api/executions?approval=pending&limit=200");
    fill(list, page.items.length ? page.items.map((e) => card(e, me, load)) : h("p", { class: "muted" }, "Nothing waits for approval."));
  };
  await load();
  const timer = setInterval(() => { if (!document.hidden && !list.contains(document.activeElement)) load().catch(() => {}); }, 5000);
  return () => clearInterval(timer);
}

function card(e, me, reload) {
  const a = e.approval;
  const comment = h("textarea", { name: "comment", rows: 2 });
  const may = me.role === "operator" || me.role === "admin";
  const decide = (verdict) => async () => {
    try {
      await post(`/api/executions/${encodeURIComponent(e.exec_id)}/${verdict}`, { comment: comment.value || undefined });
      toast(verdict === "approve" ? "Approved" : "Rejected");
      await reload();
    } catch (err) { toast(errorText(err)); }
  };
  const vars = Object.entries(e.env || {});
  return h("article", { class: "card approval", dataset: { exec: e.exec_id }, "aria-labelledby": `ap-${e.exec_id}` },
    h("h2", { id: `ap-${e.exec_id}` }, h("a", { href: `#/executions/${encodeURIComponent(e.exec_id)}` }, e.name || e.schema_id)),
    h("dl", { class: "facts" },
      [["Schema", e.schema_id], ["Runbook", `${e.runbook}${e.runbook_commit ? ` @ ${e.runbook_commit.slice(0, 12)}` : ""}`],
        ["Resource", resource(e) || "–"], ["Requested by", a.requested_by], ["Requested", timeEl(e.requested_at)],
        ["Expires", timeEl(a.expires_at)], ["Approvals", `${a.approvals.length} of ${a.required}`]]
        .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    vars.length ? h("details", {}, h("summary", {}, `Variables (${vars.length})`),
      h("table", { class: "kv" }, h("tbody", {}, vars.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, h("code", {}, k)), h("td", {}, v)))))) : null,
    may ? [field("Comment", comment),
      h("div", { class: "buttons" },
        h("button", { type: "button", class: "primary", onclick: decide("approve") }, "Approve"),
        h("button", { type: "button", class: "danger", onclick: decide("reject") }, "Reject"))] : null);
}
