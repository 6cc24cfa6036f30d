// Terminal colours in runbook output: rendered as styled spans, or stripped.
import { h } from "./dom.js";

// SGR sequences (colours, bold) and any other CSI / OSC escape.
const ESC = /\x1b\[([0-9;]*)m|\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g;

export function strip(text) {
  return text.replace(ESC, "");
}

/** Nodes for `text` with colours as classes (`ansi-fg-1`, `ansi-bold`…). */
export function render(text) {
  const out = [];
  let style = { fg: null, bg: null, bold: false };
  let last = 0;
  const push = (s) => {
    if (!s) return;
    const cls = [];
    if (style.fg !== null) cls.push(`ansi-fg-${style.fg}`);
    if (style.bg !== null) cls.push(`ansi-bg-${style.bg}`);
    if (style.bold) cls.push("ansi-bold");
    out.push(cls.length ? h("span", { class: cls.join(" ") }, s) : document.createTextNode(s));
  };
  for (const m of text.matchAll(ESC)) {
    push(text.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[1] === undefined) continue;
    const codes = m[1] === "" ? [0] : m[1].split(";").map(Number);
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (c === 0) style = { fg: null, bg: null, bold: false };
      else if (c === 1) style.bold = true;
      else if (c === 22) style.bold = false;
      else if (c >= 30 && c <= 37) style.fg = c - 30;
      else if (c >= 90 && c <= 97) style.fg = c - 90 + 8;
      else if (c === 39) style.fg = null;
      else if (c >= 40 && c <= 47) style.bg = c - 40;
      else if (c === 49) style.bg = null;
      else if ((c === 38 || c === 48) && codes[i + 1] === 5) i += 2; // 256 colours: ignored
      else if ((c === 38 || c === 48) && codes[i + 1] === 2) i += 4; // true colour: ignored
    }
  }
  push(text.slice(last));
  return out;
}
