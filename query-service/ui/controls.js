// Pieces the list views share: the time range picker, the pager over keyset
// cursors, sortable column headers and labelled fields.

import { el, errorBox, replace } from "./dom.js";
import { RANGES, inputValue } from "./time.js";

/** A labelled form field around `control` (which has an id). */
export function field(label, control, hint) {
  return el("div", { class: "field" },
    el("label", { for: control.id }, label),
    control,
    hint ? el("small", {}, hint) : null);
}

/** A <select> of `options` ([value, label] pairs) with `value` chosen. */
export function choice(id, options, value) {
  return el("select", { id, name: id },
    options.map(([v, label]) => el("option", { value: v, selected: v === value }, label)));
}

/**
 * The range picker: last hour / day / week / custom, and two UTC
 * `datetime-local` inputs shown for custom. Reads and writes `state.range`,
 * `state.from`, `state.to` (the custom inputs' values).
 */
export function rangeFields(state) {
  const options = Object.entries(RANGES).map(([k, r]) => [k, r.label]);
  options.push(["custom", "Custom (UTC)"]);
  const range = choice("range", options, state.range in RANGES || state.range === "custom" ? state.range : "day");
  const now = new Date();
  const from = el("input", { id: "from", name: "from", type: "datetime-local", value: state.from || inputValue(new Date(now - 86_400_000)) });
  const to = el("input", { id: "to", name: "to", type: "datetime-local", value: state.to || inputValue(now) });
  const custom = el("div", { class: "custom" }, field("From (UTC)", from), field("To (UTC)", to));
  const sync = () => { custom.hidden = range.value !== "custom"; };
  range.addEventListener("change", sync);
  sync();
  return el("div", { class: "range" }, field("Time range", range), custom);
}

/** The hash query of a controls form: its named fields with a value, plus `extra`. */
export function formQuery(form, extra = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of new FormData(form)) {
    if ((key === "from" || key === "to") && form.elements.range.value !== "custom") continue;
    if (String(value).trim() !== "") query.set(key, String(value).trim());
  }
  for (const [key, value] of Object.entries(extra)) if (value) query.set(key, value);
  return query.toString();
}

/**
 * Page positions over keyset cursors: the cursor that opened each page seen
 * (the first page has none), so "previous" goes back without offsets.
 */
export class Pager {
  constructor() {
    this.cursors = [null];
    this.next = null;
  }
  get index() { return this.cursors.length - 1; }
  get cursor() { return this.cursors[this.index]; }
  forward() { if (this.next) this.cursors.push(this.next); }
  back() { if (this.cursors.length > 1) this.cursors.pop(); }
  reset() { this.cursors = [null]; this.next = null; }

  /** The pager's bar: position and the previous / next buttons. */
  bar(rows, size, onMove, what) {
    const first = this.index * size + 1;
    const text = rows === 0 ? `No ${what}.` : `Page ${this.index + 1}: ${what} ${first}–${first + rows - 1}${this.next ? "" : " (last page)"}`;
    return el("nav", { class: "pager", "aria-label": `Pages of ${what}` },
      el("button", { type: "button", disabled: this.index === 0, onclick: () => { this.back(); onMove(); } }, "← Previous"),
      el("span", {}, text),
      el("button", { type: "button", disabled: !this.next, onclick: () => { this.forward(); onMove(); } }, "Next →"));
  }
}

/**
 * A table whose column headers sort the rows shown (this page; the server
 * orders the pages). `columns`: {key, label, value(row) for sorting,
 * cell(row) -> node or text, cls}; `sort`: {key, dir} kept by the caller.
 */
export function sortableTable(rows, columns, sort, onSort) {
  const column = columns.find((c) => c.key === sort.key);
  const sorted = column && column.value
    ? [...rows].sort((a, b) => {
      const x = column.value(a);
      const y = column.value(b);
      return (x < y ? -1 : x > y ? 1 : 0) * sort.dir;
    })
    : rows;
  const head = el("tr", {}, columns.map((c) => {
    const active = c.key === sort.key;
    const label = c.value
      ? el("button", { type: "button", class: "sort", onclick: () => onSort(active ? { key: c.key, dir: -sort.dir } : { key: c.key, dir: 1 }) },
        c.label, el("span", { "aria-hidden": "true" }, active ? (sort.dir > 0 ? " ▲" : " ▼") : ""))
      : c.label;
    return el("th", { scope: "col", class: c.cls, "aria-sort": active ? (sort.dir > 0 ? "ascending" : "descending") : null }, label);
  }));
  const body = sorted.map((row) => el("tr", {}, columns.map((c) =>
    el("td", { class: c.cls, "data-label": c.label }, c.cell(row)))));
  return el("div", { class: "table-wrap" },
    el("table", { class: "rows" }, el("thead", {}, head), el("tbody", {}, body)));
}

/** Shows a failed read in `area` (or the token form for a 401); aborted reads are ignored. */
export function failure(area, error, ctx) {
  if (error.name === "AbortError") return;
  if (error.status === 401) {
    ctx.unauthorized();
    return;
  }
  replace(area, errorBox(error));
  area.removeAttribute("aria-busy");
}

const SIZES = ["50", "100", "500"];

/** The rows per page asked for in the hash query (100 unless 50 or 500). */
export function pageSize(query) {
  return SIZES.includes(query.get("limit")) ? query.get("limit") : "100";
}

/** The rows-per-page field. */
export function sizeField(size) {
  return field("Rows per page", choice("limit", SIZES.map((s) => [s, s]), size));
}

/**
 * One page of rows from the API in a sortable table with a pager.
 * `read(cursor)` resolves to `{rows, next}` (one API call); `onRows(rows)`
 * sees each page read.
 */
export class PagedTable {
  constructor({ area, columns, what, note, size, read, onRows, ctx }) {
    Object.assign(this, { area, columns, what, note, size: Number(size), read, onRows, ctx });
    this.pager = new Pager();
    this.sort = { key: null, dir: 1 };
    this.rows = [];
  }

  async load() {
    this.area.setAttribute("aria-busy", "true");
    try {
      const { rows, next } = await this.read(this.pager.cursor);
      this.rows = rows;
      this.pager.next = next;
      if (this.onRows) this.onRows(rows);
      this.draw();
      return true;
    } catch (error) {
      failure(this.area, error, this.ctx);
      return false;
    }
  }

  draw() {
    replace(this.area,
      sortableTable(this.rows, this.columns, this.sort, (s) => { this.sort = s; this.draw(); }),
      this.pager.bar(this.rows.length, this.size, () => this.load(), this.what),
      el("p", { class: "note" }, this.note));
    this.area.removeAttribute("aria-busy");
  }
}
