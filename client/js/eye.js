// The Eye's browser client: a plain ES module, no build step, no dependencies.
//
//   import eye from "./eye.js";
//   eye.init({ endpoint: "http://127.0.0.1:8080", writeKey: "eye_demo_write_key" });
//   eye.track("party", "AppName", { host: location.host, path: location.pathname });
//
// - Session: one id per browser tab, kept in sessionStorage ("eye.session_id"),
//   so it survives reloads and navigations within the tab.
// - Batching: events wait in a queue and are sent as one JSON array when
//   `batchSize` are queued or `flushInterval` ms after the first one.
// - Sending: `fetch(..., {keepalive: true})` with `Authorization: Bearer
//   <writeKey>`; a network failure, 429 or 5xx keeps the events queued and
//   retries with capped exponential backoff (resending is safe: the gateway
//   derives each event's id from its content, so a copy that did arrive is
//   stored once). Other refusals (400, 401, 403, 413, 415) drop the batch and
//   are reported to `onError`.
// - Page hide: on `visibilitychange` to hidden and on `pagehide`, everything
//   queued goes out with `navigator.sendBeacon` (the write key in the URL, the
//   body as text/plain, the one type a beacon may send without a preflight),
//   in chunks under the 64 KiB beacon limit.
//
// The write key is public by design: it only sends events, only from the
// origins the gateway allows for it.

const SESSION_KEY = "eye.session_id";
/// Beacon payloads must stay under 64 KiB; keep a margin for the URL and headers.
const BEACON_LIMIT = 60000;
/// Keepalive fetches share the same 64 KiB budget.
const KEEPALIVE_LIMIT = 60000;

const state = {
  config: null,
  queue: [],
  timer: null,
  inflight: null,
  failures: 0,
  listening: false,
};

const encoder = new TextEncoder();

function uuid() {
  if (globalThis.crypto && typeof crypto.randomUUID === "function") {
    return crypto.randomUUID();
  }
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The tab's session id, created on first use and kept in sessionStorage. */
export function sessionId() {
  let id = null;
  try {
    id = sessionStorage.getItem(SESSION_KEY);
    if (!id) {
      id = uuid();
      sessionStorage.setItem(SESSION_KEY, id);
    }
  } catch {
    // Storage refused (privacy mode): one id for this page's life.
    state.fallbackId = state.fallbackId || uuid();
    id = state.fallbackId;
  }
  return id;
}

/**
 * Configures the client. `endpoint`: the gateway's base URL; `writeKey`: the
 * client's public write key. Options: `batchSize` (20), `flushInterval` ms
 * (1000), `maxBackoff` ms (30000), `onError(error, events)`.
 */
export function init(config) {
  if (!config || !config.endpoint || !config.writeKey) {
    throw new Error("eye.init needs {endpoint, writeKey}");
  }
  state.config = {
    endpoint: String(config.endpoint).replace(/\/+$/, ""),
    writeKey: String(config.writeKey),
    batchSize: config.batchSize || 20,
    flushInterval: config.flushInterval ?? 1000,
    maxBackoff: config.maxBackoff || 30000,
    onError: config.onError || ((error) => console.warn("eye:", error.message)),
  };
  if (!state.listening) {
    state.listening = true;
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") beacon();
    });
    window.addEventListener("pagehide", beacon);
  }
  sessionId();
}

/** Queues one event of `category` named `name` with the object `data`. */
export function track(category, name, data = {}) {
  if (!state.config) throw new Error("eye.track before eye.init");
  state.queue.push({
    session_id: sessionId(),
    category: String(category),
    name: String(name),
    data: data && typeof data === "object" && !Array.isArray(data) ? data : { value: data },
    timestamp: new Date().toISOString(),
  });
  if (state.queue.length >= state.config.batchSize) {
    flush();
  } else {
    schedule(state.config.flushInterval);
  }
}

function schedule(delay) {
  if (state.timer === null) {
    state.timer = setTimeout(() => {
      state.timer = null;
      flush();
    }, delay);
  }
}

