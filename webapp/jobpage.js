// Job page (#job?name=…): everything about one job in one place. Its spec with the
// schedule in words, the next 10 fires in the job's zone and in the browser's
// (GET /api/v1/cron/preview), the duration of its last 200 runs coloured by status with
// the success rate of those runs (GET /api/v1/jobs/<name>/durations: no outputs), its
// runs page by page, its chains up (`after`) and down (`downstream`), its alert policy,
// and the same actions as the jobs list (jobactions.js). It refreshes on the live
// events of its job only (`eventJob`).

import uPlot from "./static/vendor/uplot/uPlot.esm.js";
import { ApiError, apiPath, request } from "./client.js";
import { COLORS, axisStyle, timeLegend, timeSeries } from "./dashboard.js";
import { badge, el, formatPairs, replace, table, timeElement } from "./dom.js";
import { jobActions, jobHash } from "./jobactions.js";
import { cursorList, onLoadMore } from "./paging.js";
import { HEADERS as RUN_HEADERS, runRows } from "./runs.js";

const FIRES = 10;
const PLOTTED = 200;
const PAGE_SIZE = 20;
// Runs that ended by themselves; `skipped` and `replaced` say nothing of the command.
const ENDED = ["succeeded", "failed", "timeout", "killed", "lost"];
const STATUS_ORDER = ["succeeded", "failed", "timeout", "killed", "lost", "replaced", "skipped"];
const DEFAULT_ALERTS = "the cluster's default policy (its alert settings)";
const CHART_HEIGHT = 220;

