// A list read page by page with the API's opaque cursors, newest first: the shape the
// Runs and Audit views share. `refresh` puts the newest page in front of what is shown,
// so pages already brought in with "Load more" stay; `loadMore` appends the next page.

import { apiPath, request } from "./client.js";

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
