//! The results: numbers under names that carry their unit, the targets of
//! issue 8 next to them, the table printed at the end, and `results.json`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// How a figure is judged.
#[derive(Debug, Clone, Copy)]
pub enum Bound {
    /// At least this much.
    AtLeast(f64),
    /// At most this much.
    AtMost(f64),
}

/// A target of the issue: the key it judges and its bound.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Result key.
    pub key: &'static str,
    /// What it must reach.
    pub bound: Bound,
}

/// The targets (2 cores shared by everything, release build).
pub const TARGETS: [Target; 11] = [
    Target {
        key: "batched_stored_events_per_s",
        bound: Bound::AtLeast(50_000.0),
    },
    Target {
        key: "batched_stored_to_jetstream_ceiling_ratio",
        bound: Bound::AtLeast(0.5),
    },
    Target {
        key: "single_event_requests_per_s",
        bound: Bound::AtLeast(15_000.0),
    },
    Target {
        key: "gateway_p99_ms_at_5k",
        bound: Bound::AtMost(10.0),
    },
    Target {
        key: "e2e_p99_ms_at_5k",
        bound: Bound::AtMost(1000.0),
    },
    Target {
        key: "session_query_p99_ms",
        bound: Bound::AtMost(20.0),
    },
    Target {
        key: "category_hour_query_p99_ms",
        bound: Bound::AtMost(100.0),
    },
    Target {
        key: "gateway_rss_mb",
        bound: Bound::AtMost(64.0),
    },
    Target {
        key: "consumer_rss_mb",
        bound: Bound::AtMost(256.0),
    },
    Target {
        key: "query_rss_mb",
        bound: Bound::AtMost(128.0),
    },
    Target {
        key: "steady_achieved_events_per_s",
        bound: Bound::AtLeast(4750.0),
    },
];

/// Figures shown in the table without a target, in this order.
const SHOWN: [&str; 22] = [
    "jetstream_publish_ceiling_per_s",
    "clickhouse_insert_ceiling_rows_per_s",
    "clickhouse_insert_rows_per_s_batch_10000",
    "batched_accepted_events_per_s",
    "batched_stored_events_per_s",
    "batched_stored_to_jetstream_ceiling_ratio",
    "batched_stored_to_clickhouse_ceiling_ratio",
    "batched_max_lag_events",
    "single_event_requests_per_s",
    "single_event_p50_ms",
    "single_event_p99_ms",
    "steady_achieved_events_per_s",
    "gateway_p50_ms_at_5k",
    "gateway_p99_ms_at_5k",
    "gateway_p999_ms_at_5k",
    "e2e_p50_ms_at_5k",
    "e2e_p99_ms_at_5k",
    "session_query_p50_ms",
    "session_query_p99_ms",
    "category_hour_query_p50_ms",
    "category_hour_query_p99_ms",
    "sessions_listing_p99_ms",
];

/// What a run measured, and what went wrong.
#[derive(Debug, Default)]
pub struct Results {
    figures: BTreeMap<String, f64>,
    info: Map<String, Value>,
    errors: Vec<String>,
}

impl Results {
    /// Records figure `key` (a finite number; others are dropped with an error).
    pub fn set(&mut self, key: &str, value: f64) {
        if value.is_finite() {
            self.figures.insert(key.to_owned(), round(value));
        } else {
            self.error(format!("{key}: not a finite number ({value})"));
        }
    }

    /// Records `value` as `key` if there is one.
    pub fn set_opt(&mut self, key: &str, value: Option<f64>) {
        match value {
            Some(value) => self.set(key, value),
            None => self.error(format!("{key}: nothing measured")),
        }
    }

