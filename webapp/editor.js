// Job editor: every spec field (DESIGN §5), a live cron preview, server errors by field.

import { ApiError, apiPath, request } from "./client.js";
import { debounce, el, formatRelative, replace, timeElement } from "./dom.js";

const PREVIEW_DELAY_MS = 300;
const PREVIEW_COUNT = 5;

// One entry per spec field, in form order. `kind` picks the control; `parse` turns the
// control's text into the JSON value (undefined = leave the field out: server default).
const FIELDS = [
  { name: "name", label: "Name", kind: "text", required: true,
    help: "Letters, digits, “.”, “_”, “-”; up to 128 characters. Fixed once created." },
  { name: "command", label: "Command", kind: "textarea", mono: true, required: true,
    help: "Run with bash -c on a worker." },
  { name: "cronExpr", label: "Cron expression", kind: "text", mono: true,
    help: "5 fields (minute first), 6 (seconds first) or 7 (+ year); @daily, @hourly…; " +
      "@every 90s. May be empty for a job that runs after another (below)." },
  { name: "timezone", label: "Time zone", kind: "text", initial: "UTC", list: "time-zones",
    help: "IANA name; the cron expression is read in this zone." },
  { name: "timeout", label: "Timeout (s)", kind: "number", initial: "0",
    help: "Kill the run after this many seconds; 0 = never." },
  { name: "concurrency", label: "Concurrency", kind: "select", initial: "forbid",
    options: [["forbid", "forbid — skip a fire while a run is going"],
      ["allow", "allow — run in parallel"],
      ["replace", "replace — kill the running one, then run"]] },
  { name: "paused", label: "Paused", kind: "checkbox", help: "No scheduled fires while paused." },
  { name: "retries", label: "Retries", kind: "number", initial: "0", step: "1",
    help: "Extra attempts after a failure (0–100)." },
  { name: "retryBackoff", label: "Retry backoff (s)", kind: "number", initial: "10",
    help: "Seconds before a retry." },
  { name: "startingDeadline", label: "Starting deadline (s)", kind: "number", initial: "0",
    help: "How late a missed fire may still run (catch-up); 0 = no catch-up." },
  { name: "catchUp", label: "Catch-up", kind: "select", initial: "last",
    options: [["last", "last — run once for all the fires missed in an outage"],
      ["all", "all — run each missed fire, in order (at most 100)"]] },
  { name: "selector", label: "Worker selector", kind: "pairs", placeholder: "zone=eu",
    help: "Labels a worker must have, one key=value per line." },
  { name: "env", label: "Environment", kind: "pairs", placeholder: "NAME=value",
    help: "Extra environment variables, one NAME=value per line." },
  { name: "user", label: "Run as user", kind: "text", mono: true, placeholder: "backup",
    help: "Empty: the worker's --run-as user. A user runs the job only on workers whose " +
      "--allowed-users list it; elsewhere its runs fail." },
  // `after: {job, on}` is one spec field shown as two controls (readSpec, fill).
  { name: "after", label: "Run after job", kind: "text", mono: true, placeholder: "nightly-dump",
    help: "Run once per finished run of this job that matches below (trigger “chain”). " +
      "Empty: no chain. A chain that loops back is refused." },
  { name: "afterOn", label: "… when its run", kind: "select", initial: "succeeded",
    options: [["succeeded", "succeeded"],
      ["failed", "failed (also timeout, killed, lost)"],
      ["completed", "completed (any end)"]] },
  // `alerts` is {on, channels}: two text controls, read and filled by alertsOf/alertText.
  { name: "alertsOn", label: "Alert on", kind: "text", mono: true,
    placeholder: "failed, timeout, lost, killed, recovered, unschedulable",
    help: "Events that alert, comma-separated; empty: all of them." },
  { name: "alerts", label: "Alert channels", kind: "text", mono: true, placeholder: "ops",
    help: "Alert channel names, comma-separated (an admin makes them). Both empty: the " +
      "cluster's default." },
];

const names = (text) => text.split(",").map((n) => n.trim()).filter(Boolean);

/** The spec's `alerts` from the two controls' text: null when both are empty. */
export function alertsOf(onText, channelsText) {
  const on = names(onText);
  const channels = names(channelsText);
  if (!on.length && !channels.length) return null;
  return on.length ? { on, channels } : { channels };
}

function alertText(job, fieldName) {
  if (!job.alerts) return "";
  return (fieldName === "alertsOn" ? job.alerts.on : job.alerts.channels || []).join(", ");
}

