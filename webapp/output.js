// Live output of a running run: GET /api/v1/runs/<runId>/output (docs/api.md, "Live
// output"), read with fetch and a stream reader as events.js reads /api/v1/events, so
// the token goes in the Authorization header, never into a URL. Lines appear as the
// command prints them (stderr in its own colour), the panel follows the end unless the
// reader scrolled up, and it ends with the run's final status. A broken stream is
// opened again with the number of the last chunk (Last-Event-ID): nothing twice, nothing
// missed. The panel stops by itself once it is no longer in the page.

import { apiPath, getToken } from "./client.js";
import { badge, el, replace } from "./dom.js";
import { Parser } from "./events.js";

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10_000;
const SILENCE_MS = 45_000;

/** A panel streaming the output of `runId`: { root, stop() }. */
export function liveOutputPanel(runId) {
  const text = el("pre", { class: "live-text", tabindex: "0",
    "aria-label": `Output of run ${runId}` });
  const status = el("p", { class: "muted live-status", role: "status" }, "Connecting…");
  const root = el("div", { class: "output live-output", dataset: { run: runId } },
    el("h3", {}, "Live output"), text, status);
  let stopped = false;
  let lastId = "";
  let abort = null;
  let printed = false;
  let mounted = false;
  const gone = () => {  // taken out of the page (another view): stop streaming
    if (root.isConnected) mounted = true;
    return stopped || (mounted && !root.isConnected);
  };

  const stop = () => {
    stopped = true;
    if (abort) abort.abort();
  };

  function append(data, stream) {
    const follow = text.scrollTop + text.clientHeight >= text.scrollHeight - 4;
    text.append(stream === "err" ? el("span", { class: "live-err" }, data)
      : document.createTextNode(data));
    printed = true;
    if (follow) text.scrollTop = text.scrollHeight;
  }

  function apply(event) {
    let data = {};
    try {
      data = JSON.parse(event.data);
    } catch {
      return false;
    }
    if (event.event === "output") append(data.data || "", data.stream);
    else if (event.event === "truncated") append(`\n${data.reason || "(truncated)"}\n`, "err");
    else if (event.event === "end") {
      const exit = data.exitCode === null || data.exitCode === undefined ? ""
        : `, exit ${data.exitCode}`;
      replace(status, "Ended: ", badge(data.status || "not recorded", data.status || "lost"),
        exit);
      if (!printed) text.append(document.createTextNode("(no output)"));
      return true;
    }
    return false;
  }

  async function connectOnce() {
    abort = new AbortController();
    const mine = abort;
    let silence = setTimeout(() => mine.abort(), SILENCE_MS);
    const headers = { Accept: "text/event-stream" };
    const token = getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (lastId) headers["Last-Event-ID"] = lastId;
    const parser = new Parser();
    try {
      const response = await fetch(apiPath("runs", runId, "output"), {
        headers, cache: "no-store", credentials: "same-origin", redirect: "error",
        signal: mine.signal,
      });
      if (response.status === 404) {
        replace(status, "This run is not running and has no record (yet).");
        return "gone";
      }
      if (!response.ok || !response.body) return "retry";
      replace(status, "Live: lines appear as the command prints them.");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done || gone()) break;
        clearTimeout(silence);
        silence = setTimeout(() => mine.abort(), SILENCE_MS);
        for (const event of parser.feed(value)) {
          if (apply(event)) return "ended";
        }
        if (parser.lastId) lastId = parser.lastId;
      }
    } catch {
      // aborted, network error: tried again below
    } finally {
      clearTimeout(silence);
    }
    return "retry";
  }

  async function run() {
    let delay = RETRY_MIN_MS;
    while (!gone()) {
      const outcome = await connectOnce();
      if (outcome !== "retry" || gone()) return;
      replace(status, `Reconnecting in ${delay / 1000} s…`);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    }
  }

  queueMicrotask(run);
  return { root, stop };
}

/** The view #output?run=<runId>: one run's live output on a page of its own. */
export function outputView(ctx, params) {
  const runId = params.get("run") || "";
  const panel = liveOutputPanel(runId);
  const root = el("section", { class: "view" },
    el("div", { class: "toolbar" }, el("h2", {}, "Run ", el("code", {}, runId))),
    panel.root);
  return { root };
}
