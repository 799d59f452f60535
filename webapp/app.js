// Entry point: hash routing between views, the auto-refresh loop, the API-health banner,
// notices and the token prompt. Views live in their own modules; each is
// { root: Element, refresh?: async () => void, events?: string[] } and never touches
// the page outside root. `events`: the kinds of live events (prefixes: "job.", "run.",
// "worker.", "alert") after which the view refreshes, within EVENT_DELAY_MS; while
// the stream is live (events.js) the view is polled only every LIVE_REFRESH_MS.
// `eventJob`: only the events of that job count (the job page).

import { auditView } from "./audit.js";
import { dashboardView } from "./dashboard.js";
import { getToken, setToken } from "./client.js";
import { learnRole } from "./role.js";
import { formatUtc, replace, timeElement } from "./dom.js";
import { editorView } from "./editor.js";
import * as liveEvents from "./events.js";
import { jobPageView } from "./jobpage.js";
import { jobsView } from "./jobs.js";
import { outputView } from "./output.js";
import { runsView } from "./runs.js";
import { workersView } from "./workers.js";
import { alertsView } from "./alerts.js";

const REFRESH_MS = 5000;
const LIVE_REFRESH_MS = 60_000;  // a safety net while events arrive
const EVENT_DELAY_MS = 150;      // events coming together make one refresh
const EVENT_GAP_MS = 500;        // at most two refreshes a second on a busy cluster
const NOTICE_MS = 6000;

const $ = (id) => document.getElementById(id);
const page = {
  view: $("view"), banner: $("banner"), bannerText: $("banner-text"),
  bannerToken: $("banner-token"), notice: $("notice"), noticeText: $("notice-text"),
  lastUpdated: $("last-updated"), tokenDialog: $("token-dialog"), tokenForm: $("token-form"),
  tokenInput: $("token-input"), tokenReason: $("token-reason"), who: $("who"),
};

let current = null;       // the mounted view
let refreshing = false;   // a refresh is under way (only one at a time)
let refreshAgain = false; // asked again meanwhile: one more after it
let timer = null;
let lastOkMs = null;
let promptedFor = null;   // the token we already asked about after a 401 (ask once each)
let noticeTimer = null;
let eventTimer = null;    // a refresh for events is waiting or running
let eventAgain = false;   // an event came meanwhile: refresh once more after it
let lastEventRefresh = 0;

const ctx = {
  navigate,
  notify,
  reportError,
  guard,
  confirm: (message) => window.confirm(message),
};

