// The actions on one job — run now, kill, pause or resume, edit, runs, delete — as
// buttons, shared by the jobs list and the job page so that both call the same
// endpoints with the same confirmations and notices.

import { apiPath, request } from "./client.js";
import { el } from "./dom.js";
import { needs } from "./role.js";

/**
 * Buttons for `job` (a JobView). `refresh`: reloads the view after an action;
 * `onDeleted`: called after a delete instead of `refresh` when given (the job page
 * then has nothing left to show); `runs`: false leaves out the "Runs" button.
 */
export function jobActions(job, ctx, refresh, { onDeleted = null, runs = true } = {}) {
  const running = job.running || [];
  const act = (label, options, perform, after = refresh) => el("button", {
    type: "button", class: options.className || "", disabled: options.disabled,
    dataset: { needs: options.needs || "operate" },
    title: options.title, "aria-label": options.label,
    on: { click: (event) => runAction(event.currentTarget, ctx, after, perform) },
  }, label);
  const name = job.name;
  return [
    act("Run now", { title: "Run once now, whatever the schedule" }, async () => {
      const answer = await request("POST", apiPath("jobs", name, "run"));
      return `Triggered ${name}: run ${answer.runId}`;
    }),
    act("Kill", { disabled: running.length === 0, className: "danger",
      title: "Kill every running instance" }, async () => {
      if (!ctx.confirm(`Kill the running instances of job “${name}”?`)) return null;
      await request("POST", apiPath("jobs", name, "kill"));
      return `Kill requested for ${name}`;
    }),
    job.paused
      ? act("Resume", {}, async () => {
        await request("POST", apiPath("jobs", name, "resume"));
        return `Resumed ${name}`;
      })
      : act("Pause", {}, async () => {
        await request("POST", apiPath("jobs", name, "pause"));
        return `Paused ${name}`;
      }),
    needs("admin", el("button", { type: "button", on: { click: () => ctx.navigate(editHash(name)) } },
      "Edit")),
    runs ? el("button", { type: "button", on: { click: () => ctx.navigate(runsHash(name)) } },
      "Runs") : null,
    act("Delete", { className: "danger", needs: "admin",
      title: "Delete the job (kills its running instance)" },
      async () => {
        if (!ctx.confirm(`Delete job “${name}”? Its running instance is killed.`)) return null;
        await request("DELETE", apiPath("jobs", name));
        return `Deleted ${name}`;
      }, onDeleted || refresh),
  ];
}

/** Perform one action: button disabled meanwhile, outcome as a notice, then `after`. */
async function runAction(button, ctx, after, perform) {
  button.disabled = true;
  try {
    const message = await perform();
    if (message === null) return;  // the operator cancelled a confirmation
    ctx.notify(message, "ok");
    await after();
  } catch (err) {
    ctx.notify(err.describe ? err.describe() : String(err), "error");
  } finally {
    button.disabled = false;
  }
}

export function editHash(name) {
  return `#edit?name=${encodeURIComponent(name)}`;
}

export function runsHash(name) {
  return `#runs?job=${encodeURIComponent(name)}`;
}

export function jobHash(name) {
  return `#job?name=${encodeURIComponent(name)}`;
}
