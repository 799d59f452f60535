// The master's JSON API (docs/api.md): bearer token, timeouts, one error type.
//
// The token lives in sessionStorage: it survives reloads of this tab but not the
// browser session, and is never put in a URL.

const TOKEN_KEY = "scheduler.apiToken";
const TIMEOUT_MS = 10_000;

/** An API failure: HTTP status (0 = network), error code, message and the field at fault. */
export class ApiError extends Error {
  constructor(status, code, message, field = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field;
  }

  /** One line for the banner: says what failed and, when it helps, what to do. */
  describe() {
    if (this.status === 0) return `Cannot reach the master (${this.message}): it may be down.`;
    if (this.status === 401) return "Unauthorized: the API token is missing or wrong.";
    if (this.status === 403) {
      return `Not allowed: ${this.message}. Ask for a token with that role, or enter ` +
        "another one (API token).";
    }
    if (this.status === 503) return `Unavailable: ${this.message}`;
    return `${this.status} ${this.code}: ${this.message}`;
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** "/api/v1/jobs/<name>/..." with every segment percent-encoded. */
export function apiPath(...segments) {
  return "/api/v1/" + segments.map((s) => encodeURIComponent(s)).join("/");
}

/** Call the API; resolves to the decoded JSON of a 2xx answer, rejects with ApiError. */
export async function request(method, path, { query = {}, body } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(query)) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(key, value);
  }
  const headers = { Accept: "application/json" };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await send(url, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store", credentials: "same-origin", redirect: "error",
  });
  return decode(response);
}

async function send(url, init) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
  try {
    return await fetch(url, { ...init, signal: abort.signal });
  } catch (err) {
    const reason = err.name === "AbortError" ? `no answer within ${TIMEOUT_MS / 1000} s`
      : "network error";
    throw new ApiError(0, "network", reason);
  } finally {
    clearTimeout(timer);
  }
}

async function decode(response) {
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.ok) {
    if (data === null) throw new ApiError(response.status, "bad_answer", "answer is not JSON");
    return data;
  }
  const error = data && typeof data.error === "object" && data.error ? data.error : {};
  throw new ApiError(response.status, String(error.code || "http_error"),
    String(error.message || response.statusText || "request failed"),
    typeof error.field === "string" ? error.field : null);
}