/** Build the editor for a new job (name null) or an existing one. */
export function editorView(ctx, name) {
  const controls = new Map();
  const errors = new Map();
  const formError = el("p", { class: "form-error", role: "alert", hidden: true });
  const preview = el("div", { class: "cron-preview", "aria-live": "polite" });
  // An existing job that can never fire says so at the top (the API's `reason`).
  const unschedulable = el("p", { class: "never unschedulable", role: "status", hidden: true });
  const downstream = el("p", { class: "muted downstream", role: "status", hidden: true });
  const form = el("form", { class: "editor", novalidate: true },
    formError, unschedulable, downstream,
    FIELDS.map((field) => fieldRow(field, controls, errors,
      field.name === "cronExpr" ? preview : null)),
    el("div", { class: "buttons" },
      el("button", { type: "submit", class: "primary", dataset: { needs: "admin" } }, "Save"),
      el("button", { type: "button", on: { click: () => ctx.navigate("#jobs") } }, "Cancel")));
  const root = el("section", { class: "view" },
    el("div", { class: "toolbar" }, el("h2", {}, name ? `Edit job ${name}` : "New job")),
    form, zoneList());
  const errorsView = { formError, errors, controls };
  const schedulePreview = debounce(() => updatePreview(controls, preview), PREVIEW_DELAY_MS);
  controls.get("cronExpr").addEventListener("input", schedulePreview);
  controls.get("timezone").addEventListener("input", schedulePreview);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    save(ctx, controls, errorsView);
  });
  if (name) {
    controls.get("name").readOnly = true;
    load(name, controls, errorsView, unschedulable, downstream)
      .then(() => updatePreview(controls, preview));
  }
  return { root };
}

function fieldRow(field, controls, errors, extra) {
  const id = `field-${field.name}`;
  const control = makeControl(field, id);
  const error = el("p", { class: "field-error", id: `${id}-error`, hidden: true });
  controls.set(field.name, control);
  errors.set(field.name, error);
  control.addEventListener("input", () => clearError(control, error));
  const label = el("label", { for: id }, field.label, field.required ? " *" : "");
  return el("div", { class: "field", dataset: { field: field.name } },
    label,
    el("div", { class: "control" },
      control, error,
      field.help ? el("p", { class: "help" }, field.help) : null,
      extra));
}

function makeControl(field, id) {
  const common = { id, name: field.name, "aria-describedby": `${id}-error` };
  switch (field.kind) {
    case "textarea":
      return el("textarea", { ...common, rows: 3, class: field.mono ? "mono" : "",
        spellcheck: "false" });
    case "pairs":
      return el("textarea", { ...common, rows: 2, class: "mono", spellcheck: "false",
        placeholder: field.placeholder });
    case "select": {
      const select = el("select", common,
        field.options.map(([value, text]) => el("option", { value }, text)));
      select.value = field.initial;
      return select;
    }
    case "checkbox":
      return el("input", { ...common, type: "checkbox" });
    case "number": {
      const input = el("input", { ...common, type: "number", min: "0",
        step: field.step || "any", inputmode: "decimal" });
      input.value = field.initial;
      return input;
    }
    default: {
      const input = el("input", { ...common, type: "text", class: field.mono ? "mono" : "",
        autocomplete: "off", spellcheck: "false", list: field.list,
      placeholder: field.placeholder });
      input.value = field.initial || "";
      return input;
    }
  }
}

function zoneList() {
  const zones = typeof Intl.supportedValuesOf === "function"
    ? Intl.supportedValuesOf("timeZone") : [];
  return el("datalist", { id: "time-zones" },
    ["UTC", ...zones].map((zone) => el("option", { value: zone })));
}

async function load(name, controls, errorsView, unschedulable, downstream) {
  try {
    const { job } = await request("GET", apiPath("jobs", name));
    fill(controls, job);
    if (job.schedulable === false) {
      unschedulable.textContent = job.nextFire === null
        ? `This job will never fire: ${job.reason}.`
        : `No worker runs this job now: ${job.reason}.`;
      unschedulable.hidden = false;
    }
    const next = job.downstream || [];
    if (next.length) {
      downstream.textContent = "Jobs that run after this one: " +
        next.map((d) => `${d.job} (when it ${d.on})`).join(", ") + ".";
      downstream.hidden = false;
    }
  } catch (err) {
    showErrors(errorsView, err);
  }
}

function fill(controls, job) {
  const chained = { after: job.after ? job.after.job : null,
    afterOn: job.after ? job.after.on : "succeeded" };
  for (const field of FIELDS) {
    const control = controls.get(field.name);
    const value = field.name in chained ? chained[field.name] : job[field.name];
    if (field.name === "alerts" || field.name === "alertsOn") {
      control.value = alertText(job, field.name);
    } else if (field.kind === "checkbox") control.checked = Boolean(value);
    else if (field.kind === "pairs") {
      control.value = Object.entries(value || {}).map(([k, v]) => `${k}=${v}`).join("\n");
    } else if (value !== undefined && value !== null) control.value = String(value);
  }
}

