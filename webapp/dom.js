// DOM building and formatting helpers.
//
// Security invariant of the whole UI: server data (job names, commands, outputs, worker
// ids...) only ever reaches the page as text nodes or property values through el() and
// text(). No HTML parsing of strings anywhere; attributes that could run code or load a
// URL (event handlers, style, src, non-fragment href) are refused outright.

const FORBIDDEN_ATTRIBUTE = /^(on|style$|src|srcdoc$|action$|formaction$)|html$/i;

/** Create an element: el("td", {class: "x", title: t}, "text", childNode, [more]). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    setProp(node, key, value);
  }
  append(node, children);
  return node;
}

function setProp(node, key, value) {
  if (value === undefined || value === null || value === false) return;
  if (key === "on") {
    for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
  } else if (key === "class") {
    node.className = value;
  } else if (key === "dataset") {
    Object.assign(node.dataset, value);
  } else if (FORBIDDEN_ATTRIBUTE.test(key)) {
    throw new Error(`el(): attribute ${key} is not allowed`);
  } else if (key === "href" && !String(value).startsWith("#")) {
    throw new Error("el(): only #fragment links are allowed");
  } else if (value === true) {
    node.setAttribute(key, "");
  } else {
    node.setAttribute(key, String(value));
  }
}

/** Append children: strings and numbers become text nodes; arrays are flattened. */
export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace all children of node. */
export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/** Re-render `node` without losing the keyboard's place: a view refreshed by a live
 * event every few seconds would otherwise throw the focus back to the page's start. The
 * control focused inside it gets the focus back if an equal one (tag, text, link, row)
 * is there after `render()`. */
export function keepingFocus(node, render) {
  const active = document.activeElement;
  const key = active && active !== node && node.contains(active) ? focusKey(active) : null;
  render();
  if (key === null || node.contains(document.activeElement)) return;
  const again = [...node.querySelectorAll(active.tagName)].find((e) => focusKey(e) === key);
  if (again) again.focus({ preventScroll: true });
}

function focusKey(e) {
  return [e.tagName, e.getAttribute("aria-describedby"), e.getAttribute("href"),
    e.getAttribute("name"), e.textContent].join("|");
}

const pad = (n, width = 2) => String(n).padStart(width, "0");
const isTime = (ms) => typeof ms === "number" && Number.isFinite(ms);

/** Epoch ms -> "2024-05-01 14:00:05" in the browser's local time zone, or in
 * `timeZone` (an IANA name: a job's zone) when given. */
export function formatTime(ms, timeZone = undefined) {
  if (!isTime(ms)) return "—";
  if (timeZone) return zoneTime(ms, timeZone);
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function zoneTime(ms, timeZone) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", {
    timeZone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
    minute: "2-digit", second: "2-digit", hourCycle: "h23",
  }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
}

/** Epoch ms -> "2024-05-01T12:00:05.000Z" (ISO 8601, UTC): every shown time's hover. */
export function formatUtc(ms) {
  if (!isTime(ms)) return "—";
  return new Date(ms).toISOString();
}

/** A <time> element: local time (or `timeZone`'s) as text, UTC on hover. Every time
 * the UI shows is one of these or a relativeElement: none is formatted another way. */
export function timeElement(ms, timeZone = undefined) {
  if (!isTime(ms)) return el("span", { class: "muted" }, "—");
  return el("time", { datetime: new Date(ms).toISOString(), title: formatUtc(ms) },
    formatTime(ms, timeZone));
}

/** A <time> element showing "3s ago" / "in 5m"; the local time and UTC on hover. */
export function relativeElement(ms) {
  if (!isTime(ms)) return el("span", { class: "muted" }, "—");
  return el("time", { datetime: new Date(ms).toISOString(),
    title: `${formatTime(ms)} (${formatUtc(ms)})` }, formatRelative(ms));
}

/** A length of time, two units at most: 45s, 3m 5s, 2h 10m, 4d 3h. */
export function formatSpan(ms) {
  let seconds = Math.floor(Math.abs(ms) / 1000);
  if (seconds < 60) return `${seconds}s`;
  let minutes = Math.floor(seconds / 60);
  seconds %= 60;
  if (minutes < 60) return seconds ? `${minutes}m ${seconds}s` : `${minutes}m`;
  let hours = Math.floor(minutes / 60);
  minutes %= 60;
  if (hours < 24) return minutes ? `${hours}h ${minutes}m` : `${hours}h`;
  const days = Math.floor(hours / 24);
  hours %= 24;
  return hours ? `${days}d ${hours}h` : `${days}d`;
}

/** "in 3m 5s" / "2h ago" / "now". */
export function formatRelative(ms, nowMs = Date.now()) {
  if (!isTime(ms)) return "";
  const delta = ms - nowMs;
  if (Math.abs(delta) < 1000) return "now";
  return delta > 0 ? `in ${formatSpan(delta)}` : `${formatSpan(delta)} ago`;
}

/** Run duration: "1.234 s" under a minute, else "3m 5s". */
export function formatDuration(startMs, endMs) {
  if (!isTime(startMs) || !isTime(endMs)) return "—";
  const elapsed = endMs - startMs;
  return elapsed < 60_000 ? `${(elapsed / 1000).toFixed(3)} s` : formatSpan(elapsed);
}

/** "k=v, k2=v2" of a label/env mapping. */
export function formatPairs(mapping) {
  return Object.entries(mapping || {}).sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`);
}

/** A coloured status/state pill. */
export function badge(text, kind) {
  return el("span", { class: `badge badge-${kind}` }, text);
}

/** Build a table: headers is a list of strings; rows a list of arrays of cells. */
export function table(headers, rows, { className = "" } = {}) {
  return el("div", { class: "table-wrap" },
    el("table", { class: className },
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows)));
}

/** `action` once calls stop coming for `delayMs` (a filter box asks the server once). */
export function debounce(action, delayMs) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(action, delayMs);
  };
}
