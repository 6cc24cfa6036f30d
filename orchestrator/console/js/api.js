// The API, with the session cookie (sent by the browser) and the session's CSRF token.

let csrf = null;

export function setCsrf(token) { csrf = token; }

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || "";
    this.field = e.field || (body && body.field) || null;
    this.body = body;
  }
}

/** `method path`, with a JSON body if given; the parsed answer, or throws ApiError. */
export async function api(method, path, body, extraHeaders = {}) {
  const headers = { Accept: "application/json", ...extraHeaders };
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = typeof body === "string" ? body : JSON.stringify(body);
  }
  const res = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (res.status === 401 && path !== "/api/session") {
    window.dispatchEvent(new CustomEvent("cloudo:signed-out"));
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body);
export const put = (path, body) => api("PUT", path, body);
export const del = (path) => api("DELETE", path);

/** A query string from the set values of `params`. */
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") p.set(k, v);
  }
  const s = p.toString();
  return s ? `?${s}` : "";
}

/** An error as a person reads it. */
export function errorText(e) {
  if (e instanceof ApiError) return `${e.message} (HTTP ${e.status}${e.code ? `, ${e.code}` : ""})`;
  return String(e && e.message ? e.message : e);
}

/** The field an error names (`… field "timeout": …`), if any. */
export function errorField(e) {
  const m = /field "([^"]+)"/.exec((e && e.message) || "");
  return m ? m[1] : null;
}
