// The query service's public API, as any client calls it: a read token as
// `Authorization: Bearer`, JSON pages with `next_cursor`, problem+json errors.

const TOKEN_KEY = "eye.read_token";

/** The read token of this tab (sessionStorage: gone when the tab closes). */
export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Keeps `value` as the read token of this tab. */
export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

/** Forgets the read token. */
export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** A failed request: the HTTP status and the problem document, if any. */
export class ApiError extends Error {
  constructor(status, problem, path) {
    const detail = problem && (problem.detail || problem.title);
    super(`${path}: ${status}${detail ? " — " + detail : ""}`);
    this.status = status;
    this.problem = problem;
  }
}

/** The URL of `path` with the non-empty `params`. */
export function url(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") query.set(key, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * GETs `path` with `params` and the token; the JSON answer, or an ApiError
 * (status 401 when the token is missing or refused). `signal` aborts it.
 */
export async function get(path, params = {}, signal = undefined) {
  const headers = { Accept: "application/json" };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  let response;
  try {
    response = await fetch(url(path, params), { headers, signal, cache: "no-store" });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { detail: "the query service cannot be reached" }, path);
  }
  const type = response.headers.get("Content-Type") || "";
  const body = type.includes("json") ? await response.json().catch(() => null) : null;
  if (!response.ok) throw new ApiError(response.status, body, path);
  return body;
}
