// Building the page: elements from data, never from HTML strings (text is always text).

/** An element: `h("a", {href: "#/x", class: "b", onclick: f}, "text", child…)`. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v);
    } else if (k === "class") {
      el.className = v;
    } else if (k === "style" && typeof v === "object") {
      // Through the CSSOM: the Content-Security-Policy forbids style attributes.
      Object.assign(el.style, v);
    } else if (k === "dataset") {
      Object.assign(el.dataset, v);
    } else if (v === true) {
      el.setAttribute(k, "");
    } else {
      el.setAttribute(k, String(v));
    }
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces what `el` holds. */
export function fill(el, ...children) {
  el.replaceChildren();
  add(el, children);
  return el;
}

/** A labelled form field: the label, the control, and a place for its error. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const err = h("p", { class: "field-error", id: `${id}-error`, "aria-live": "polite" });
  control.setAttribute("aria-describedby", `${id}-error`);
  return h("div", { class: "field", dataset: { field: control.name || "" } },
    h("label", { for: id }, label), control, hint ? h("p", { class: "hint" }, hint) : null, err);
}

/** Shows `message` under the field named `name` in `form` (or clears it with ""). */
export function fieldError(form, name, message) {
  const box = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
  if (!box) return false;
  const control = box.querySelector("input, select, textarea");
  box.querySelector(".field-error").textContent = message;
  if (control) control.setAttribute("aria-invalid", message ? "true" : "false");
  return true;
}

/** A short message for everyone, read out by screen readers. */
export function toast(message) {
  const t = document.getElementById("toast");
  t.textContent = message;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.textContent = ""; }, 6000);
}

/** Asks before an action; resolves to true when confirmed. */
export function confirmDialog(title, body, action) {
  return new Promise((resolve) => {
    const dlg = h("dialog", { class: "confirm", "aria-labelledby": "dlg-title" },
      h("h2", { id: "dlg-title" }, title),
      h("p", {}, body),
      h("form", { method: "dialog", class: "buttons" },
        h("button", { value: "cancel", type: "submit" }, "Cancel"),
        h("button", { value: "ok", type: "submit", class: "primary", id: "dlg-ok" }, action)));
    dlg.addEventListener("close", () => { resolve(dlg.returnValue === "ok"); dlg.remove(); });
    document.body.append(dlg);
    dlg.showModal();
    dlg.querySelector("#dlg-ok").focus();
  });
}
