// Audit view: every change (put, delete, pause, resume, run, kill) with the name and role
// of the token that made it, newest first; filters by job and token name; cursor paging.

import { badge, el, replace, table, timeElement } from "./dom.js";
import { cursorList, onLoadMore } from "./paging.js";

const PAGE_SIZE = 50;
const HEADERS = ["Time", "Token", "Role", "Action", "Job", "Via", "Change"];

/** Build the view for `params` (URLSearchParams: job, token). */
export function auditView(ctx, params) {
  const state = { job: params.get("job") || "", token: params.get("token") || "",
    partial: false };
  const jobInput = el("input", { type: "search", placeholder: "All jobs", value: state.job,
    "aria-label": "Job name", class: "mono" });
  const tokenInput = el("input", { type: "search", placeholder: "All tokens",
    value: state.token, "aria-label": "Token name", class: "mono" });
  const body = el("div");
  const note = el("p", { class: "muted", hidden: true },
    "The run store is unavailable: only the newest entries (still in etcd) are shown.");
  const more = el("button", { type: "button", hidden: true }, "Load more");
  const root = el("section", { class: "view" },
    el("div", { class: "toolbar" }, el("h2", {}, "Audit trail"),
      el("form", { class: "filters", on: { submit: (e) => { e.preventDefault(); apply(); } } },
        jobInput, tokenInput, el("button", { type: "submit" }, "Apply"))),
    note, body, el("div", { class: "more" }, more));
  const query = (cursor) => ({ job: state.job, token: state.token, limit: PAGE_SIZE, cursor });
  const entries = cursorList({ path: "audit", key: "entries", idOf: (e) => e.id, query });
  onLoadMore(more, ctx, entries, render);

  function render() {
    more.hidden = !entries.nextCursor;
    note.hidden = !state.partial;
    if (entries.items.length === 0) {
      replace(body, el("p", { class: "empty" }, "No changes recorded."));
      return;
    }
    replace(body, table(HEADERS, entries.items.map(entryRow), { className: "audit" }));
  }

  async function apply() {
    state.job = jobInput.value.trim();
    state.token = tokenInput.value.trim();
    entries.reset();
    const search = new URLSearchParams();
    if (state.job) search.set("job", state.job);
    if (state.token) search.set("token", state.token);
    const suffix = search.toString();
    history.replaceState(null, "", `#audit${suffix ? `?${suffix}` : ""}`);
    await ctx.guard(refresh);
  }

  /** Newest page, merged in front of what is shown so that "load more" pages stay. */
  async function refresh() {
    const page = await entries.refresh();
    state.partial = Boolean(page.partial);
    render();
  }

  return { root, refresh };
}

function entryRow(entry) {
  return el("tr", { dataset: { entry: entry.id } },
    el("td", {}, timeElement(entry.time)),
    el("td", { class: "name" }, entry.token),
    el("td", {}, badge(entry.role, `role-${entry.role}`)),
    el("td", { class: "action" }, entry.action),
    el("td", { class: "job" }, entry.job),
    el("td", {}, entry.via),
    el("td", { class: "change" }, changeText(entry)));
}

/** The change in a few words; the whole spec of a put is on hover. */
function changeText(entry) {
  const change = entry.change || {};
  switch (entry.action) {
    case "put": {
      const spec = change.spec || {};
      return el("code", { title: JSON.stringify(spec, null, 2) },
        `${change.created ? "created" : "updated"}: ${spec.cronExpr || ""} ${spec.command || ""}`);
    }
    case "run":
    case "kill":
      return el("code", {}, `run ${change.runId || "all"}`);
    default:
      return "";
  }
}
