// Workers view: who is alive, how loaded, whether its clock can be trusted, and what it
// says keeps it from taking work (its "problems", e.g. "spill: disk full").

import { apiPath, request } from "./client.js";
import { badge, el, formatPairs, relativeElement, replace, table, timeElement } from "./dom.js";

// Above this clock difference a worker may start fires late or early (DESIGN §12); the
// master sends its --max-clock-skew-s as maxClockSkewMs (an older master: none, 1 s).
const SKEW_WARNING_MS = 1000;
const HEADERS = ["ID", "Host", "PID", "Labels", "Running", "Version", "Started", "Last seen",
  "Clock skew"];

export function workersView() {
  const body = el("div");
  const root = el("section", { class: "view" },
    el("div", { class: "toolbar" }, el("h2", {}, "Workers")), body);

  async function refresh() {
    const answer = await request("GET", apiPath("workers"));
    const workers = answer.workers || [];
    const limitMs = Number.isInteger(answer.maxClockSkewMs) && answer.maxClockSkewMs > 0
      ? answer.maxClockSkewMs : SKEW_WARNING_MS;
    if (workers.length === 0) {
      replace(body, el("p", { class: "empty warning" },
        "No live workers: no job can run until one registers."));
      return;
    }
    replace(body, table(HEADERS, workers.map((w) => workerRow(w, limitMs)),
      { className: "workers" }));
  }

  return { root, refresh, events: ["worker.", "run."] };  // live events that refresh it
}

function workerRow(worker, limitMs) {
  const labels = formatPairs(worker.labels);
  return el("tr", { dataset: { worker: worker.id } },
    el("td", { class: "name" }, worker.id, problems(worker.problems)),
    el("td", {}, worker.host),
    el("td", { class: "num" }, worker.pid),
    el("td", {}, labels.length ? labels.map((l) => el("span", { class: "chip" }, l))
      : el("span", { class: "muted" }, "—")),
    el("td", {}, load(worker.running, worker.capacity)),
    el("td", {}, worker.seed === true ? "seed" : worker.version),
    el("td", {}, timeElement(worker.startedAt)),
    el("td", {}, relativeElement(worker.lastSeen)),
    el("td", { class: "num" }, skew(worker.skewMs, limitMs)));
}

function problems(lines) {
  if (!Array.isArray(lines)) return [];
  return lines.map((line) => el("span", { class: "problem", title: "This worker claims no new fire" },
    " ", badge(`⚠ ${line}`, "failed")));
}

function load(running, capacity) {
  return el("span", { class: "load" },
    el("meter", { min: 0, max: capacity || 1, value: running || 0,
      "aria-label": "running jobs" }),
    ` ${running ?? "?"}/${capacity ?? "?"}`);
}

function skew(skewMs, limitMs) {
  if (typeof skewMs !== "number") return el("span", { class: "muted" }, "—");
  const text = `${skewMs > 0 ? "+" : ""}${Math.round(skewMs)} ms`;
  if (Math.abs(skewMs) <= limitMs) return text;
  return el("span", { title: `Clock differs from the master's by more than ${limitMs / 1000} s` },
    badge(`⚠ ${text}`, "warning"));
}
