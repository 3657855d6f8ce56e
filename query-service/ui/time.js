// Times: the API speaks RFC 3339 UTC with microseconds; the page shows UTC.

/** Microseconds since the epoch of an RFC 3339 UTC string ("…T09:15:27.243860Z"). */
export function micros(rfc3339) {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(rfc3339 || "");
  if (!m) return NaN;
  const seconds = Date.parse(m[1] + "Z");
  const fraction = (m[2] || "").padEnd(6, "0").slice(0, 6);
  return seconds * 1000 + Number(fraction);
}

/** "2021-09-26 09:15:27.243860" from an RFC 3339 UTC string (display form). */
export function show(rfc3339) {
  return String(rfc3339 || "").replace("T", " ").replace(/Z$/, "");
}

/** "2021-09-26T09:15:27Z" for a Date (whole seconds, what the API takes). */
export function iso(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** A duration in microseconds, short: "850 µs", "1.204 s", "3 min 02 s", "2 h 05 min", "3 d 4 h". */
export function duration(us) {
  if (!Number.isFinite(us) || us < 0) return "";
  if (us < 1000) return `${us} µs`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(1)} ms`;
  const s = us / 1_000_000;
  if (s < 60) return `${s.toFixed(3)} s`;
  const whole = Math.floor(s);
  const min = Math.floor(whole / 60);
  if (min < 60) return `${min} min ${String(whole % 60).padStart(2, "0")} s`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ${String(min % 60).padStart(2, "0")} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** The ranges of the picker: a name and its length in milliseconds. */
export const RANGES = {
  hour: { label: "Last hour", ms: 3600_000 },
  day: { label: "Last day", ms: 86_400_000 },
  week: { label: "Last week", ms: 7 * 86_400_000 },
};

/**
 * The `[from, to)` of a picker state: a named range ends now plus five
 * minutes (events may carry a time up to five minutes ahead: the accepted
 * clock skew); a custom one takes the UTC inputs as they are.
 */
export function rangeOf(state) {
  if (state.range === "custom" && state.from && state.to) {
    return { from: utc(state.from), to: utc(state.to) };
  }
  const named = RANGES[state.range] || RANGES.day;
  const now = Date.now();
  return { from: iso(new Date(now - named.ms)), to: iso(new Date(now + 300_000)) };
}

/** "2021-09-26T09:15" or "…T09:15:30" (a `datetime-local` value, read as UTC) as RFC 3339. */
function utc(value) {
  return (value.length === 16 ? value + ":00" : value) + "Z";
}

/** The value of a `datetime-local` input for a Date, in UTC. */
export function inputValue(date) {
  return date.toISOString().slice(0, 16);
}
