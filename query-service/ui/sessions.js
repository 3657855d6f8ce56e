// The sessions view: a range and category, events per hour as a chart, and
// one page of sessions (server-side keyset pagination, so 10,000 sessions in
// range are read a page at a time). Two API calls per load: the chart's
// /v1/stats/events_per_hour and the page's /v1/sessions; one per page turn.

import * as api from "./api.js";
import { plural, el, replace, status } from "./dom.js";
import { hourChart } from "./chart.js";
import { micros, show, duration, rangeOf } from "./time.js";
import { PagedTable, choice, failure, field, formQuery, pageSize, rangeFields, sizeField } from "./controls.js";

/** Live mode's refresh period. */
const LIVE_MS = 5000;

/** The sessions list the user came from, for the timeline's back link. */
export let lastList = "#/sessions";

const COLUMNS = [
  { key: "session", label: "Session", value: (r) => r.session_id, cls: "id",
    cell: (r) => el("a", { href: `#/sessions/${encodeURIComponent(r.session_id)}` }, r.session_id) },
  { key: "first", label: "First (UTC)", value: (r) => micros(r.first), cell: (r) => show(r.first), cls: "time" },
  { key: "last", label: "Last (UTC)", value: (r) => micros(r.last), cell: (r) => show(r.last), cls: "time" },
  { key: "duration", label: "Duration", value: (r) => micros(r.last) - micros(r.first), cell: (r) => duration(micros(r.last) - micros(r.first)), cls: "num" },
  { key: "events", label: "Events", value: (r) => r.events, cell: (r) => String(r.events), cls: "num" },
  { key: "categories", label: "Categories", value: (r) => r.categories.join(", "), cell: (r) => r.categories.join(", ") },
];

export function sessionsView(root, query, ctx) {
  const state = {
    range: query.get("range") || "day",
    from: query.get("from") || "",
    to: query.get("to") || "",
    category: query.get("category") || "",
    order: query.get("order") === "newest" ? "newest" : "oldest",
    limit: pageSize(query),
    live: query.get("live") === "1",
  };
  lastList = location.hash || "#/sessions";
  const category = el("input", { id: "category", name: "category", value: state.category, list: "categories", autocomplete: "off", placeholder: "any" });
  const categories = el("datalist", { id: "categories" });
  const live = el("input", { id: "live", type: "checkbox", checked: state.live });
  const form = el("form", { class: "controls" },
    rangeFields(state),
    field("Category", category),
    categories,
    field("Order of pages", choice("order", [["oldest", "Oldest first"], ["newest", "Newest first"]], state.order)),
    sizeField(state.limit),
    el("div", { class: "field check" }, live, el("label", { for: "live" }, "Live: refresh every 5 s")),
    el("div", { class: "field" }, el("button", { type: "submit" }, "Show")));
  const submit = (event) => {
    if (event) event.preventDefault();
    ctx.navigate("#/sessions?" + formQuery(form, { live: live.checked ? "1" : "" }));
  };
  form.addEventListener("submit", submit);
  live.addEventListener("change", () => submit());

  // A session known by its id (from a customer, a log line) at any time.
  const id = el("input", { id: "goto", type: "text", autocomplete: "off", spellcheck: "false", placeholder: "e2085be5-9137-4e4e-80b5-f1ffddc25423", required: true });
  const goto = el("form", { class: "goto" },
    el("label", { for: "goto" }, "Open a session by id"), id, el("button", { type: "submit", class: "quiet" }, "Open"));
  goto.addEventListener("submit", (event) => {
    event.preventDefault();
    if (id.value.trim()) ctx.navigate(`#/sessions/${encodeURIComponent(id.value.trim())}`);
  });

  const chartArea = el("div", { class: "chart-area", "aria-busy": "true" });
  const tableArea = el("div", { class: "table-area", "aria-busy": "true" });
  replace(root, el("div", { class: "title" }, el("h2", {}, "Sessions"), goto), form, chartArea, tableArea);

  let range = rangeOf(state);
  const controller = new AbortController();
  let timer = null;
  let done = false;

  const table = new PagedTable({
    area: tableArea,
    columns: COLUMNS,
    what: "sessions",
    size: state.limit,
    ctx,
    note: `Pages come in order of each session's first event in the range (${state.order} first); ` +
      "the column headers sort the rows of this page. Counts are of the events in the range.",
    read: async (cursor) => {
      const answer = await api.get("/v1/sessions", {
        from: range.from, to: range.to, category: state.category,
        order: state.order === "newest" ? "newest" : "", limit: state.limit, cursor,
      }, controller.signal);
      return { rows: answer.sessions, next: answer.next_cursor };
    },
    onRows: (rows) => {
      const seen = new Set(rows.flatMap((r) => r.categories));
      replace(categories, [...seen].sort().map((c) => el("option", { value: c })));
      status(`${plural(rows.length, "sessions")} on this page, updated ${new Date().toISOString().slice(11, 19)} UTC${state.live ? " (live)" : ""}.`);
    },
  });

  async function loadChart() {
    try {
      const answer = await api.get("/v1/stats/events_per_hour",
        { from: range.from, to: range.to, category: state.category }, controller.signal);
      const counts = answer.hours.map((h) => ({ hour: h.hour, series: "events", count: h.events }));
      replace(chartArea, hourChart({
        from: range.from, to: range.to, counts, series: ["events"], unit: "events",
        title: "Events per hour" + (state.category ? ` (category ${state.category})` : ""),
        width: chartArea.clientWidth,
      }));
      chartArea.removeAttribute("aria-busy");
    } catch (error) {
      failure(chartArea, error, ctx);
    }
  }

  async function refresh() {
    await Promise.all([loadChart(), table.load()]);
    if (!done && state.live) timer = setTimeout(tick, LIVE_MS);
  }

  function tick() {
    if (done) return;
    if (table.pager.index > 0) {
      // A cursor belongs to its range: sliding the range would void it.
      status(`Live refresh paused on page ${table.pager.index + 1}; go back to page 1 to resume.`);
      timer = setTimeout(tick, LIVE_MS);
      return;
    }
    if (state.range !== "custom") range = rangeOf(state);
    refresh();
  }

  refresh();
  return () => {
    done = true;
    clearTimeout(timer);
    controller.abort();
  };
}
