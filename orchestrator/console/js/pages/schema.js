// One schema: its settings, its runbook's source, a trigger, and (admins) an editor.
import { errorField, errorText, get, post, put, qs } from "../api.js";
import { confirmDialog, field, fieldError, fill, h, toast } from "../dom.js";
import { limits } from "./catalog.js";

// What the editor shows as fields, in order; other settings keep their stored values.
const EDITABLE = [
  ["name", "text"], ["description", "text"], ["runbook", "text"], ["run_args", "text"],
  ["worker", "text"], ["oncall", "bool"], ["require_approval", "bool"], ["timeout", "number"],
  ["schedule", "text"], ["enabled", "bool"],
];

export async function render(main, id, me) {
  const s = await get(`/api/schemas/${encodeURIComponent(id)}`);
  const source = h("pre", { class: "source", tabindex: "0", "aria-label": "Runbook source" }, "Loading…");
  fill(main,
    h("h1", {}, s.name || s.id, " ", h("span", { class: "muted" }, s.id)),
    s.description ? h("p", {}, s.description) : null,
    h("dl", { class: "facts" },
      [["Runbook", s.runbook], ["Arguments", s.run_args || "–"], ["Pool", s.worker], ["On-call", s.oncall ? "yes" : "no"],
        ["Approval", s.require_approval ? `${s.approval.required} approver(s), ${s.approval.timeout_secs / 60} min` : "not needed"],
        ["Schedule", s.schedule ? `${s.schedule} (${s.schedule_tz || "UTC"})` : "–"], ["Limits", limits(s)],
        ["Timeout", `${s.timeout_secs} s`], ["Tags", (s.tags || []).join(", ") || "–"]]
        .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    me.role === "operator" || me.role === "admin" ? trigger(s) : null,
    h("section", { "aria-labelledby": "s-src" }, h("h2", { id: "s-src" }, "Runbook source"), source),
    me.role === "admin" ? editor(s) : null,
    h("p", {}, h("a", { href: `#/executions` }, "All executions")));
  try {
    const rb = await get(`/api/runbooks/${s.runbook.split("/").map(encodeURIComponent).join("/")}${qs({ ref: s.runbook_ref })}`);
    fill(source, rb.content);
    source.before(h("p", { class: "muted" }, rb.commit ? `At commit ${rb.commit}` : "Working tree"));
  } catch (e) {
    fill(source, errorText(e));
  }
}

function trigger(s) {
  const dry = h("input", { type: "checkbox", name: "dry_run", checked: !!(s.policy && s.policy.dry_run) });
  const body = h("textarea", { name: "body", rows: 4, spellcheck: "false", placeholder: "{ }" });
  const form = h("form", { class: "card", "aria-labelledby": "s-run" },
    h("h2", { id: "s-run" }, "Run it"),
    h("div", { class: "field" }, h("label", {}, dry, " Dry run (the runbook only says what it would do)")),
    field("Request body (optional JSON, as an alert would send)", body),
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary", id: "trigger" }, "Run…")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    fieldError(form, "body", "");
    let payload;
    if (body.value.trim()) {
      try { payload = JSON.parse(body.value); } catch (e) { fieldError(form, "body", `Not JSON: ${e.message}`); return; }
    }
    const what = `${s.id} runs ${s.runbook}${dry.checked ? " as a dry run" : ""}${s.require_approval ? " once approved" : ""}.`;
    if (!(await confirmDialog(`Run ${s.name || s.id}?`, what, "Run"))) return;
    try {
      const r = await post(`/api/Trigger${qs({ id: s.id, dry_run: dry.checked ? "true" : "false" })}`, payload);
      location.hash = `#/executions/${encodeURIComponent(r.exec_id)}`;
    } catch (e) { toast(errorText(e)); }
  });
  return form;
}

function editor(s) {
  const controls = {};
  const fields = EDITABLE.map(([name, kind]) => {
    const value = s.entity[name];
    const c = kind === "bool"
      ? h("select", { name }, h("option", { value: "true", selected: value === true }, "yes"), h("option", { value: "false", selected: value !== true }, "no"))
      : h("input", { name, type: kind === "number" ? "number" : "text", value: value ?? "" });
    controls[name] = [c, kind];
    return field(name, c);
  });
  const summary = h("p", { class: "error-box", role: "alert", hidden: true });
  const form = h("form", { class: "card editor", "aria-labelledby": "s-edit", novalidate: true },
    h("h2", { id: "s-edit" }, "Edit"), summary, fields,
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary", id: "save" }, "Save")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    summary.hidden = true;
    for (const name of Object.keys(controls)) fieldError(form, name, "");
    // Every stored setting, as PUT takes it; the form changes only its fields.
    const entity = { ...s.entity, partition_key: s.partition_key };
    for (const [name, [c, kind]] of Object.entries(controls)) {
      if (kind === "bool") entity[name] = c.value === "true";
      else if (kind === "number") entity[name] = c.value === "" ? undefined : Number(c.value);
      else entity[name] = c.value;
      if (entity[name] === "" && name === "schedule") delete entity[name];
      if (entity[name] === undefined) delete entity[name];
    }
    try {
      await put(`/api/schemas/${encodeURIComponent(s.id)}`, entity);
      toast("Saved");
      // Only if this page is still shown (it may have been left while the save ran: a
      // navigation takes the old page out at once, even while the next one loads).
      if (form.isConnected) window.dispatchEvent(new Event("cloudo:refresh"));
    } catch (e) {
      const f = errorField(e);
      if (!(f && fieldError(form, f, e.message.replace(/^.*?field "[^"]+":\s*/, "")))) {
        summary.textContent = errorText(e);
        summary.hidden = false;
      }
    }
  });
  return form;
}
