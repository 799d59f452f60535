// Alerts view: the alert channels (an admin token's; secrets are never sent to the UI)
// and a button to send each a test alert. Channels are made with schedctl or the API.

import { ApiError, apiPath, request } from "./client.js";
import { el, replace, table } from "./dom.js";

const HEADERS = ["Name", "Type", "Where", "Signed", ""];

export function alertsView(ctx) {
  const body = el("div");
  const root = el("section", { class: "view" },
    el("div", { class: "toolbar" }, el("h2", {}, "Alert channels")), body);

  async function refresh() {
    let answer;
    try {
      answer = await request("GET", apiPath("alert-channels"));
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) {
        replace(body, el("p", { class: "empty" },
          "Alert channels are shown to admin tokens only."));
        return;
      }
      throw err;
    }
    const channels = answer.channels || [];
    if (channels.length === 0) {
      replace(body, el("p", { class: "empty" }, "No alert channels: add one with " +
        "“schedctl alerts channels put NAME --webhook URL”."));
      return;
    }
    replace(body, table(HEADERS, channels.map((c) => channelRow(ctx, c)),
      { className: "channels" }));
  }

  return { root, refresh };
}

function where(channel) {
  if (channel.type === "webhook") return channel.url;
  return `${channel.host}:${channel.port ?? 587} → ${(channel.to || []).join(", ")}`;
}

function channelRow(ctx, channel) {
  const test = el("button", { type: "button", on: { click: async () => {
    test.disabled = true;
    try {
      const answer = await request("POST", apiPath("alert-channels", channel.name, "test"));
      ctx.notify(`Test alert ${answer.eventId} queued for ${channel.name}`, "ok");
    } catch (err) {
      ctx.notify(err.describe ? err.describe() : String(err), "error");
    } finally {
      test.disabled = false;
    }
  } } }, "Send test");
  return el("tr", { dataset: { channel: channel.name } },
    el("td", { class: "name" }, channel.name),
    el("td", {}, channel.type),
    el("td", { class: "mono" }, where(channel)),
    el("td", {}, channel.type === "webhook" ? (channel.hasSecret ? "yes" : "no") : "—"),
    el("td", {}, test));
}
