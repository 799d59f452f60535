// Jobs view: the table of jobs with their schedule in words, next fire, last run and actions.
// The words and the last runs are the master's (GET /api/v1/jobs): the UI describes nothing
// itself, so it says what `schedctl jobs` and the API say.

import { apiPath, request } from "./client.js";
import { badge, el, formatDuration, formatRelative, replace, table, timeElement } from "./dom.js";
import { jobActions, jobHash } from "./jobactions.js";

const HEADERS = ["Name", "Schedule", "Next fire", "Last run", "State", "Running", "Command",
  "Actions"];

/** Build the view; refresh() reloads the jobs (the app calls it every few seconds). */
export function jobsView(ctx) {
  let jobs = [];
  const filter = el("input", {
    type: "search", placeholder: "Filter jobs",
    "aria-label": "Filter jobs by name, command or schedule in words",
  });
  const body = el("div");
  const root = el("section", { class: "view" },
    el("div", { class: "toolbar" },
      el("h2", {}, "Jobs"),
      filter,
      el("button", { type: "button", class: "primary", on: { click: () => ctx.navigate("#new") } },
        "New job")),
    body);
  filter.addEventListener("input", () => render());

  function render() {
    const needle = filter.value.trim().toLowerCase();
    const shown = jobs.filter((j) => !needle ||
      [j.name, j.command, j.describe].some((text) => String(text ?? "").toLowerCase()
        .includes(needle)));
    if (jobs.length === 0) {
      replace(body, el("p", { class: "empty" }, "No jobs yet. Create one with “New job”."));
    } else {
      replace(body, table(HEADERS, shown.map((job) => jobRow(job, ctx, refresh)),
        { className: "jobs" }),
      lastRunsError ? el("p", { class: "muted small last-runs-error" },
        `Last runs unknown: ${lastRunsError}`) : null);
    }
  }

  let lastRunsError = null;

  async function refresh() {
    const answer = await request("GET", apiPath("jobs"));
    jobs = answer.jobs || [];
    lastRunsError = answer.lastRunsError || null;
    render();
  }

  return { root, refresh, events: ["job.", "run.", "worker."] };  // live events that refresh it
}

function jobRow(job, ctx, refresh) {
  const running = job.running || [];
  return el("tr", { dataset: { job: job.name } },
    el("td", { class: "name" }, el("a", { href: jobHash(job.name),
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
    el("td", { class: "actions" }, jobActions(job, ctx, refresh)));
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
