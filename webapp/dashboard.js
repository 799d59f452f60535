// Dashboard (the landing page): the counts an operator looks at first, and three plots
// over a chosen window, all from GET /api/v1/stats (the server groups the records; the
// browser never downloads them). Runs per bucket stacked by status and lateness
// p50/p99 are uPlot charts (vendored, webapp/vendor/uplot); the jobs that failed most
// are a list of meters (a name opens its job's page, a count its failed runs).
// Clicking a bar opens the runs behind it (#runs with since, until and the status under
// the pointer). Times, the charts' legends' too, are dom.js's timeElement.

import uPlot from "./static/vendor/uplot/uPlot.esm.js";
import { apiPath, request } from "./client.js";
import { el, replace, timeElement } from "./dom.js";
import { jobHash } from "./jobactions.js";

const WINDOWS = [["1h", "Last hour"], ["24h", "Last 24 hours"], ["7d", "Last 7 days"]];
// Drawing order, bottom of the stack first; statuses the server adds later go on top.
const STATUS_ORDER = ["succeeded", "failed", "timeout", "killed", "lost", "replaced", "skipped"];
export const COLORS = { succeeded: "#12b76a", failed: "#d92d20", timeout: "#f79009",
  killed: "#7a5af8", lost: "#93370d", replaced: "#98a2b3", skipped: "#d0d5dd" };
const COUNTS = [["jobs", "Jobs"], ["pausedJobs", "Paused"], ["running", "Running now"],
  ["failures24h", "Failures (24 h)"], ["workers", "Live workers"]];
const CHART_HEIGHT = 220;