    /// A figure recorded earlier.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.figures.get(key).copied()
    }

    /// All figures.
    pub fn figures(&self) -> &BTreeMap<String, f64> {
        &self.figures
    }

    /// Records a non-numeric fact (machine, commit, settings).
    pub fn info(&mut self, key: &str, value: Value) {
        self.info.insert(key.to_owned(), value);
    }

    /// Records something that went wrong; the run then fails.
    pub fn error(&mut self, message: String) {
        eprintln!("eye-bench: error: {message}");
        self.errors.push(message);
    }

    /// What went wrong.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// Each target's verdict: `Some(true)` met, `Some(false)` missed, `None`
    /// not measured.
    pub fn verdicts(&self) -> Vec<(Target, Option<f64>, Option<bool>)> {
        TARGETS
            .iter()
            .map(|t| {
                let value = self.get(t.key);
                let met = value.map(|v| match t.bound {
                    Bound::AtLeast(min) => v >= min,
                    Bound::AtMost(max) => v <= max,
                });
                (*t, value, met)
            })
            .collect()
    }

    /// The JSON document: every figure at the top level, then `machine`,
    /// `git_commit` and the other facts, the verdicts and the errors.
    pub fn to_json(&self) -> Value {
        let mut doc = Map::new();
        for (key, value) in &self.figures {
            doc.insert(key.clone(), Value::from(*value));
        }
        for (key, value) in &self.info {
            doc.insert(key.clone(), value.clone());
        }
        let targets: Map<String, Value> = self
            .verdicts()
            .into_iter()
            .map(|(t, _, met)| {
                let verdict = match met {
                    Some(true) => "PASS",
                    Some(false) => "MISS",
                    None => "not measured",
                };
                (t.key.to_owned(), Value::from(verdict))
            })
            .collect();
        doc.insert("targets".into(), Value::Object(targets));
        doc.insert("errors".into(), Value::from(self.errors.clone()));
        Value::Object(doc)
    }

    /// The table: targets with their verdicts, then the other figures.
    pub fn table(&self) -> String {
        let mut lines = vec![format!(
            "{:<44} {:>14} {:>16}  {}",
            "figure", "target", "measured", "verdict"
        )];
        let verdicts = self.verdicts();
        for key in SHOWN.iter().copied().chain(
            verdicts
                .iter()
                .map(|(t, _, _)| t.key)
                .filter(|k| !SHOWN.contains(k)),
        ) {
            let target = verdicts.iter().find(|(t, _, _)| t.key == key);
            let (bound, verdict) = match target {
                Some((t, _, met)) => (
                    match t.bound {
                        Bound::AtLeast(v) => format!(">= {}", show(v)),
                        Bound::AtMost(v) => format!("<= {}", show(v)),
                    },
                    match met {
                        Some(true) => "PASS",
                        Some(false) => "MISS",
                        None => "not measured",
                    },
                ),
                None => (String::new(), ""),
            };
            let measured = self.get(key).map_or_else(|| "-".to_owned(), show);
            lines.push(format!("{key:<44} {bound:>14} {measured:>16}  {verdict}"));
        }
        let mut rest: Vec<_> = self
            .figures
            .keys()
            .filter(|k| !SHOWN.contains(&k.as_str()) && !TARGETS.iter().any(|t| t.key == *k))
            .collect();
        rest.sort();
        for key in rest {
            let measured = self.get(key).map_or_else(|| "-".to_owned(), show);
            lines.push(format!("{key:<44} {:>14} {measured:>16}", ""));
        }
        lines.join("\n")
    }
}

/// Three significant decimals at most: figures, not noise.
fn round(value: f64) -> f64 {
    if value.abs() >= 100.0 {
        value.round()
    } else {
        (value * 1000.0).round() / 1000.0
    }
}

fn show(value: f64) -> String {
    if value.abs() >= 1000.0 {
        // Thousands separated, for the eye.
        let digits = format!("{:.0}", value.abs());
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if value < 0.0 {
            out.insert(0, '-');
        }
        out
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_bounds() {
        let mut r = Results::default();
        r.set("single_event_requests_per_s", 16_000.0);
        r.set("gateway_p99_ms_at_5k", 12.5);
        let v = r.verdicts();
        let of = |key: &str| v.iter().find(|(t, _, _)| t.key == key).map(|x| x.2);
        assert_eq!(of("single_event_requests_per_s"), Some(Some(true)));
        assert_eq!(of("gateway_p99_ms_at_5k"), Some(Some(false)));
        assert_eq!(of("query_rss_mb"), Some(None));
        let json = r.to_json();
        assert_eq!(json["single_event_requests_per_s"], 16_000.0);
        assert_eq!(json["targets"]["gateway_p99_ms_at_5k"], "MISS");
        let table = r.table();
        assert!(table.contains("16,000"), "{table}");
        assert!(table.contains("MISS"), "{table}");
    }

    #[test]
    fn non_finite_figures_are_errors() {
        let mut r = Results::default();
        r.set("x", f64::NAN);
        r.set_opt("y", None);
        assert!(r.get("x").is_none());
        assert_eq!(r.errors().len(), 2);
    }
}