/** Build the view for `params` (URLSearchParams: name). */
export function jobPageView(ctx, params) {
  const name = params.get("name") || "";
  const state = { job: null, open: new Set(), fireKey: "", chart: null, shape: "" };
  const title = el("h2", {}, `Job ${name}`);
  const actionsBox = el("div", { class: "actions", role: "group", "aria-label": "Job actions" });
  const specBox = el("div", { id: "job-spec" });
  const firesBox = el("div", { id: "job-fires" });
  const rateBox = el("p", { id: "job-success-rate" });
  const chartBox = el("div", { class: "chart", id: "chart-durations" });
  const chainsBox = el("div", { id: "job-chains" });
  const alertsBox = el("div", { id: "job-alerts" });
  const runsBox = el("div", { id: "job-runs" });
  const more = el("button", { type: "button", hidden: true }, "Load more runs");
  const panel = (id, heading, ...children) => el("section",
    { class: "panel", "aria-labelledby": id }, el("h3", { id }, heading), children);
  const wide = (...args) => {
    const section = panel(...args);
    section.classList.add("wide");
    return section;
  };
  const root = el("section", { class: "view jobpage" },
    el("div", { class: "toolbar" }, title, actionsBox),
    el("div", { class: "panels" },
      panel("spec-title", "Spec", specBox),
      panel("fires-title", `Next ${FIRES} fires`, firesBox),
      wide("durations-title", `Duration of the last ${PLOTTED} runs`, rateBox, chartBox),
      panel("chains-title", "Chains", chainsBox),
      panel("alerts-title", "Alerts", alertsBox),
      wide("runs-title", "Runs", runsBox, el("div", { class: "more" }, more))));
  const runs = cursorList({ path: "runs", key: "runs", idOf: (r) => r.runId,
    query: (cursor) => ({ job: name, limit: PAGE_SIZE, cursor }),
    order: (items) => items.sort((a, b) => (b.startTime ?? 0) - (a.startTime ?? 0)) });
  onLoadMore(more, ctx, runs, renderRuns);

  async function refresh() {
    let answer;
    try {
      answer = await request("GET", apiPath("jobs", name));
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
      replace(specBox, el("p", { class: "empty" }, `No job named “${name}”. Its runs, ` +
        "if it had any, are still below."));
      replace(actionsBox);
      state.job = null;
      await Promise.all([runs.refresh().then(renderRuns), refreshDurations()]);
      return;
    }
    const job = answer.job;
    state.job = job;
    replace(actionsBox, jobActions(job, ctx, refresh,
      { runs: false, onDeleted: async () => ctx.navigate("#jobs") }));
    renderSpec(specBox, job);
    renderChains(chainsBox, job);
    renderAlerts(alertsBox, job);
    await Promise.all([refreshFires(job), refreshDurations(), runs.refresh().then(renderRuns)]);
  }

  /** The next fires, asked again only when the expression, zone or minute changes. */
  async function refreshFires(job) {
    if (!job.cronExpr) {
      state.fireKey = "";
      replace(firesBox, el("p", { class: "muted" }, job.after
        ? `No schedule: it runs only after job ${job.after.job}.` : "No schedule."));
      return;
    }
    const key = `${job.cronExpr}|${job.timezone}|${Math.floor(Date.now() / 60_000)}`;
    if (key === state.fireKey) return;
    const preview = await request("GET", apiPath("cron", "preview"),
      { query: { expr: job.cronExpr, tz: job.timezone || "UTC", n: FIRES,
        anchor: job.createdAt ?? "" } });  // @every counts from the job's creation
    state.fireKey = key;
    renderFires(firesBox, job, preview);
  }

  async function refreshDurations() {
    const answer = await request("GET", apiPath("jobs", name, "durations"),
      { query: { limit: PLOTTED } });
    const recent = answer.runs || [];
    renderRate(rateBox, recent);
    drawChart(recent);
  }

  function drawChart(recent) {
    const plotted = recent.filter((r) => r.durationMs !== null && r.durationMs !== undefined)
      .sort((a, b) => a.startTime - b.startTime);
    chartBox.dataset.points = String(plotted.length);
    if (plotted.length === 0) {
      state.chart?.destroy();
      state.chart = null;
      state.shape = "";
      replace(chartBox, el("p", { class: "empty" }, "No finished run to plot yet."));
      return;
    }
    const statuses = STATUS_ORDER.filter((s) => plotted.some((r) => r.status === s))
      .concat([...new Set(plotted.map((r) => r.status))].filter((s) => !STATUS_ORDER.includes(s)));
    const data = [plotted.map((r) => r.startTime), ...statuses.map((s) => plotted.map(
      (r) => (r.status === s ? r.durationMs / 1000 : null)))];
    const shape = statuses.join(",");
    if (state.chart && state.shape === shape) {
      state.chart.setData(data);
      return;
    }
    state.chart?.destroy();
    replace(chartBox);
    state.shape = shape;
    const width = Math.max(320, chartBox.clientWidth || 600);
    state.chart = new uPlot(chartOptions(statuses, width), data, chartBox);
  }

  function renderRuns() {
    more.hidden = !runs.nextCursor;
    if (runs.items.length === 0) {
      replace(runsBox, el("p", { class: "empty" }, "No runs yet."));
      return;
    }
    replace(runsBox, table(RUN_HEADERS, runs.items.flatMap(
      (run) => runRows(run, state.open, renderRuns)), { className: "runs" }));
  }

  return { root, refresh, events: ["job.", "run."], eventJob: name };
}

function renderSpec(node, job) {
  const fact = (label, ...value) => [el("dt", {}, label), el("dd", {}, value)];
  const orNone = (v) => (v === null || v === undefined || v === "" ? "—" : String(v));
  const pairs = (m) => (Object.keys(m || {}).length ? formatPairs(m).join(", ") : "—");
  const running = job.running || [];
  replace(node, el("dl", { class: "facts" },
    fact("Command", el("code", {}, job.command)),
    fact("Schedule", job.cronExpr ? el("code", {}, job.cronExpr) : "— (chained only)",
      job.describe ? el("div", { class: "words" }, job.describe) : null),
    fact("Time zone", orNone(job.timezone)),
    fact("State", job.paused ? badge("paused", "paused") : badge("active", "active"),
      job.reason ? el("div", { class: job.schedulable === false ? "never small" : "muted small" },
        job.schedulable === false ? `Never or unschedulable: ${job.reason}` : job.reason) : null),
    fact("Next fire", timeElement(job.nextFire)),
    fact("Running", running.length ? running.map((r) => el("div", {}, badge("running", "running"),
      ` ${r.runId} on ${r.worker} since `, timeElement(r.startTime))) : "none"),
    fact("Timeout", job.timeout ? `${job.timeout} s` : "none"),
    fact("Concurrency", orNone(job.concurrency)),
    fact("Retries", `${job.retries ?? 0}` + (job.retries ? `, backoff ${job.retryBackoff} s` : "")),
    fact("Starting deadline", job.startingDeadline ? `${job.startingDeadline} s` : "—"),
    fact("Catch-up", orNone(job.catchUp)),
    fact("Selector", pairs(job.selector)),
    fact("Environment", pairs(job.env)),
    fact("User", orNone(job.user)),
    fact("Created", timeElement(job.createdAt))));
}

