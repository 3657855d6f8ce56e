// The rejects view: rejected events per hour by code (a chart from
// /v1/stats/errors_per_hour) and one page of rejects (/v1/errors) with code,
// message, JSON pointer, client and the raw body, filtered by code and client.

import * as api from "./api.js";
import { plural, el, replace, status } from "./dom.js";
import { hourChart } from "./chart.js";
import { micros, show, rangeOf } from "./time.js";
import { PagedTable, choice, failure, field, formQuery, pageSize, rangeFields, sizeField } from "./controls.js";

/** Characters of a raw body shown before it is expanded. */
const COMPACT = 80;

/** The raw body pretty-printed when it is JSON, as sent otherwise. */
function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function raw(r) {
  const text = r.raw + (r.raw_truncated ? " … (cut)" : "");
  if (text.length <= COMPACT) return el("code", { class: "raw" }, text);
  return el("details", { class: "data" },
    el("summary", {}, el("code", {}, text.slice(0, COMPACT) + "…")),
    el("pre", {}, pretty(r.raw), r.raw_truncated ? "\n… (cut)" : ""));
}

const COLUMNS = [
  { key: "received", label: "Received (UTC)", value: (r) => micros(r.received), cell: (r) => show(r.received), cls: "time" },
  { key: "code", label: "Code", value: (r) => r.code, cell: (r) => el("code", {}, r.code) },
  { key: "message", label: "Message", value: (r) => r.message, cell: (r) => r.message, cls: "message" },
  { key: "pointer", label: "Pointer", value: (r) => r.pointer, cell: (r) => el("code", {}, r.pointer) },
  { key: "client", label: "Client", value: (r) => r.client_id, cell: (r) => r.client_id || "(unknown)" },
  { key: "source", label: "Source", value: (r) => r.source, cell: (r) => r.source },
  { key: "raw", label: "Raw body", cell: raw, cls: "rawcol" },
];

export function rejectsView(root, query, ctx) {
  const state = {
    range: query.get("range") || "day",
    from: query.get("from") || "",
    to: query.get("to") || "",
    code: query.get("code") || "",
    client: query.get("client") || "",
    limit: pageSize(query),
  };
  const code = choice("code", [["", "any"], ...(state.code ? [[state.code, state.code]] : [])], state.code);
  const client = el("input", { id: "client", name: "client", value: state.client, autocomplete: "off", placeholder: "any" });
  const form = el("form", { class: "controls" },
    rangeFields(state),
    field("Code", code),
    field("Client", client),
    sizeField(state.limit),
    el("div", { class: "field" }, el("button", { type: "submit" }, "Show")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ctx.navigate("#/rejects?" + formQuery(form));
  });
  const chartArea = el("div", { class: "chart-area", "aria-busy": "true" });
  const tableArea = el("div", { class: "table-area", "aria-busy": "true" });
  replace(root, el("h2", {}, "Rejects"), form, chartArea, tableArea);

  const range = rangeOf(state);
  const controller = new AbortController();
  const table = new PagedTable({
    area: tableArea,
    columns: COLUMNS,
    what: "rejects",
    size: state.limit,
    ctx,
    note: "Pages come in order of reception; the column headers sort the rows of this page.",
    read: async (cursor) => {
      const answer = await api.get("/v1/errors", {
        from: range.from, to: range.to, code: state.code, client: state.client, limit: state.limit, cursor,
      }, controller.signal);
      return { rows: answer.errors, next: answer.next_cursor };
    },
    onRows: (rows) => status(`${plural(rows.length, "rejects")} on this page.`),
  });

  async function loadChart() {
    try {
      const answer = await api.get("/v1/stats/errors_per_hour",
        { from: range.from, to: range.to, code: state.code, client: state.client }, controller.signal);
      const codes = [...new Set(answer.hours.map((h) => h.code))].sort();
      // The code filter offers the codes seen in the range.
      for (const c of codes) {
        if (c !== state.code) code.append(el("option", { value: c }, c));
      }
      const counts = answer.hours.map((h) => ({ hour: h.hour, series: h.code, count: h.errors }));
      replace(chartArea, hourChart({
        from: range.from, to: range.to, counts, series: codes.length ? codes : ["rejects"], unit: "rejects",
        title: "Rejects per hour by code (time of reception)", width: chartArea.clientWidth,
      }));
      chartArea.removeAttribute("aria-busy");
    } catch (error) {
      failure(chartArea, error, ctx);
    }
  }

  loadChart();
  table.load();
  return () => controller.abort();
}
