// Live updates: the master's GET /api/v1/events (docs/api.md, "Events"), read with
// fetch and a stream reader. Not EventSource: it cannot send the Authorization header,
// and the token must never go into a URL (logs and history keep URLs).
//
// One connection per tab, shared by every view through subscribe(). It reconnects by
// itself with the id of the last event (Last-Event-ID), so no event is missed or
// applied twice; the backoff starts at RETRY_MIN_MS and doubles up to RETRY_MAX_MS.
// After FAILS_BEFORE_POLLING failures in a row, isLive() turns false and the app
// polls again (the stream is still retried, and isLive() turns true when it is back).
// A stream silent for SILENCE_MS (the master sends a heartbeat every 15 s) is
// taken for broken.

import { getToken } from "./client.js";

const PATH = "/api/v1/events";
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 15_000;
const FAILS_BEFORE_POLLING = 3;
const SILENCE_MS = 45_000;

const listeners = new Set();       // (kind, data) => void
const stateListeners = new Set();  // (live: boolean) => void
let lastId = "";
let live = false;
let failures = 0;
let started = false;
let current = null;                // the AbortController of the connection in use
let wake = null;                   // ends the backoff wait early (reconnect())

/** Call onEvent(kind, data) for each event whose kind starts with one of `prefixes`
 * (all when null); also for "ready" and "reset", after which a view should reload.
 * Returns the function that unsubscribes. */
export function subscribe(prefixes, onEvent) {
  const listener = (kind, data) => {
    if (prefixes === null || kind === "ready" || kind === "reset" ||
        prefixes.some((p) => kind.startsWith(p))) onEvent(kind, data);
  };
  listeners.add(listener);
  start();
  return () => listeners.delete(listener);
}

/** onChange(live) whenever the stream comes up or falls back to polling. */
export function onLiveChange(onChange) {
  stateListeners.add(onChange);
  return () => stateListeners.delete(onChange);
}

/** True while events arrive: the app may then poll rarely. */
export function isLive() {
  return live;
}

/** Connect again now (the token changed): the old connection is dropped. */
export function reconnect() {
  failures = 0;
  if (current) current.abort();
  if (wake) wake();
}

function start() {
  if (started) return;
  started = true;
  run();
}

function setLive(value) {
  if (value === live) return;
  live = value;
  for (const listener of stateListeners) listener(live);
}

async function run() {
  for (;;) {
    const gotSome = await connectOnce();
    failures = gotSome ? 0 : failures + 1;
    if (failures >= FAILS_BEFORE_POLLING) setLive(false);
    const delay = Math.min(RETRY_MIN_MS * 2 ** Math.max(failures - 1, 0), RETRY_MAX_MS);
    await new Promise((resolve) => {
      wake = resolve;
      setTimeout(resolve, delay);
    });
    wake = null;
  }
}

/** One connection, read until it ends; true if it delivered anything. */
async function connectOnce() {
  const abort = new AbortController();
  current = abort;
  let silence = setTimeout(() => abort.abort(), SILENCE_MS);
  const headers = { Accept: "text/event-stream" };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (lastId) headers["Last-Event-ID"] = lastId;
  const parser = new Parser();
  let gotSome = false;
  try {
    const response = await fetch(PATH, {
      headers, cache: "no-store", credentials: "same-origin", redirect: "error",
      signal: abort.signal,
    });
    if (!response.ok || !response.body) return false;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      clearTimeout(silence);
      silence = setTimeout(() => abort.abort(), SILENCE_MS);
      for (const event of parser.feed(value)) {
        gotSome = true;
        dispatch(event);
      }
      if (parser.lastId) {
        lastId = parser.lastId;
        gotSome = true;
        setLive(true);
      }
    }
  } catch {
    // aborted, network error, bad body: retried by run()
  } finally {
    clearTimeout(silence);
    if (current === abort) current = null;
  }
  return gotSome;
}

function dispatch(event) {
  let data = null;
  try {
    data = JSON.parse(event.data);
  } catch {
    return;
  }
  for (const listener of listeners) {
    try {
      listener(event.event, data);
    } catch (err) {
      console.warn("event listener failed", err);  // one bad view must not stop the rest
    }
  }
}

/** Server-sent events, as EventSource parses them: an id with no data still moves the
 * last id (the master's heartbeats), a block without an id keeps the previous one. */
export class Parser {
  constructor() {
    this.pending = "";
    this.lastId = "";
    this.reset();
  }

  reset() {
    this.id = null;
    this.event = "";
    this.data = [];
  }

  feed(text) {
    const out = [];
    const lines = (this.pending + text).replace(/\r\n?/g, "\n").split("\n");
    this.pending = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (this.id !== null) this.lastId = this.id;
        if (this.data.length) {
          out.push({ id: this.lastId, event: this.event || "message", data: this.data.join("\n") });
        }
        this.reset();
        continue;
      }
      if (line.startsWith(":")) continue;
      const at = line.indexOf(":");
      const name = at < 0 ? line : line.slice(0, at);
      let value = at < 0 ? "" : line.slice(at + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (name === "id" && !value.includes("\0")) this.id = value;
      else if (name === "event") this.event = value;
      else if (name === "data") this.data.push(value);
    }
    return out;
  }
}
