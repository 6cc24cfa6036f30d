// Times, durations and statuses as people read them.
import { h } from "./dom.js";

const BAD = new Set(["failed", "error", "timeout", "lost", "rejected"]);
const ACTIVE = new Set(["accepted", "running", "pending"]);
const ICON = {
  succeeded: "✓", failed: "✗", error: "✗", timeout: "◴", lost: "?", rejected: "⊘",
  stopped: "■", skipped: "↷", running: "▶", accepted: "…", pending: "◔",
};

export const isBad = (status) => BAD.has(status);
export const isActive = (status) => ACTIVE.has(status);

/** A status badge: an icon and the word (never colour alone). */
export function badge(status) {
  const kind = BAD.has(status) ? "bad" : ACTIVE.has(status) ? "active" : status === "succeeded" ? "good" : "neutral";
  return h("span", { class: `badge ${kind}`, "data-status": status },
    h("span", { "aria-hidden": "true" }, ICON[status] || "•"), " ", status);
}

export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

export function timeEl(iso) {
  if (!iso) return "–";
  return h("time", { datetime: iso, title: iso }, when(iso));
}

export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** How long an execution ran (or has been running). */
export function ran(e) {
  if (!e.started_at) return null;
  const end = e.finished_at ? new Date(e.finished_at) : new Date();
  return end - new Date(e.started_at);
}

/** The resource an execution acts on, from its variables. */
export function resource(e) {
  const env = e.env || {};
  return env.RESOURCE_NAME || env.AKS_CLUSTER || env.RESOURCE_ID || "";
}