/** Build the view for `params` (URLSearchParams: window). */
export function dashboardView(ctx, params) {
  const state = { window: WINDOWS.some(([w]) => w === params.get("window"))
    ? params.get("window") : "24h", data: null };
  const select = el("select", { id: "dashboard-window", "aria-label": "Window" },
    WINDOWS.map(([value, label]) => el("option", { value }, label)));
  select.value = state.window;
  const counts = el("dl", { class: "counts" });
  const partial = el("p", { class: "muted small", hidden: true });
  const runsBox = el("div", { class: "chart", id: "chart-runs" });
  const latenessBox = el("div", { class: "chart", id: "chart-lateness" });
  const topBox = el("div", { id: "top-failing" });
  const runsTitle = el("h3", { id: "runs-title" }, "Runs");
  // The keyboard's way to the runs behind the chart (a bar is clicked with a mouse).
  const windowRuns = el("a", { href: "#runs", id: "window-runs" }, "open the window's runs");
  runsBox.setAttribute("role", "img");
  latenessBox.setAttribute("role", "img");
  const root = el("section", { class: "view dashboard" },
    el("div", { class: "toolbar" }, el("h2", {}, "Dashboard"),
      el("label", { for: "dashboard-window" }, "Window "), select),
    counts, partial,
    el("div", { class: "panels" },
      el("section", { class: "panel", "aria-labelledby": "runs-title" }, runsTitle,
        el("p", { class: "muted small" }, "Click a bar to open its runs, or ", windowRuns,
          "."), runsBox),
      el("section", { class: "panel", "aria-labelledby": "lateness-title" },
        el("h3", { id: "lateness-title" }, "Lateness (start − planned), ms"), latenessBox),
      el("section", { class: "panel", "aria-labelledby": "top-title" },
        el("h3", { id: "top-title" }, "Jobs that failed most"), topBox)));
  const charts = { runs: null, lateness: null, shape: "" };

  select.addEventListener("change", () => {
    state.window = select.value;
    history.replaceState(null, "", `#dashboard?window=${state.window}`);
    ctx.guard(refresh);
  });

  async function refresh() {
    const data = await request("GET", apiPath("stats"), { query: { window: state.window } });
    state.data = data;
    renderCounts(counts, data.counts || {});
    partial.hidden = !data.partial;
    replace(partial, data.partial ? ["Still adding older runs to the statistics: buckets "
      + "before ", timeElement(data.completeFrom), " may be missing some."] : "");
    const minutes = data.bucketS / 60;
    replace(runsTitle, `Runs per ${minutes >= 60 ? "hour" : minutes > 1 ? `${minutes} minutes`
      : "minute"}, by status`);
    drawCharts(data);
    describeCharts(data);
    renderTop(topBox, data);
  }

  function drawCharts(data) {
    const statuses = orderStatuses(Object.keys(data.runs || {}));
    const shape = `${data.window}|${statuses.join(",")}`;
    const runsData = stackedData(data, statuses);
    const latenessData = [data.buckets.map((t) => t), data.latenessP50Ms, data.latenessP99Ms];
    const width = Math.max(320, (runsBox.clientWidth || 600));
    if (charts.shape === shape && charts.runs && charts.lateness) {
      charts.runs.setData(runsData);
      charts.lateness.setData(latenessData);
      return;
    }
    charts.runs?.destroy();
    charts.lateness?.destroy();
    charts.shape = shape;
    charts.runs = new uPlot(runsOptions(statuses, width, data), runsData, runsBox);
    charts.lateness = new uPlot(latenessOptions(width), latenessData, latenessBox);
    charts.runs.over.addEventListener("click", () => openBucket(charts.runs, statuses));
  }

  /** The charts' text for those who cannot see them, and the window's runs link. */
  function describeCharts(data) {
    const totals = Object.entries(data.runs || {})
      .map(([s, counts]) => [s, counts.reduce((a, n) => a + (n || 0), 0)])
      .filter(([, n]) => n > 0);
    const all = totals.reduce((a, [, n]) => a + n, 0);
    runsBox.setAttribute("aria-label", `Runs over the window, by status: ${all} in all` +
      (totals.length ? ` (${totals.map(([s, n]) => `${s} ${n}`).join(", ")})` : ""));
    const worst = Math.max(0, ...(data.latenessP99Ms || []).filter((v) => v !== null));
    latenessBox.setAttribute("aria-label", `Lateness p50 and p99 over the window; ` +
      `the highest p99 ${worst} ms`);
    const first = data.buckets[0];
    const last = data.buckets[data.buckets.length - 1];
    if (first !== undefined) {
      const query = new URLSearchParams({ since: String(first),
        until: String(last + data.bucketS * 1000) });
      windowRuns.setAttribute("href", `#runs?${query}`);
    }
  }

  /** The runs behind the clicked bar: its bucket, and the status under the pointer. */
  function openBucket(u, statuses) {
    const i = u.cursor.idx;
    const data = state.data;
    if (i === null || i === undefined || !data) return;
    const since = data.buckets[i];
    const until = since + data.bucketS * 1000;
    const y = u.posToVal(u.cursor.top, "y");
    let below = 0;
    let status = "";
    for (const s of statuses) {
      const n = data.runs[s][i] || 0;
      if (n > 0 && y >= below && y <= below + n) status = s;
      below += n;
    }
    const query = new URLSearchParams({ since: String(since), until: String(until) });
    if (status) query.set("status", status);
    ctx.navigate(`#runs?${query}`);
  }

  return { root, refresh, events: ["job.", "run.", "worker."] };  // live events that refresh it
}

function renderCounts(node, counts) {
  replace(node, COUNTS.map(([key, label]) => el("div", { class: "count", dataset: { count: key } },
    el("dt", {}, label), el("dd", {}, counts[key] ?? "—"))));
}