function route() {
  const hash = location.hash.replace(/^#/, "") || "dashboard";
  const at = hash.indexOf("?");
  const name = at < 0 ? hash : hash.slice(0, at);
  const params = new URLSearchParams(at < 0 ? "" : hash.slice(at + 1));
  const views = {
    dashboard: () => dashboardView(ctx, params),
    runs: () => runsView(ctx, params),
    workers: () => workersView(ctx),
    audit: () => auditView(ctx, params),
    alerts: () => alertsView(ctx),
    new: () => editorView(ctx, null),
    edit: () => editorView(ctx, params.get("name")),
    output: () => outputView(ctx, params),
    job: () => jobPageView(ctx, params),
  };
  current = (views[name] || (() => jobsView(ctx)))();
  page.view.replaceChildren(current.root);
  const section = ["dashboard", "runs", "workers", "audit", "alerts"].includes(name) ? name
    : name === "output" ? "runs" : "jobs";
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.view === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  refreshNow();
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

/** Refresh the current view now, then every REFRESH_MS while the tab is visible. Asked
 * again while a refresh is under way, it makes one more after it, never two at once: on
 * load the route, the stream's "ready" and its going live all ask within a few ms, and
 * three requests at once for 10,000 jobs delay the first answer the page waits for. */
async function refreshNow() {
  clearTimeout(timer);
  if (refreshing) {
    refreshAgain = true;
    return;
  }
  refreshing = true;
  try {
    do {
      refreshAgain = false;
      if (current && current.refresh && !document.hidden) await guard(current.refresh);
    } while (refreshAgain);
  } finally {
    refreshing = false;
  }
  clearTimeout(timer);
  timer = setTimeout(refreshNow, liveEvents.isLive() ? LIVE_REFRESH_MS : REFRESH_MS);
}

/** An event the current view asked for, or the stream (re)started ("ready", "reset":
 * something may have been missed): refresh the view soon, once for many events. An
 * event during a refresh makes one more after it (that refresh may have read before). */
function onEvent(kind, data) {
  const reload = kind === "ready" || kind === "reset";
  const wanted = current && current.events && current.events.some((p) => kind.startsWith(p))
    && (current.eventJob === undefined || (data && data.job === current.eventJob));
  if ((!reload && !wanted) || document.hidden) return;
  if (eventTimer !== null) eventAgain = true;
  else refreshOnEvents();
}

function refreshOnEvents() {
  const wait = Math.max(EVENT_DELAY_MS, lastEventRefresh + EVENT_GAP_MS - Date.now());
  eventTimer = setTimeout(async () => {
    eventAgain = false;
    await refreshNow();
    lastEventRefresh = Date.now();
    eventTimer = null;
    if (eventAgain) {
      eventAgain = false;
      refreshOnEvents();
    }
  }, wait);
}

/** Run an API action; success clears the banner, failure shows it. */
async function guard(action) {
  try {
    await action();
    reportOk();
  } catch (err) {
    reportError(err);
  }
}

function reportOk() {
  lastOkMs = Date.now();
  page.banner.hidden = true;
  // "Live": changes arrive as events (events.js); else the view is polled every 5 s.
  const live = liveEvents.isLive() ? "Live · " : "";
  replace(page.lastUpdated, `${live}Last updated `, timeElement(lastOkMs));
  page.lastUpdated.title = formatUtc(lastOkMs);
  page.lastUpdated.classList.remove("stale");
}

function reportError(err) {
  page.bannerText.textContent = err.describe ? err.describe() : `Error: ${err}`;
  page.bannerToken.hidden = err.status !== 401;
  page.banner.hidden = false;
  replace(page.lastUpdated, lastOkMs === null ? "Update failed"
    : ["Update failed; last success ", timeElement(lastOkMs)]);
  page.lastUpdated.classList.add("stale");
  if (err.status === 401 && promptedFor !== getToken()) {
    promptedFor = getToken();
    promptToken(getToken() ? "The API refused this token (401). Enter the right one."
      : "The master's API wants a bearer token (401).");
  }
}

/** A short message under the header; errors stay until dismissed or replaced. */
function notify(text, kind = "ok") {
  clearTimeout(noticeTimer);
  page.noticeText.textContent = text;
  page.notice.className = `notice notice-${kind}`;
  page.notice.hidden = false;
  if (kind === "ok") noticeTimer = setTimeout(() => { page.notice.hidden = true; }, NOTICE_MS);
}

function promptToken(reason) {
  page.tokenReason.textContent = reason;
  page.tokenInput.value = getToken();
  if (!page.tokenDialog.open) page.tokenDialog.showModal();
  page.tokenInput.focus();
}

function wireToken() {
  page.tokenForm.addEventListener("submit", (event) => {
    event.preventDefault();
    setToken(page.tokenInput.value.trim());
    page.tokenDialog.close();
    liveEvents.reconnect();
    refreshNow();
    learnRole(page.who);
  });
  $("token-clear").addEventListener("click", () => {
    setToken("");
    page.tokenInput.value = "";
    page.tokenDialog.close();
    liveEvents.reconnect();
    refreshNow();
    learnRole(page.who);
  });
  $("token-cancel").addEventListener("click", () => page.tokenDialog.close());
  const ask = () => promptToken("Enter the master's API token (kept in this tab only).");
  $("token-button").addEventListener("click", ask);
  page.bannerToken.addEventListener("click", ask);
}

function start() {
  wireToken();
  $("notice-close").addEventListener("click", () => { page.notice.hidden = true; });
  window.addEventListener("hashchange", route);
  liveEvents.subscribe(null, onEvent);
  liveEvents.onLiveChange(() => refreshNow());
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refreshNow();
  });
  route();
  learnRole(page.who);
}

start();
