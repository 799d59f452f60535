// A list read page by page with the API's opaque cursors, newest first: the shape the
// Runs and Audit views share. `refresh` puts the newest page in front of what is shown,
// so pages already brought in with "Load more" stay; `loadMore` appends the next page.
// `cursorPager` pages forward and back instead (the jobs list: one page shown at a time).

import { apiPath, request } from "./client.js";
import { el } from "./dom.js";

/**
 * `path`: the API path (apiPath's argument); `key`: the page's list field; `idOf`: an
 * item's identity; `query(cursor)`: the query of a page; `order(items)`: optional,
 * called on the merged list after a refresh (items already shown are replaced by the
 * newer copies of the same id that the page holds).
 */
export function cursorList({ path, key, idOf, query, order = (items) => items }) {
  const list = { items: [], nextCursor: null };

  list.reset = () => {
    list.items = [];
    list.nextCursor = null;
  };

  list.refresh = async () => {
    const page = await request("GET", apiPath(path), { query: query(null) });
    const rows = page[key] || [];
    const newer = new Map(rows.map((item) => [idOf(item), item]));
    const known = new Set(list.items.map(idOf));
    if (list.items.length === 0) list.nextCursor = page.nextCursor || null;
    list.items = order([...rows.filter((item) => !known.has(idOf(item))),
      ...list.items.map((item) => newer.get(idOf(item)) || item)]);
    return page;
  };

  list.loadMore = async () => {
    const page = await request("GET", apiPath(path), { query: query(list.nextCursor) });
    const known = new Set(list.items.map(idOf));
    list.items.push(...(page[key] || []).filter((item) => !known.has(idOf(item))));
    list.nextCursor = page.nextCursor || null;
    return page;
  };

  return list;
}

/** Wire a "Load more" button: disabled while its page loads, errors told by `ctx`. */
export function onLoadMore(button, ctx, list, render) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await list.loadMore();
      render();
    } catch (err) {
      ctx.notify(err.describe ? err.describe() : String(err), "error");
    } finally {
      button.disabled = false;
    }
  });
}

/**
 * Pages of a list the server pages by cursor and filters (the jobs list): page `n`
 * starts at `cursors[n]` (null: the first). `query()` is the filter; `reset()` goes
 * back to the first page (a new filter); `answered(page)` keeps the next cursor and the
 * total; `controls` are "Previous"/"Next" buttons and "1–100 of 10,000", which call
 * `reload` after moving.
 */
export function cursorPager({ limit, reload }) {
  const pager = { cursors: [null], index: 0, nextCursor: null, total: 0, shown: 0 };
  const previous = el("button", { type: "button", "aria-label": "Previous page" }, "‹ Previous");
  const next = el("button", { type: "button", "aria-label": "Next page" }, "Next ›");
  const where = el("span", { class: "muted small", "aria-live": "polite" });
  pager.controls = el("div", { class: "pager" }, previous, where, next);

  pager.query = () => ({ limit, cursor: pager.cursors[pager.index] });
  pager.reset = () => {
    pager.cursors = [null];
    pager.index = 0;
  };
  pager.answered = (page, shown) => {
    pager.nextCursor = page.nextCursor || null;
    pager.total = page.total ?? shown;
    pager.shown = shown;
    const first = pager.index * limit;
    where.textContent = shown === 0 ? `0 of ${pager.total}`
      : `${first + 1}–${first + shown} of ${pager.total}`;
    previous.disabled = pager.index === 0;
    next.disabled = pager.nextCursor === null;
    pager.controls.hidden = pager.index === 0 && pager.nextCursor === null;
  };
  previous.addEventListener("click", () => {
    if (pager.index === 0) return;
    pager.index -= 1;
    reload();
  });
  next.addEventListener("click", () => {
    if (pager.nextCursor === null) return;
    pager.cursors[pager.index + 1] = pager.nextCursor;
    pager.index += 1;
    reload();
  });
  return pager;
}
