// The API client: JSON in and out, the access token in memory only, problems as errors.
//
// The refresh token never reaches this code: login sets it as an httpOnly cookie scoped to
// /api/v1/auth, and POST /auth/refresh reads it from there (docs/adr/0018).

const BASE = "/api/v1";
const SIGNED_IN_HINT = "orderflow.signed-in"; // a flag, never a token: "try the cookie at load"

let accessToken = null;
let refreshTimer = null;
let refreshing = null;
const sessionEndListeners = new Set();

export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(describeProblem(status, problem, retryAfter));
    this.status = status;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }
}

function fieldName(loc) {
  const parts = (loc || []).filter((p) => p !== "body" && p !== "query" && p !== "header");
  return parts.join(".");
}

/** Retry-After (seconds) in words: "in 30 seconds", "in 15 minutes". */
function retryIn(retryAfter) {
  const seconds = Number.parseInt(retryAfter || "", 10);
  if (!Number.isFinite(seconds)) return "later";
  if (seconds < 120) return `in ${seconds} second${seconds === 1 ? "" : "s"}`;
  return `in ${Math.ceil(seconds / 60)} minutes`;
}

export function describeProblem(status, problem, retryAfter) {
  if (status === 429) {
    return `${problem.detail || "Too many requests."} Try again ${retryIn(retryAfter)}.`;
  }
  const base = problem.detail || problem.title || `The server answered ${status}.`;
  if (!Array.isArray(problem.errors) || problem.errors.length === 0) return base;
  const fields = problem.errors.map((e) => {
    const name = fieldName(e.loc);
    return name ? `${name}: ${e.msg}` : e.msg;
  });
  return `${problem.title || base} — ${fields.join("; ")}`;
}

async function parse(response) {
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const problem = typeof data === "object" && data ? data : { detail: String(data) };
    throw new ApiError(response.status, problem, response.headers.get("Retry-After"));
  }
  return data;
}

function send(method, path, { body, headers = {} } = {}) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json, application/problem+json", ...headers },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (accessToken) init.headers.Authorization = `Bearer ${accessToken}`;
  return fetch(BASE + path, init);
}

/** Call the API; an expired access token is refreshed once through the cookie. */
export async function api(method, path, options = {}) {
  let response = await send(method, path, options);
  if (response.status === 401 && accessToken && (await refreshSession())) {
    response = await send(method, path, options);
  }
  return parse(response);
}

/** Like `api`, with the response headers too (ETag for If-Match). */
export async function apiWithHeaders(method, path, options = {}) {
  const response = await send(method, path, options);
  const headers = response.headers;
  return { data: await parse(response), headers };
}

function keep(pair) {
  accessToken = pair.access_token;
  localStorage.setItem(SIGNED_IN_HINT, "1");
  clearTimeout(refreshTimer);
  // Refresh ahead of expiry, so no request has to fail with 401 first.
  const seconds = Math.max(5, Math.floor(pair.expires_in * 0.8));
  refreshTimer = setTimeout(refreshSession, seconds * 1000);
}

function forget() {
  accessToken = null;
  clearTimeout(refreshTimer);
  localStorage.removeItem(SIGNED_IN_HINT);
}

/** One refresh at a time: a refresh token works once, and reuse revokes the whole family. */
export function refreshSession() {
  refreshing ??= (async () => {
    try {
      const response = await fetch(`${BASE}/auth/refresh`, {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) throw new Error(`refresh answered ${response.status}`);
      keep(await response.json());
      return true;
    } catch {
      forget();
      for (const listener of sessionEndListeners) listener();
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

export function onSessionEnd(listener) {
  sessionEndListeners.add(listener);
  return () => sessionEndListeners.delete(listener);
}

export function mightHaveSession() {
  return localStorage.getItem(SIGNED_IN_HINT) === "1";
}

export function hasAccessToken() {
  return accessToken !== null;
}

export async function login(email, password) {
  keep(await api("POST", "/auth/login", { body: { email, password } }));
}

export async function logout() {
  try {
    await api("POST", "/auth/logout");
  } finally {
    forget();
  }
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
