// Jobs view: the table of jobs with their schedule in words, next fire, last run and actions.
// The words and the last runs are the master's (GET /api/v1/jobs): the UI describes nothing
// itself, so it says what `schedctl jobs` and the API say. The server pages and filters.

import { apiPath, request } from "./client.js";
import {
  badge, debounce, el, formatDuration, formatRelative, keepingFocus, replace, table,
  timeElement,
} from "./dom.js";
import { cursorPager } from "./paging.js";
import { jobActions, jobHash } from "./jobactions.js";

const HEADERS = ["Name", "Schedule", "Next fire", "Last run", "State", "Running", "Command",
  "Actions"];

const PAGE_SIZE = 100;          // jobs a page (the API's default)
const FILTER_DELAY_MS = 250;    // typing in the filter box asks the server once it pauses
const STATES = [["", "All jobs"], ["paused", "Paused"], ["running", "Running"],
  ["failed", "Last run failed"], ["unschedulable", "Unschedulable"]];

/** Build the view; refresh() reloads the page shown (the app calls it every few seconds
 * and on live events). The server pages and filters (GET /api/v1/jobs?limit&cursor&q&state):
 * with 10,000 jobs the browser holds 100. */
export function jobsView(ctx) {
  let jobs = [];
  let lastRunsError = null;
  const filter = el("input", {
    type: "search", placeholder: "Filter jobs", id: "jobs-filter",
    "aria-label": "Filter jobs by name, command or schedule in words",
  });
  const stateSelect = el("select", { id: "jobs-state", "aria-label": "Show jobs" },
    STATES.map(([value, label]) => el("option", { value }, label)));
  const body = el("div");
  const pager = cursorPager({ limit: PAGE_SIZE, reload: () => ctx.guard(refresh) });
  const root = el("section", { class: "view" },
    el("div", { class: "toolbar" },
      el("h2", {}, "Jobs"),
      filter, stateSelect,
      el("button", { type: "button", class: "primary", dataset: { needs: "admin" },
        on: { click: () => ctx.navigate("#new") } }, "New job")),
    body, pager.controls);
  const refilter = () => {
    pager.reset();
    ctx.guard(refresh);
  };
  filter.addEventListener("input", debounce(refilter, FILTER_DELAY_MS));
  stateSelect.addEventListener("change", refilter);

  function render() {
    const filtered = filter.value.trim() !== "" || stateSelect.value !== "";
    keepingFocus(body, () => {
      if (jobs.length === 0) {
        replace(body, el("p", { class: "empty" }, filtered ? "No job matches the filter."
          : "No jobs yet. Create one with “New job”."));
      } else {
        replace(body, table(HEADERS, jobs.map((job) => jobRow(job, ctx, refresh)),
          { className: "jobs" }),
        lastRunsError ? el("p", { class: "muted small last-runs-error" },
          `Last runs unknown: ${lastRunsError}`) : null);
      }
    });
  }

  let asked = 0;  // only the newest request's answer is shown (filters change meanwhile)

  async function refresh() {
    const mine = ++asked;
    const query = { ...pager.query(), q: filter.value.trim(), state: stateSelect.value };
    const answer = await request("GET", apiPath("jobs"), { query });
    if (mine !== asked) return;
    if ((answer.jobs || []).length === 0 && pager.index > 0) {  // its jobs went: first page
      pager.reset();
      await refresh();
      return;
    }
    jobs = answer.jobs || [];
    lastRunsError = answer.lastRunsError || null;
    pager.answered(answer, jobs.length);
    render();
  }

  return { root, refresh, events: ["job.", "run.", "worker."] };  // live events that refresh it
}


function jobRow(job, ctx, refresh) {
  const running = job.running || [];
  // A row's buttons are described by its job's name; the id is stable across refreshes
  // (a job name is a valid id: letters, digits, ".", "_", "-").
  const nameId = `job-name-${job.name}`;
  return el("tr", { dataset: { job: job.name } },
    el("td", { class: "name", id: nameId }, el("a", { href: jobHash(job.name),
      title: "Open the job's page" }, job.name)),
    el("td", { class: "schedule" },
      job.cronExpr ? el("code", {}, job.cronExpr) : null,
      job.describe ? el("div", { class: "words small" }, job.describe) : null,
      job.after ? el("div", { class: "chain small" },
        `after ${job.after.job} (${job.after.on})`) : null,
      (job.downstream || []).length ? el("div", { class: "muted small" },
        `then: ${job.downstream.map((d) => d.job).join(", ")}`) : null,
      // The words name the zone (when not UTC) of an expression that has them.
      !job.describe && job.timezone && job.timezone !== "UTC"
        ? el("div", { class: "muted small" }, job.timezone) : null),
    el("td", {}, nextFire(job)),
    el("td", { class: "last-run" }, lastRun(job.lastRun)),
    el("td", {}, job.paused ? badge("paused", "paused") : badge("active", "active")),
    el("td", { class: "num" }, running.length
      ? el("span", { title: running.map((r) => `${r.runId} on ${r.worker}`).join("\n") },
        badge(`${running.length} running`, "running"))
      : "0"),
    el("td", { class: "command" }, el("code", { title: job.command }, job.command)),
    el("td", { class: "actions" }, jobActions(job, ctx, refresh).map((button) => {
      button.setAttribute("aria-describedby", nameId);  // "Run now", then "backup"
      return button;
    })));
}

function nextFire(job) {
  if (job.schedulable === false && job.nextFire !== null && job.nextFire !== undefined) {
    // Planned, but no live worker matches its selector: say so beside the time.
    return [timeElement(job.nextFire), el("div", { class: "never unschedulable small",
      title: "No live worker can run this job" }, `Unschedulable: ${job.reason}`)];
  }
  if (job.schedulable === false) {  // the expression has no future time: say why
    return el("span", { class: "never", title: "This job will never fire again" },
      `Never: ${job.reason}`);
  }
  if (job.nextFire === null || job.nextFire === undefined) {
    return el("span", { class: "muted" }, job.paused ? "— (paused)" : "—");
  }
  return [timeElement(job.nextFire), el("div", { class: "muted small" },
    formatRelative(job.nextFire))];
}

/** The newest run: its status, when (local time, UTC on hover), how long it took. */
function lastRun(run) {
  if (!run) return el("span", { class: "muted" }, "—");
  const when = run.startTime ?? run.scheduleTime;
  return [
    badge(run.status, run.status), " ", timeElement(when),
    el("div", { class: "muted small" }, formatRelative(when),
      run.durationMs === null || run.durationMs === undefined ? ""
        : `, took ${formatDuration(0, run.durationMs)}`),
  ];
}