/** The PUT body from the form; throws ApiError(400) for a field it cannot read. */
export function readSpec(controls) {
  const spec = {};
  for (const field of FIELDS) {
    const control = controls.get(field.name);
    if (field.kind === "checkbox") spec[field.name] = control.checked;
    else if (field.kind === "pairs") spec[field.name] = parsePairs(field.name, control.value);
    else if (field.kind === "number") {
      const text = control.value.trim();
      if (text === "") continue;
      const number = Number(text);
      if (!Number.isFinite(number)) {
        throw new ApiError(400, "bad_request", "must be a number", field.name);
      }
      spec[field.name] = number;
    } else spec[field.name] = control.value;
  }
  if (!spec.timezone) delete spec.timezone;
  spec.user = spec.user.trim() || null;  // empty: the worker's default
  const upstream = spec.after.trim();
  spec.after = upstream ? { job: upstream, on: spec.afterOn } : null;
  delete spec.afterOn;
  spec.alerts = alertsOf(spec.alertsOn, spec.alerts);
  delete spec.alertsOn;
  return spec;
}

function parsePairs(fieldName, text) {
  const result = {};
  for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const at = line.indexOf("=");
    if (at <= 0) {
      throw new ApiError(400, "bad_request", `expected key=value, got “${line}”`, fieldName);
    }
    result[line.slice(0, at).trim()] = line.slice(at + 1);
  }
  return result;
}

async function save(ctx, controls, errorsView) {
  clearErrors(errorsView);
  try {
    const spec = readSpec(controls);
    if (!spec.name) throw new ApiError(400, "bad_request", "a name is required", "name");
    const answer = await request("PUT", apiPath("jobs", spec.name), { body: spec });
    const verb = answer.previous ? "Updated" : "Created";
    const warnings = answer.warnings || [];  // e.g. the job will never fire
    if (warnings.length) ctx.notify(`${verb} job ${spec.name}. ${warnings.join(" ")}`, "warn");
    else ctx.notify(`${verb} job ${spec.name}`, "ok");
    ctx.navigate("#jobs");
  } catch (err) {
    showErrors(errorsView, err);
    if (!(err instanceof ApiError) || err.status === 0 || err.status >= 500 ||
        err.status === 401) {
      ctx.reportError(err);
    }
  }
}

function clearErrors({ formError, errors, controls }) {
  formError.hidden = true;
  for (const [name, error] of errors) clearError(controls.get(name), error);
}

function clearError(control, error) {
  error.hidden = true;
  error.textContent = "";
  control.removeAttribute("aria-invalid");
}

/** Show an error next to the field it names (error.field), else at the top of the form. */
function showErrors({ formError, errors, controls }, err) {
  const field = err instanceof ApiError && err.field ? fieldOf(err.field) : null;
  const message = err instanceof ApiError ? err.message : String(err);
  if (field && errors.has(field)) {
    const error = errors.get(field);
    error.textContent = withoutFieldPrefix(err);
    error.hidden = false;
    const control = controls.get(field);
    control.setAttribute("aria-invalid", "true");
    control.focus();
    return;
  }
  formError.textContent = err instanceof ApiError ? err.describe() : message;
  formError.hidden = false;
}

/** "cronExpr: expected ..." shown next to cronExpr: the prefix says nothing new there. */
function withoutFieldPrefix(err) {
  const prefix = `${err.field}: `;
  return err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
}

/** "selector.zone" / "env[PATH]" -> the form field "selector" / "env". */
function fieldOf(path) {
  return String(path).split(/[.[]/)[0];
}

let previewSequence = 0;

/** Ask the master for the next fire times; shows them or the parse error. */
async function updatePreview(controls, box) {
  const expr = controls.get("cronExpr").value.trim();
  const tz = controls.get("timezone").value.trim();
  const sequence = ++previewSequence;
  if (!expr) {
    replace(box);
    return;
  }
  try {
    const answer = await request("GET", apiPath("cron", "preview"),
      { query: { expr, tz, n: PREVIEW_COUNT } });
    if (sequence !== previewSequence) return;  // a newer edit is on its way
    replace(box, previewList(answer));
    box.classList.remove("invalid");
  } catch (err) {
    if (sequence !== previewSequence) return;
    replace(box, err instanceof ApiError && err.status === 400 ? withoutFieldPrefix(err)
      : (err.describe ? err.describe() : String(err)));
    box.classList.add("invalid");
  }
}

function previewList(answer) {
  const times = answer.times || [];
  const why = answer.reason ? `: ${answer.reason}` : "";
  // The master's words for the expression (the jobs list shows the same).
  const words = answer.describe ? el("p", { class: "words" }, answer.describe) : null;
  if (times.length === 0) {
    return [words, el("p", { class: "never" }, `This expression never fires again${why}.`)];
  }
  return [
    words,
    el("p", { class: "muted small" }, `Next ${times.length} fires (${answer.timezone}), ` +
      "shown in your local time:"),
    el("ol", {}, times.map((ms) => el("li", {}, timeElement(ms), " ",
      el("span", { class: "muted" }, `(${formatRelative(ms)})`)))),
    answer.reason ? el("p", { class: "never" }, `Then no more${why}.`) : null,
  ];
}