function renderFires(node, job, preview) {
  const zone = job.timezone || "UTC";
  const local = Intl.DateTimeFormat().resolvedOptions().timeZone || "browser";
  const times = preview.times || [];
  replace(node,
    job.paused ? el("p", { class: "muted small" }, "Paused: these fires are planned once " +
      "it is resumed.") : null,
    times.length === 0 ? el("p", { class: "never" }, `Never: ${preview.reason || "no time"}`)
      : table([`In ${zone} (the job's zone)`, `In ${local} (this browser)`],
        times.map((t) => el("tr", {},
          el("td", { class: "mono" }, timeElement(t, zone)),
          el("td", {}, timeElement(t)))), { className: "fires" }),
    times.length > 0 && preview.reason
      ? el("p", { class: "muted small" }, `No more: ${preview.reason}`) : null);
}

/** Success rate: succeeded of the runs that ended (skipped and replaced left out). */
function renderRate(node, recent) {
  const ended = recent.filter((r) => ENDED.includes(r.status));
  const ok = ended.filter((r) => r.status === "succeeded").length;
  node.dataset.rate = ended.length ? String(ok / ended.length) : "";
  replace(node, ended.length === 0 ? "Success rate: — (no run ended yet)"
    : [el("strong", {}, `Success rate: ${(100 * ok / ended.length).toFixed(1)} %`),
      ` (${ok} of ${ended.length} runs that ended, among the last ${recent.length})`]);
}

function chartOptions(statuses, width) {
  const { stroke, grid, ticks } = axisStyle();
  return {
    width, height: CHART_HEIGHT, ms: 1,
    cursor: { drag: { x: false, y: false } },
    scales: { y: { range: (u, min, max) => [0, Math.max(0.001, max ?? 1) * 1.1] } },
    axes: [{ stroke, grid, ticks }, { stroke, grid, ticks, label: "seconds" }],
    hooks: timeLegend,
    series: [timeSeries(), ...statuses.map((s) => ({
      label: s, stroke: COLORS[s] || "#667085", width: 0, paths: () => null, spanGaps: false,
      points: { show: true, size: 7, fill: COLORS[s] || "#667085",
        stroke: COLORS[s] || "#667085" },
      value: (u, v) => (v === null || v === undefined ? "—" : `${v.toFixed(3)} s`) }))],
  };
}

function renderChains(node, job) {
  const link = (name) => el("a", { href: jobHash(name) }, name);
  const down = job.downstream || [];
  replace(node, el("dl", { class: "facts" },
    el("dt", {}, "Runs after (upstream)"),
    el("dd", {}, job.after ? [link(job.after.job), ` when it ${job.after.on}`]
      : "— (no upstream)"),
    el("dt", {}, "Then runs (downstream)"),
    el("dd", {}, down.length ? el("ul", { class: "plain" }, down.map((d) => el("li", {},
      link(d.job), ` when this one ${d.on}`))) : "— (none)")));
}

function renderAlerts(node, job) {
  const a = job.alerts;
  replace(node, el("dl", { class: "facts" },
    a ? [el("dt", {}, "On"), el("dd", {}, (a.on || []).length ? a.on.join(", ")
      : "every event (failed, timeout, lost, killed, recovered, unschedulable)"),
    el("dt", {}, "Channels"), el("dd", {}, (a.channels || []).length ? a.channels.join(", ")
      : "none: nothing is sent")]
      : [el("dt", {}, "Policy"), el("dd", {}, DEFAULT_ALERTS)]));
}

