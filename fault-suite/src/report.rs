//! A scenario's figures: printed in one block, then checked. A failed check
//! names what was lost or duplicated.

use std::time::Duration;

use crate::load::Ledger;
use crate::verify::{reject_codes, Findings, Readback};

/// What a scenario did and found.
#[derive(Debug, Default)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// The load's seed (`EYE_FAULT_SEED` repeats a run's contents).
    pub seed: u64,
    /// Events sent.
    pub sent: usize,
    /// Events accepted.
    pub accepted: usize,
    /// Events rejected.
    pub rejected: usize,
    /// Events never answered for sure.
    pub unconfirmed: usize,
    /// Distinct sent events readable from the query service.
    pub stored: usize,
    /// Rows read from the query service.
    pub rows: usize,
    /// Requests sent, retries among them, and the answers by kind.
    pub requests: String,
    /// Named durations (fault to ready, catch-up, ...).
    pub times: Vec<(String, Duration)>,
    /// Free-form observations.
    pub notes: Vec<String>,
    /// The comparison.
    pub findings: Findings,
    /// Problems found by the scenario's own checks.
    pub failures: Vec<String>,
}

impl Report {
    /// A report of `scenario` from the ledger and the read-back.
    pub fn new(scenario: &str, seed: u64, ledger: &Ledger, back: &Readback) -> Report {
        let (accepted, rejected, unconfirmed, _) = ledger.counts();
        let findings = crate::verify::compare(ledger, back);
        let stored = ledger
            .events
            .iter()
            .filter(|e| back.by_marker.contains_key(&e.marker))
            .count();
        let mut report = Report {
            scenario: scenario.to_owned(),
            seed,
            sent: ledger.events.len(),
            accepted,
            rejected,
            unconfirmed,
            stored,
            rows: back.rows,
            requests: format!(
                "{} requests ({} retries): {}",
                ledger.requests,
                ledger.retries,
                ledger.answers_text()
            ),
            findings,
            ..Report::default()
        };
        report.notes.push(format!(
            "rejects in /v1/errors by source/code: {:?}",
            reject_codes(back)
        ));
        for conflict in &ledger.id_conflicts {
            report
                .failures
                .push(format!("one event accepted under two ids: {conflict}"));
        }
        for answer in ledger.unexpected.iter().take(5) {
            report
                .failures
                .push(format!("unexpected gateway answer: {answer}"));
        }
        report
    }

    /// Records a duration.
    pub fn time(&mut self, what: &str, took: Duration) {
        self.times.push((what.to_owned(), took));
    }

    /// Records an observation.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Records a failed check.
    pub fn fail(&mut self, failure: impl Into<String>) {
        self.failures.push(failure.into());
    }

    /// Prints the block.
    pub fn print(&self) {
        let f = &self.findings;
        println!("--- scenario {} (seed {}) ---", self.scenario, self.seed);
        println!(
            "  sent {}, accepted {}, rejected {}, unconfirmed {}, stored {} ({} rows read), \
             duplicates seen by readers {}, lost {}",
            self.sent,
            self.accepted,
            self.rejected,
            self.unconfirmed,
            self.stored,
            self.rows,
            f.duplicates.len(),
            f.lost.len()
        );
        println!(
            "  rejects missing from /v1/errors {}, recorded more than once {}; \
             unconfirmed but stored {}; poison recorded {}",
            f.rejects_missing.len(),
            f.rejects_repeated,
            f.unconfirmed_stored,
            f.poison_recorded
        );
        println!("  {}", self.requests);
        if !self.times.is_empty() {
            let times: Vec<String> = self
                .times
                .iter()
                .map(|(what, took)| format!("{what} {:.2}s", took.as_secs_f64()))
                .collect();
            println!("  recovery: {}", times.join(", "));
        }
        for note in &self.notes {
            println!("  {note}");
        }
    }

    /// Every check that failed, with examples.
    pub fn problems(&self) -> Vec<String> {
        let f = &self.findings;
        let mut problems = self.failures.clone();
        let mut list = |what: &str, items: &[String]| {
            if !items.is_empty() {
                let shown: Vec<&String> = items.iter().take(10).collect();
                problems.push(format!("{} {what}, e.g. {shown:?}", items.len()));
            }
        };
        list("accepted events LOST (not readable)", &f.lost);
        list("events DUPLICATED for readers", &f.duplicates);
        list("accepted events stored under another id", &f.wrong_id);
        list("rejected events stored", &f.stored_rejects);
        list(
            "rejected events missing from /v1/errors",
            &f.rejects_missing,
        );
        list("invalid events accepted", &f.invalid_accepted);
        list("valid events rejected", &f.valid_rejected);
        list("poison events missing from /v1/errors", &f.poison_missing);
        if self.accepted == 0 {
            problems.push("no event was accepted: the load did not run".to_owned());
        }
        problems
    }

    /// Prints the report and panics with every problem, if any.
    pub fn check(&self) {
        self.print();
        let problems = self.problems();
        if !problems.is_empty() {
            panic!(
                "scenario {} failed:\n  - {}",
                self.scenario,
                problems.join("\n  - ")
            );
        }
        println!("  OK");
    }
}
