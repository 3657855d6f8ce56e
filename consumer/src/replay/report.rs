//! What a replay did, for the operator: counts, the reasons the rest still
//! fail, and which rejects were replayed (printed as text or JSON).

use std::collections::BTreeMap;
use std::fmt;

use eye_contract::Timestamp;
use serde::Serialize;

use super::filter::Filter;

/// Most rejects listed one by one in [`Report::replayed`]; the counts are always complete.
pub const MAX_LISTED: usize = 1000;

/// How many rejects share one reason, with the first one as an example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// How many.
    pub count: u64,
    /// The first reject with this reason.
    pub example_reject_id: String,
    /// Its message.
    pub example_message: String,
}

/// What happened to one reject that passes now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Inserted into `events` by this replay.
    Stored,
    /// Would be inserted (`--dry-run`).
    WouldStore,
    /// Its event was in `events` already (an earlier replay, a resend, or
    /// another reject of the same event): nothing inserted.
    AlreadyStored,
}

/// One replayed reject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replayed {
    /// The reject in `event_errors` (left there: it is history).
    pub reject_id: String,
    /// The code it had.
    pub code: String,
    /// The client.
    pub client_id: String,
    /// The id of the event in `events`.
    pub event_id: String,
    /// What the replay did.
    pub fate: Fate,
}

/// The outcome of one `eye-consumer replay`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// What was replayed.
    pub filter: Filter,
    /// Whether nothing was stored on purpose.
    pub dry_run: bool,
    /// Rejects read.
    pub examined: u64,
    /// Rejects that pass now and were inserted (or would be, with `--dry-run`).
    pub stored: u64,
    /// Rejects that pass now whose event was stored already.
    pub already_stored: u64,
    /// Rejects that still fail, by the code they fail with now.
    pub still_failing: BTreeMap<String, Reason>,
    /// Rejects that cannot be re-validated, by why not.
    pub not_replayable: BTreeMap<String, Reason>,
    /// The first [`MAX_LISTED`] rejects that pass now.
    pub replayed: Vec<Replayed>,
}

impl Report {
    /// An empty report for `filter`.
    pub fn new(filter: Filter, dry_run: bool) -> Report {
        Report {
            filter,
            dry_run,
            examined: 0,
            stored: 0,
            already_stored: 0,
            still_failing: BTreeMap::new(),
            not_replayable: BTreeMap::new(),
            replayed: Vec::new(),
        }
    }

    /// Rejects that pass validation now.
    pub fn passed(&self) -> u64 {
        self.stored + self.already_stored
    }

    /// Rejects that still fail, whatever the code.
    pub fn failing(&self) -> u64 {
        self.still_failing.values().map(|r| r.count).sum()
    }

    /// Counts a reject that passes now.
    pub fn passes(&mut self, replayed: Replayed) {
        match replayed.fate {
            Fate::Stored | Fate::WouldStore => self.stored += 1,
            Fate::AlreadyStored => self.already_stored += 1,
        }
        if self.replayed.len() < MAX_LISTED {
            self.replayed.push(replayed);
        }
    }

    /// Counts a reject that still fails with `code`.
    pub fn fails(&mut self, code: &str, reject_id: &str, message: &str) {
        count(&mut self.still_failing, code, reject_id, message);
    }

    /// Counts a reject that cannot be re-validated.
    pub fn skips(&mut self, label: &str, reject_id: &str, reason: &str) {
        count(&mut self.not_replayable, label, reject_id, reason);
    }
}

fn count(map: &mut BTreeMap<String, Reason>, key: &str, reject_id: &str, message: &str) {
    map.entry(key.to_owned())
        .or_insert_with(|| Reason {
            count: 0,
            example_reject_id: reject_id.to_owned(),
            example_message: message.to_owned(),
        })
        .count += 1;
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = |us| Timestamp::from_micros(us).to_rfc3339();
        writeln!(
            f,
            "replay{} of event_errors received in [{}, {}): {} rejects examined",
            if self.dry_run {
                " (dry run: nothing stored)"
            } else {
                ""
            },
            time(self.filter.from_us),
            time(self.filter.to_us),
            self.examined
        )?;
        let stored = if self.dry_run {
            "would be stored"
        } else {
            "stored"
        };
        writeln!(
            f,
            "  pass now: {} ({} {stored}, {} already stored)",
            self.passed(),
            self.stored,
            self.already_stored
        )?;
        writeln!(f, "  still failing: {}", self.failing())?;
        write_reasons(f, &self.still_failing)?;
        let skipped: u64 = self.not_replayable.values().map(|r| r.count).sum();
        writeln!(f, "  not replayable: {skipped}")?;
        write_reasons(f, &self.not_replayable)
    }
}

fn write_reasons(f: &mut fmt::Formatter<'_>, reasons: &BTreeMap<String, Reason>) -> fmt::Result {
    for (key, reason) in reasons {
        writeln!(
            f,
            "    {key}: {} (e.g. reject {}: {})",
            reason.count, reason.example_reject_id, reason.example_message
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_text() {
        let filter = Filter {
            from_us: 0,
            to_us: 1_000_000,
            codes: vec![],
            clients: vec![],
            categories: vec![],
        };
        let mut report = Report::new(filter, false);
        let replayed = |fate| Replayed {
            reject_id: "r".into(),
            code: "schema_violation".into(),
            client_id: "demo".into(),
            event_id: "e".into(),
            fate,
        };
        report.passes(replayed(Fate::Stored));
        report.passes(replayed(Fate::AlreadyStored));
        report.fails("invalid_session_id", "r2", "not a UUID");
        report.fails("invalid_session_id", "r3", "not a UUID either");
        report.skips("raw_truncated", "r4", "cut");
        assert_eq!((report.passed(), report.failing()), (2, 2));
        let text = report.to_string();
        assert!(
            text.contains("pass now: 2 (1 stored, 1 already stored)"),
            "{text}"
        );
        assert!(
            text.contains("invalid_session_id: 2 (e.g. reject r2: not a UUID)"),
            "{text}"
        );
        assert!(text.contains("raw_truncated: 1"), "{text}");
    }
}
