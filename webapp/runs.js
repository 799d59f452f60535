// Runs view: newest first, global or per job, status filter, time range (since/until,
// from a dashboard bar), cursor paging, outputs. For one job, its runs going on now
// first, each with its live output (output.js) a click away.

import { apiPath, request } from "./client.js";
import { badge, el, formatDuration, replace, table, timeElement } from "./dom.js";
import { jobHash } from "./jobactions.js";
import { liveOutputPanel } from "./output.js";
import { cursorList, onLoadMore } from "./paging.js";

const PAGE_SIZE = 50;
const STATUSES = ["succeeded", "failed", "timeout", "killed", "replaced", "lost", "skipped"];
export const HEADERS = ["Started", "Job", "Status", "Trigger", "Attempt", "Worker", "Duration",
  "Exit", ""];

/** Build the view for `params` (URLSearchParams: job, status, since, until). */
export function runsView(ctx, params) {
  const epoch = (name) => (/^\d+$/.test(params.get(name) || "") ? params.get(name) : "");
  const state = { job: params.get("job") || "", status: params.get("status") || "",
    since: epoch("since"), until: epoch("until"), open: new Set() };
  const jobInput = el("input", { type: "search", placeholder: "All jobs", value: state.job,
    "aria-label": "Job name", class: "mono" });
  const statusSelect = el("select", { "aria-label": "Status" },
    el("option", { value: "" }, "Any status"),
    STATUSES.map((s) => el("option", { value: s }, s)));
  statusSelect.value = state.status;
  if (state.status && !STATUSES.includes(state.status)) {  // several, from the dashboard
    statusSelect.append(el("option", { value: state.status }, state.status));
    statusSelect.value = state.status;
  }
  const title = el("h2");
  const range = el("p", { class: "muted range", hidden: !state.since && !state.until });
  const clearRange = el("button", { type: "button", on: { click: () => {
    state.since = state.until = "";
    range.hidden = true;
    apply();
  } } }, "Any time");
  const body = el("div");
  const running = el("div", { class: "running-now" });
  const live = new Map();  // runId -> its open live output panel (kept across renders)
  const rows = new Map();  // runId -> { root, line }: the rows of "Running now"
  let runningNow = [];
  const more = el("button", { type: "button", hidden: true }, "Load more");
  const root = el("section", { class: "view" },
    el("div", { class: "toolbar" }, title,
      el("form", { class: "filters", on: { submit: (e) => { e.preventDefault(); apply(); } } },
        jobInput, statusSelect, el("button", { type: "submit" }, "Apply"))),
    range, running, body, el("div", { class: "more" }, more));
  statusSelect.addEventListener("change", () => apply());
  const query = (cursor) => ({ job: state.job, status: state.status, since: state.since,
    until: state.until, limit: PAGE_SIZE, cursor });
  const runs = cursorList({ path: "runs", key: "runs", idOf: (r) => r.runId, query,
    order: (items) => items.sort((a, b) => (b.startTime ?? 0) - (a.startTime ?? 0)) });
  onLoadMore(more, ctx, runs, render);

  function render() {
    renderRunning();
    replace(title, state.job ? ["Runs of job ", jobLink(state.job)] : "Runs");
    replace(range, state.since ? ["From ", timeElement(Number(state.since)), " "] : "",
      state.until ? ["until ", timeElement(Number(state.until)), " "] : "", clearRange);
    more.hidden = !runs.nextCursor;
    if (runs.items.length === 0) {
      replace(body, el("p", { class: "empty" }, "No runs match."));
      return;
    }
    replace(body, table(HEADERS, runs.items.flatMap((run) => runRows(run, state.open, render)),
      { className: "runs" }));
  }

  async function apply() {
    state.job = jobInput.value.trim();
    state.status = statusSelect.value;
    runs.reset();
    const search = new URLSearchParams();
    if (state.job) search.set("job", state.job);
    if (state.status) search.set("status", state.status);
    if (state.since) search.set("since", state.since);
    if (state.until) search.set("until", state.until);
    const suffix = search.toString();
    history.replaceState(null, "", `#runs${suffix ? `?${suffix}` : ""}`);
    await ctx.guard(refresh);
  }

  /** Newest page; merged into what is shown so that "load more" pages stay. */
  async function refresh() {
    await Promise.all([runs.refresh(), refreshRunning()]);
    render();
  }

  async function refreshRunning() {
    if (!state.job) {
      runningNow = [];
      return;
    }
    try {
      runningNow = (await request("GET", apiPath("jobs", state.job))).job.running || [];
    } catch {
      runningNow = [];  // no such job (any more): its history is still listed below
    }
  }

  /** Rows are kept, not redrawn: a panel taken out of the page would lose its place
   * (its scroll position) and the end it follows. */
  function renderRunning() {
    const ids = new Set([...runningNow.map((r) => r.runId), ...live.keys()]);
    for (const [runId, row] of rows) {
      if (!ids.has(runId)) {
        row.root.remove();
        rows.delete(runId);
      }
    }
    if (ids.size === 0) {
      replace(running);
      return;
    }
    if (!running.firstChild) running.append(el("h3", {}, "Running now"));
    const byId = new Map(runningNow.map((r) => [r.runId, r]));
    for (const runId of ids) {
      let row = rows.get(runId);
      if (!row) {
        const line = el("p");
        row = { root: el("div", { class: "running-run", dataset: { run: runId } }, line), line };
        rows.set(runId, row);
        running.append(row.root);
      }
      replace(row.line, ...runningLine(runId, byId.get(runId)));
      const panel = live.get(runId);
      if (panel && panel.root.parentNode !== row.root) row.root.append(panel.root);
    }
  }

  function runningLine(runId, run) {
    const panel = live.get(runId);
    const toggle = el("button", { type: "button", "aria-expanded": String(Boolean(panel)),
      class: "live-toggle", on: { click: () => {
        if (panel) {
          panel.stop();
          panel.root.remove();
          live.delete(runId);
        } else {
          live.set(runId, liveOutputPanel(runId));
        }
        renderRunning();
      } } }, panel ? "Hide output" : "Live output");
    return [el("code", {}, runId), run ? [" on ", run.worker, ", started ",
      timeElement(run.startTime), " "] : " (ended) ", toggle];
  }

  return { root, refresh, events: ["run.finished", "run.started"] };  // live events
}

