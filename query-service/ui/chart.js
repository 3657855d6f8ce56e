// Hour-by-hour bar charts drawn as SVG with the DOM API.
//
// Why hand-written and not a vendored library: the page needs one kind of
// chart (bars per hour, stacked by a series such as the reject code). That is
// about a hundred lines here, against 40-200 KB for a charting library, with
// no licence file to carry, nothing to update, and every label set as text
// (no markup from data). SVG elements are created with createElementNS, so
// the strict Content-Security-Policy (no inline scripts or styles) holds.

import { plural, el, svg } from "./dom.js";

const HOUR = 3_600_000;

/** Colour-blind-safe colours (Okabe–Ito), one per series, in order. */
export const COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#7a5c00", "#444444"];

/** The colour of the `i`th series. */
export function color(i) {
  return COLORS[i % COLORS.length];
}

function hourLabel(ms) {
  return new Date(ms).toISOString().slice(5, 13).replace("T", " ") + ":00";
}

/**
 * A stacked bar chart of counts per hour over `[from, to)` (RFC 3339).
 * `counts` is an array of `{hour, series, count}` (hour as RFC 3339);
 * `series` names the stacks in order; `unit` is the counted thing ("events").
 * Hours without a row are drawn as zero. Returns a <figure>.
 */
export function hourChart({ from, to, counts, series, unit, title, width }) {
  const start = Math.floor(Date.parse(from) / HOUR) * HOUR;
  const end = Date.parse(to);
  const hours = Math.max(1, Math.ceil((end - start) / HOUR));
  const bySeries = new Map(series.map((name, i) => [name, i]));
  const stacks = Array.from({ length: hours }, () => new Array(series.length).fill(0));
  let total = 0;
  for (const { hour, series: name, count } of counts) {
    const slot = Math.floor((Date.parse(hour) - start) / HOUR);
    const s = bySeries.get(name);
    if (slot < 0 || slot >= hours || s === undefined) continue;
    stacks[slot][s] += count;
    total += count;
  }
  const sums = stacks.map((stack) => stack.reduce((a, b) => a + b, 0));
  const max = Math.max(1, ...sums);
  const peak = sums.indexOf(Math.max(...sums));

  const w = Math.max(280, Math.floor(width || 800));
  const h = 150;
  const left = 44;
  const bottom = 22;
  const plotW = w - left - 8;
  const plotH = h - bottom - 8;
  const step = plotW / hours;
  // At most 40 px wide, centred in its hour: a short range is not one wide block.
  const barW = Math.min(40, Math.max(1, step - (step > 4 ? 1 : 0)));
  const barX = (slot) => left + slot * step + (step - barW) / 2;
  const y = (n) => 8 + plotH - (n / max) * plotH;

  const summary = total === 0
    ? `No ${unit} in this range.`
    : `${plural(total, unit)} in ${plural(hours, "hours")}; busiest hour ${hourLabel(start + peak * HOUR)} UTC with ${sums[peak]}.`;
  const chart = svg("svg", {
    class: "chart",
    width: w,
    height: h,
    viewBox: `0 0 ${w} ${h}`,
    role: "img",
    "aria-label": `${title}. ${summary}`,
  });
  // Axes and the two y ticks (0 and the maximum).
  chart.append(
    svg("line", { x1: left, y1: y(0), x2: w - 8, y2: y(0), class: "axis" }),
    svg("line", { x1: left, y1: y(max), x2: w - 8, y2: y(max), class: "grid" }),
    svg("text", { x: left - 6, y: y(0), class: "tick", "text-anchor": "end", "dominant-baseline": "middle" }, "0"),
    svg("text", { x: left - 6, y: y(max), class: "tick", "text-anchor": "end", "dominant-baseline": "middle" }, String(max)),
  );
  stacks.forEach((stack, slot) => {
    if (sums[slot] === 0) return;
    const group = svg("g", {}, svg("title", {}, `${hourLabel(start + slot * HOUR)} UTC: ${sums[slot]} ${unit}` +
      (series.length > 1 ? " (" + series.map((n, i) => stack[i] ? `${n} ${stack[i]}` : null).filter(Boolean).join(", ") + ")" : "")));
    let base = 0;
    stack.forEach((count, s) => {
      if (!count) return;
      const top = y(base + count);
      group.append(svg("rect", {
        x: barX(slot).toFixed(2),
        y: top.toFixed(2),
        width: barW.toFixed(2),
        height: Math.max(1, y(base) - top).toFixed(2),
        fill: color(s),
      }));
      base += count;
    });
    chart.append(group);
  });
  // Time labels: the start, the middle and the end of the range.
  const labels = w < 500 ? [0, hours] : [0, Math.floor(hours / 2), hours];
  labels.forEach((slot, i) => {
    const anchor = i === 0 ? "start" : i === labels.length - 1 ? "end" : "middle";
    chart.append(svg("text", { x: left + slot * step, y: h - 6, class: "tick", "text-anchor": anchor }, hourLabel(start + slot * HOUR)));
  });

  const legend = series.length > 1
    ? el("ul", { class: "legend" }, series.map((name, i) =>
      el("li", {}, el("span", { class: "swatch", "data-color": i % COLORS.length }), name)))
    : null;
  return el("figure", { class: "chart-box" },
    el("figcaption", {}, el("strong", {}, title), " — ", summary, " Times in UTC."),
    chart,
    legend);
}