/** Splits events into JSON arrays of at most `limit` bytes each (an event
 * larger than the limit goes alone). */
function chunks(events, limit) {
  const out = [];
  let current = [];
  let size = 2;
  for (const event of events) {
    const bytes = encoder.encode(JSON.stringify(event)).length + 1;
    if (current.length > 0 && size + bytes > limit) {
      out.push(current);
      current = [];
      size = 2;
    }
    current.push(event);
    size += bytes;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/**
 * Sends what is queued now, after any send in flight; resolves when the
 * requests are answered (events that must be retried are queued again, with
 * a backoff timer).
 */
export async function flush() {
  while (state.inflight) await state.inflight;
  const config = state.config;
  if (!config || state.queue.length === 0) return;
  if (state.timer !== null) {
    clearTimeout(state.timer);
    state.timer = null;
  }
  state.inflight = send(config, state.queue.splice(0, state.queue.length));
  try {
    await state.inflight;
  } finally {
    state.inflight = null;
  }
}

/** Events queued and not yet sent. */
export function pending() {
  return state.queue.length;
}

async function send(config, events) {
  const retry = [];
  for (const batch of chunks(events, KEEPALIVE_LIMIT)) {
    const verdict = await post(config, batch);
    if (verdict === "retry") retry.push(...batch);
  }
  if (retry.length > 0) {
    // Back in front of anything queued meanwhile, in their original order.
    state.queue.unshift(...retry);
    state.failures += 1;
    const wait = Math.min(config.maxBackoff, 500 * 2 ** (state.failures - 1));
    schedule(wait / 2 + Math.random() * (wait / 2));
  } else {
    state.failures = 0;
    if (state.queue.length > 0) schedule(config.flushInterval);
  }
}

async function post(config, batch) {
  let response;
  try {
    response = await fetch(`${config.endpoint}/v1/events`, {
      method: "POST",
      keepalive: true,
      headers: {
        "Content-Type": "application/json",
        Authorization: `Bearer ${config.writeKey}`,
      },
      body: JSON.stringify(batch),
    });
  } catch (error) {
    return "retry"; // network failure: the events may or may not have arrived
  }
  if (response.status === 429 || response.status >= 500) return "retry";
  if (response.status === 202 || response.status === 422) {
    const answer = await response.json().catch(() => null);
    const failed = answer && Array.isArray(answer.results)
      ? answer.results.filter((r) => r.status === "failed").map((r) => batch[r.index])
      : [];
    const rejected = answer && Array.isArray(answer.results)
      ? answer.results.filter((r) => r.status === "rejected")
      : [];
    if (rejected.length > 0) {
      config.onError(new Error(`${rejected.length} event(s) rejected: ${rejected.map((r) => r.code).join(", ")}`), rejected);
    }
    if (failed.length > 0) {
      state.queue.unshift(...failed.filter(Boolean));
    }
    return "done";
  }
  config.onError(new Error(`the gateway refused the batch with HTTP ${response.status}`), batch);
  return "done";
}

/** Sends everything queued with navigator.sendBeacon (page hide). */
function beacon() {
  const config = state.config;
  if (!config || state.queue.length === 0) return;
  if (state.timer !== null) {
    clearTimeout(state.timer);
    state.timer = null;
  }
  const url = `${config.endpoint}/v1/events?write_key=${encodeURIComponent(config.writeKey)}`;
  const events = state.queue.splice(0, state.queue.length);
  const kept = [];
  for (const batch of chunks(events, BEACON_LIMIT)) {
    const body = new Blob([JSON.stringify(batch)], { type: "text/plain;charset=UTF-8" });
    let queued = false;
    try {
      queued = navigator.sendBeacon(url, body);
    } catch {
      queued = false;
    }
    if (!queued) kept.push(...batch);
  }
  // A refused beacon (over the browser's quota): keep the events for a
  // keepalive fetch, the last chance while the page goes away.
  if (kept.length > 0) {
    state.queue.unshift(...kept);
    flush();
  }
}

export default { init, track, flush, pending, sessionId };