export function runRows(run, open, render) {
  const isOpen = open.has(run.runId);
  const toggle = el("button", { type: "button", "aria-expanded": String(isOpen),
    on: { click: () => {
      if (isOpen) open.delete(run.runId);
      else open.add(run.runId);
      render();
    } } }, isOpen ? "Hide" : "Output");
  const row = el("tr", { dataset: { run: run.runId } },
    el("td", {}, timeElement(run.startTime)),
    el("td", { class: "name" }, jobLink(run.jobName)),
    el("td", {}, badge(run.status === "skipped" && run.skipCount > 1
      ? `skipped ×${run.skipCount}` : run.status, run.status)),
    el("td", {}, run.trigger),
    el("td", { class: "num" }, run.attempt),
    el("td", {}, run.worker),
    el("td", { class: "num" }, formatDuration(run.startTime, run.endTime)),
    el("td", { class: "num" }, run.exitCode ?? "—"),
    el("td", {}, toggle));
  return isOpen ? [row, detailRow(run)] : [row];
}

/** A job's name as a link to its page (the name as text: it is the server's data). */
function jobLink(name) {
  if (!name) return "";
  return el("a", { href: jobHash(name), title: "Open the job's page" }, name);
}

function detailRow(run) {
  const fact = (label, value) => [el("dt", {}, label), el("dd", {}, value)];
  return el("tr", { class: "detail" },
    el("td", { colspan: HEADERS.length },
      el("dl", { class: "facts" },
        fact("Run id", el("code", {}, run.runId)),
        fact("Command", el("code", {}, run.command)),
        fact("Planned", timeElement(run.planTime)),
        fact("Scheduled", timeElement(run.scheduleTime)),
        fact("Ended", timeElement(run.endTime)),
        ...(run.status === "skipped" && run.skipCount
          ? fact("Skipped fires", [`${run.skipCount}, planned `, timeElement(run.firstSkipTime),
            " to ", timeElement(run.lastSkipTime)]) : [])),
      outputBlock(run.outputTruncated ? "Output (truncated)" : "Output", run.output),
      outputBlock("Error", run.err)));
}

function outputBlock(title, text) {
  return el("div", { class: "output" },
    el("h3", {}, title),
    text ? el("pre", {}, text) : el("p", { class: "muted" }, "(empty)"));
}