function renderTop(node, data) {
  const top = data.topFailing || [];
  if (top.length === 0) {
    replace(node, el("p", { class: "empty" }, "No failures in this window."));
    return;
  }
  const max = top[0].failures;
  const statuses = (data.failureStatuses || []).join(",");
  const since = data.buckets[0];
  // The name opens the job's page; the count, the failed runs it counts.
  const failedRuns = (t) => el("a", { class: "num failed-runs",
    href: `#runs?${new URLSearchParams({ job: t.job, status: statuses, since: String(since) })}`,
    "aria-label": `${t.failures} failure${t.failures === 1 ? "" : "s"} of ${t.job}: `
      + "open those runs" }, t.failures);
  replace(node, el("ol", { class: "top-failing" }, top.map((t) => el("li", {},
    el("a", { href: jobHash(t.job), class: "name", title: "Open the job's page" }, t.job),
    // The optimum (0) below low, and high below 1: any failure is in the "even less
    // good" range, which browsers colour red (without these it is "optimum", green).
    el("meter", { min: 0, max, low: 0.5, high: 0.5, optimum: 0, value: t.failures,
      "aria-label": `failures of ${t.job}` }),
    failedRuns(t)))));
}

function orderStatuses(keys) {
  const known = STATUS_ORDER.filter((s) => keys.includes(s));
  return [...known, ...keys.filter((s) => !STATUS_ORDER.includes(s)).sort()];
}

/** uPlot data: x, then each status's running total, tallest first (drawn behind). */
function stackedData(data, statuses) {
  const totals = [];
  let sum = data.buckets.map(() => 0);
  for (const s of statuses) {
    sum = sum.map((v, i) => v + (data.runs[s][i] || 0));
    totals.push(sum);
  }
  return [data.buckets, ...totals.reverse()];
}

/** The axes' colours from the palette (app.css): readable in the light and the dark. */
export function axisStyle() {
  const css = getComputedStyle(document.documentElement);
  const stroke = css.getPropertyValue("--text").trim() || "#1d2330";
  const line = { stroke: css.getPropertyValue("--grid").trim() || "rgba(0,0,0,0.08)",
    width: 1 };
  return { stroke, grid: line, ticks: line };
}

/** The x series of a chart over time. uPlot writes a legend cell's first text node
 * (kept empty here); the hovered time goes after it as a timeElement (timeLegend), local
 * with UTC on hover, like every time in the UI. */
export function timeSeries() {
  return { label: "Time", value: () => "" };
}

/** uPlot hooks that put the hovered time into the x series' legend cell. */
export const timeLegend = {
  setLegend: [(u) => {
    const cell = u.root.querySelector(".u-legend .u-series .u-value");
    if (!cell || !cell.firstChild) return;
    const i = u.cursor.idx;
    cell.replaceChildren(cell.firstChild,
      i === null || i === undefined ? "—" : timeElement(u.data[0][i]));
  }],
};

function runsOptions(statuses, width, data) {
  const axis = axisStyle();
  const bars = uPlot.paths.bars({ size: [0.9, 40], align: 1 });
  const own = (s) => (u, v, si, i) => (i === null || i === undefined ? "—"
    : String(data.runs[s]?.[i] ?? 0));
  return {
    width, height: CHART_HEIGHT, ms: 1,
    cursor: { drag: { x: false, y: false } },
    scales: { y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    axes: [axis, { ...axis, label: "runs" }],
    hooks: timeLegend,
    series: [timeSeries(), ...statuses.slice().reverse().map((s) => ({
      label: s, fill: COLORS[s] || "#667085", stroke: COLORS[s] || "#667085", width: 0,
      paths: bars, points: { show: false }, value: own(s) }))],
  };
}

function latenessOptions(width) {
  const axis = axisStyle();
  return {
    width, height: CHART_HEIGHT, ms: 1,
    cursor: { drag: { x: false, y: false } },
    scales: { y: { range: (u, min, max) => [0, Math.max(1, max ?? 1)] } },
    axes: [axis, { ...axis, label: "ms" }],
    hooks: timeLegend,
    series: [timeSeries(),
      { label: "p50", stroke: "#2457c5", width: 2, spanGaps: false },
      { label: "p99", stroke: "#d92d20", width: 2, spanGaps: false }],
  };
}
