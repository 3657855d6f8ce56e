// One session's timeline: its events in order on a time axis and as a list
// (time from the first event, category, name, data), with gap markers, and
// the equivalent curl command and SQL to copy. One API call per page of
// events (/v1/sessions/{id}/events, up to 1,000 events a page).

import * as api from "./api.js";
import { plural, el, svg, replace, status, copy } from "./dom.js";
import { color } from "./chart.js";
import { micros, show, duration } from "./time.js";
import { Pager, failure } from "./controls.js";
import { lastList } from "./sessions.js";

/** Events per page of the timeline. */
const PAGE = 1000;
/** Consecutive events at least this far apart get a gap marker (µs). */
const GAP_US = 5 * 60 * 1_000_000;
/** Characters of `data` shown before it is expanded. */
const COMPACT = 100;

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** The curl command that reads this session from the API (the token left as a variable). */
export function curlFor(id) {
  return `curl -sS '${location.origin}/v1/sessions/${id}/events?limit=${PAGE}' \\\n  -H "Authorization: Bearer $EYE_READ_TOKEN"`;
}

/** The analysts' SQL for this session's timeline (docs/sql.md). */
export function sqlFor(id) {
  return `SELECT
    concat(toString(timestamp), '.', substring(toString(1000000 + timestamp_us % 1000000), 2, 6)) AS time_utc,
    category,
    name,
    data
FROM events FINAL
WHERE session_id = toUUID('${id}')
ORDER BY timestamp_us, event_id`;
}

export function timelineView(root, id, query, ctx) {
  const heading = el("h2", {}, "Session ", el("code", { class: "id" }, id));
  if (!UUID.test(id)) {
    replace(root, heading, el("p", { class: "error", role: "alert" }, "This is not a session id (a UUID)."));
    return () => {};
  }
  const session = id.toLowerCase();
  const axisArea = el("div", { class: "axis-area", "aria-busy": "true" });
  const listArea = el("div", { class: "list-area", "aria-busy": "true" });
  const copied = el("span", { class: "copied", role: "status" });
  const copyButton = (label, text) => el("button", {
    type: "button",
    onclick: async () => {
      const ok = await copy(text);
      copied.textContent = ok ? `${label} copied.` : `Copying failed: select the text below.`;
    },
  }, `Copy ${label}`);
  const tools = el("div", { class: "tools" },
    copyButton("curl", curlFor(session)), copyButton("SQL", sqlFor(session)), copied,
    el("details", { class: "equivalents" }, el("summary", {}, "The same read as curl and SQL"),
      el("pre", {}, curlFor(session)), el("pre", {}, sqlFor(session))));
  replace(root,
    el("p", {}, el("a", { href: lastList }, "← Sessions")),
    heading, tools, axisArea, listArea);

  const pager = new Pager();
  const controller = new AbortController();
  let first = null;
  const categories = new Map();
  const categoryIndex = (c) => {
    if (!categories.has(c)) categories.set(c, categories.size);
    return categories.get(c);
  };

  async function load() {
    listArea.setAttribute("aria-busy", "true");
    try {
      const answer = await api.get(`/v1/sessions/${session}/events`, { limit: PAGE, cursor: pager.cursor }, controller.signal);
      const events = answer.events;
      pager.next = answer.next_cursor;
      if (first === null && events.length) first = micros(events[0].timestamp);
      draw(events);
      status(`${plural(events.length, "events")} of session ${session}.`);
    } catch (error) {
      failure(listArea, error, ctx);
    }
  }

  function draw(events) {
    if (events.length === 0) {
      replace(axisArea);
      replace(listArea, el("p", {}, "No events for this session."));
      listArea.removeAttribute("aria-busy");
      return;
    }
    const times = events.map((e) => micros(e.timestamp));
    events.forEach((e) => categoryIndex(e.category));
    replace(axisArea, axis(events, times, axisArea.clientWidth));
    axisArea.removeAttribute("aria-busy");

    const items = [];
    events.forEach((e, i) => {
      if (i > 0 && times[i] - times[i - 1] >= GAP_US) {
        items.push(el("li", { class: "gap" }, `${duration(times[i] - times[i - 1])} without events`));
      }
      const data = JSON.stringify(e.data);
      const compact = data.length > COMPACT ? data.slice(0, COMPACT) + "…" : data;
      items.push(el("li", { class: "event" },
        el("span", { class: "rel", title: show(e.timestamp) + " UTC" }, "+" + duration(times[i] - first)),
        el("span", { class: "abs" }, show(e.timestamp)),
        el("span", { class: "cat", "data-color": categoryIndex(e.category) % 8 }, e.category),
        el("span", { class: "name" }, e.name),
        el("details", { class: "data" },
          el("summary", {}, el("code", {}, compact)),
          el("pre", {}, JSON.stringify(e.data, null, 2)))));
    });
    const span = times[times.length - 1] - first;
    replace(listArea,
      el("p", { class: "summary" }, `${plural(events.length, "events")} on this page over ${duration(span)}; `,
        `first ${show(events[0].timestamp)} UTC. Gaps of ${duration(GAP_US)} or more are marked.`),
      el("ol", { class: "events" }, items),
      pager.bar(events.length, PAGE, load, "events"));
    listArea.removeAttribute("aria-busy");
  }

  /** The events as dots on a time axis, coloured by category, with a legend. */
  function axis(events, times, width) {
    const w = Math.max(280, Math.floor(width || 800));
    const h = 64;
    const pad = 12;
    const t0 = times[0];
    const span = Math.max(1, times[times.length - 1] - t0);
    const x = (t) => pad + ((t - t0) / span) * (w - 2 * pad);
    const chart = svg("svg", {
      class: "chart", width: w, height: h, viewBox: `0 0 ${w} ${h}`, role: "img",
      "aria-label": `Time axis: ${events.length} events over ${duration(span)}`,
    }, svg("line", { x1: pad, y1: 30, x2: w - pad, y2: 30, class: "axis" }));
    for (let i = 1; i < times.length; i++) {
      if (times[i] - times[i - 1] >= GAP_US) {
        const gx = (x(times[i - 1]) + x(times[i])) / 2;
        chart.append(svg("line", { x1: gx, y1: 14, x2: gx, y2: 46, class: "gap-mark" },
          svg("title", {}, `${duration(times[i] - times[i - 1])} without events`)));
      }
    }
    events.forEach((e, i) => {
      chart.append(svg("circle", { cx: x(times[i]).toFixed(2), cy: 30, r: 5, fill: color(categoryIndex(e.category)), class: "dot" },
        svg("title", {}, `+${duration(times[i] - first)} ${e.category} / ${e.name}`)));
    });
    chart.append(
      svg("text", { x: pad, y: h - 4, class: "tick", "text-anchor": "start" }, show(events[0].timestamp)),
      svg("text", { x: w - pad, y: h - 4, class: "tick", "text-anchor": "end" }, "+" + duration(span)));
    const legend = el("ul", { class: "legend" }, [...categories].map(([name, i]) =>
      el("li", {}, el("span", { class: "swatch", "data-color": i % 8 }), name)));
    return el("figure", { class: "chart-box" }, el("figcaption", {}, el("strong", {}, "Time axis"), " — one dot per event."), chart, legend);
  }

  load();
  return () => controller.abort();
}
