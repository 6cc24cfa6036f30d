// The console: who is signed in, the navigation, and which page shows.
import { ApiError, del, errorText, get, setCsrf } from "./api.js";
import { fill, h, toast } from "./dom.js";
import * as signin from "./pages/signin.js";
import * as executions from "./pages/executions.js";
import * as execution from "./pages/execution.js";
import * as catalog from "./pages/catalog.js";
import * as schema from "./pages/schema.js";
import * as approvals from "./pages/approvals.js";
import * as schedules from "./pages/schedules.js";
import * as workers from "./pages/workers.js";
import * as audit from "./pages/audit.js";
import * as routing from "./pages/routing.js";
import * as dashboard from "./pages/dashboard.js";

// `#/section/param`: the page module and its title.
const PAGES = {
  dashboard: [dashboard, "Dashboard"],
  executions: [executions, "Executions"],
  execution: [execution, "Execution"],
  catalog: [catalog, "Catalog"],
  schema: [schema, "Schema"],
  approvals: [approvals, "Approvals"],
  schedules: [schedules, "Schedules"],
  workers: [workers, "Workers"],
  audit: [audit, "Audit log"],
  routing: [routing, "Routing"],
};

const main = document.getElementById("main");
let me = null;
let leave = null; // what the current page stops when left (timers, streams)
let shown = 0; // the navigation whose page is on screen

function route() {
  const [, section = "executions", ...rest] = location.hash.split("/");
  const param = rest.length ? decodeURIComponent(rest.join("/")) : null;
  // An execution or a schema by id.
  if (section === "executions" && param) return ["execution", param];
  if (section === "catalog" && param) return ["schema", param];
  return [section in PAGES ? section : "executions", param];
}

async function show() {
  if (leave) { leave(); leave = null; }
  if (!me) return;
  const [name, param] = route();
  const [page, title] = PAGES[name];
  document.title = `${title} · cloudo`;
  for (const a of document.querySelectorAll("#nav a")) {
    const current = a.getAttribute("href") === `#/${name === "execution" ? "executions" : name === "schema" ? "catalog" : name}`;
    if (current) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  // Each navigation renders into its own element: a slower earlier one that ends later
  // writes into an element no longer shown, never over the page now shown.
  const ticket = ++shown;
  const view = h("div", { class: "view" }, h("p", { class: "muted" }, "Loading…"));
  fill(main, view);
  try {
    const stop = (await page.render(view, param, me)) || null;
    if (ticket === shown) leave = stop;
    else if (stop) stop();
  } catch (e) {
    fill(view, h("h1", {}, title), h("p", { class: "error-box", role: "alert" }, errorText(e)));
  }
}

function signedIn(who) {
  me = who;
  setCsrf(who.csrf_token || null);
  document.getElementById("nav").hidden = false;
  document.getElementById("who").hidden = false;
  const label = who.display_name ? `${who.display_name}${who.email ? ` <${who.email}>` : ""}` : who.name;
  fill(document.getElementById("who-name"), label, " ", h("span", { class: "role" }, who.role));
  for (const a of document.querySelectorAll("#nav [data-role=admin]")) a.hidden = who.role !== "admin";
  show();
}

function signedOut(message) {
  if (leave) { leave(); leave = null; }
  shown++; // a page still loading is not shown over the sign-in
  me = null;
  setCsrf(null);
  document.getElementById("nav").hidden = true;
  document.getElementById("who").hidden = true;
  document.title = "Sign in · cloudo";
  signin.render(main, message, signedIn);
}

async function start() {
  try {
    signedIn(await get("/api/session"));
  } catch (e) {
    signedOut(e instanceof ApiError && e.status === 401 ? null : errorText(e));
  }
}

document.getElementById("sign-out").addEventListener("click", async () => {
  try { await del("/api/session"); } catch { /* signed out either way */ }
  signedOut("You are signed out.");
});
window.addEventListener("cloudo:signed-out", () => {
  if (me) { signedOut("Your session ended; sign in again."); toast("Session ended"); }
});
window.addEventListener("hashchange", show);
// A page asks to be shown again with fresh data (e.g. after a save).
window.addEventListener("cloudo:refresh", show);
start();
