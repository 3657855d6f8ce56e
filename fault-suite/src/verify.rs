//! Reading everything back the way users do — from the query service, with
//! the demo read token — and comparing it with the [`Ledger`].
//!
//! Events come from the NDJSON export of `GET /v1/events` (every event of the
//! database, following `next_cursor` if the export is cut), rejects from the
//! export of `GET /v1/errors`. Rows are matched to the events sent by the
//! marker in `data.path` (and in a reject's `raw`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::load::{Ledger, State};

/// The demo client's read token (deploy/clients.toml).
pub const READ_TOKEN: &str = "eye_demo_read_token";

/// What the query service returned.
#[derive(Debug, Default, Clone)]
pub struct Readback {
    /// Rows by marker: the event ids of every row carrying it.
    pub by_marker: HashMap<String, Vec<String>>,
    /// Rows without a marker (not sent by the load).
    pub foreign: usize,
    /// Rows read.
    pub rows: usize,
    /// Rejects from `/v1/errors`: `(code, source, raw)`.
    pub rejects: Vec<(String, String, String)>,
}

/// Reads every row of `route` (`/v1/events` or `/v1/errors`) as NDJSON.
pub async fn export(
    http: &reqwest::Client,
    query_url: &str,
    route: &str,
) -> Result<Vec<Value>, String> {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = http
            .get(format!("{query_url}{route}"))
            .bearer_auth(READ_TOKEN)
            .header("accept", "application/x-ndjson")
            .timeout(Duration::from_secs(60));
        if let Some(cursor) = &cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("GET {route}: {e}"))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| format!("GET {route} body: {e}"))?;
        if status != 200 {
            return Err(format!("GET {route} answered {status}: {text}"));
        }
        cursor = None;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let value: Value = serde_json::from_str(line)
                .map_err(|e| format!("GET {route}: bad NDJSON line ({e}): {line}"))?;
            if let Some(error) = value.get("error") {
                return Err(format!("GET {route}: export failed: {error}"));
            }
            if let Some(next) = value.get("next_cursor") {
                cursor = next.as_str().map(str::to_owned);
                continue;
            }
            rows.push(value);
        }
        if cursor.is_none() {
            return Ok(rows);
        }
    }
}

/// Reads the events and the rejects.
pub async fn read_back(http: &reqwest::Client, query_url: &str) -> Result<Readback, String> {
    let mut back = Readback::default();
    for row in export(http, query_url, "/v1/events").await? {
        back.rows += 1;
        let id = row["event_id"].as_str().unwrap_or_default().to_owned();
        match row["data"]["path"].as_str() {
            Some(path) if path.starts_with("/fs/") => {
                back.by_marker.entry(path.to_owned()).or_default().push(id)
            }
            _ => back.foreign += 1,
        }
    }
    for row in export(http, query_url, "/v1/errors").await? {
        back.rejects.push((
            row["code"].as_str().unwrap_or_default().to_owned(),
            row["source"].as_str().unwrap_or_default().to_owned(),
            row["raw"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    Ok(back)
}

/// Polls the query service until every accepted event (but the poison ones)
/// is readable and every rejected one is in `/v1/errors`, or `deadline`;
/// returns the last read and how long it took.
pub async fn wait_until_readable(
    http: &reqwest::Client,
    query_url: &str,
    ledger: &Ledger,
    deadline: Duration,
) -> (Readback, Duration) {
    let started = Instant::now();
    let wanted: Vec<&str> = ledger
        .events
        .iter()
        .filter(|e| matches!(e.state, State::Accepted(_)) && !e.poison)
        .map(|e| e.marker.as_str())
        .collect();
    let rejected: Vec<&str> = ledger
        .events
        .iter()
        .filter(|e| {
            matches!(e.state, State::Rejected(_))
                || (e.poison && matches!(e.state, State::Accepted(_)))
        })
        .map(|e| e.marker.as_str())
        .collect();
    let mut last = Readback::default();
    loop {
        match read_back(http, query_url).await {
            Ok(back) => {
                let mut missing = wanted
                    .iter()
                    .filter(|m| !back.by_marker.contains_key(**m))
                    .count();
                if missing == 0 {
                    let recorded: HashSet<&str> = back
                        .rejects
                        .iter()
                        .filter_map(|(_, _, raw)| marker_in(raw))
                        .collect();
                    missing += rejected.iter().filter(|m| !recorded.contains(**m)).count();
                }
                last = back;
                if missing == 0 {
                    return (last, started.elapsed());
                }
            }
            Err(error) => eprintln!("  read back: {error}"),
        }
        if started.elapsed() > deadline {
            return (last, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The comparison of a ledger with what was read back.
#[derive(Debug, Default, Clone)]
pub struct Findings {
    /// Accepted events not readable (marker, id).
    pub lost: Vec<String>,
    /// Events readable more than once (marker and the ids).
    pub duplicates: Vec<String>,
    /// Accepted events stored under another id than the one answered.
    pub wrong_id: Vec<String>,
    /// Events the gateway rejected, or invalid events, that were stored.
    pub stored_rejects: Vec<String>,
    /// Rejected events missing from `/v1/errors`.
    pub rejects_missing: Vec<String>,
    /// Rejected events recorded more than once in `/v1/errors` (a request
    /// resent after the duplicate window, or after NATS lost its duplicate
    /// tracking, records its rejects again).
    pub rejects_repeated: usize,
    /// Invalid events the gateway accepted.
    pub invalid_accepted: Vec<String>,
    /// Valid events the gateway rejected.
    pub valid_rejected: Vec<String>,
    /// Events never answered for sure, stored anyway (allowed: the client
    /// does not know, and a resend would be deduplicated).
    pub unconfirmed_stored: usize,
    /// Poison events recorded as `storage_failed` in `/v1/errors`.
    pub poison_recorded: usize,
    /// Poison events missing from `/v1/errors`.
    pub poison_missing: Vec<String>,
}

/// Compares `ledger` with `back`.
pub fn compare(ledger: &Ledger, back: &Readback) -> Findings {
    let mut f = Findings::default();
    // Rejects by marker: (code, source) of every row whose raw names it.
    let mut rejects: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
    for (code, source, raw) in &back.rejects {
        if let Some(marker) = marker_in(raw) {
            rejects
                .entry(marker)
                .or_default()
                .push((code.as_str(), source.as_str()));
        }
    }
    for event in &ledger.events {
        let stored = back.by_marker.get(&event.marker);
        if let Some(ids) = stored {
            let mut distinct = ids.clone();
            distinct.sort();
            distinct.dedup();
            if ids.len() > 1 {
                f.duplicates.push(format!(
                    "{} read {} times: {ids:?}",
                    event.marker,
                    ids.len()
                ));
            }
        }
        match &event.state {
            State::Accepted(id) if event.poison => match rejects.get(event.marker.as_str()) {
                Some(rows) if rows.iter().any(|(code, _)| *code == "storage_failed") => {
                    f.poison_recorded += 1
                }
                _ => f.poison_missing.push(format!("{} ({id})", event.marker)),
            },
            State::Accepted(id) => {
                if !event.valid {
                    f.invalid_accepted.push(event.marker.clone());
                }
                match stored {
                    None => f.lost.push(format!("{} ({id})", event.marker)),
                    Some(ids) if ids.iter().any(|stored| stored != id) => f
                        .wrong_id
                        .push(format!("{}: answered {id}, stored {ids:?}", event.marker)),
                    Some(_) => {}
                }
            }
            State::Rejected(code) => {
                if event.valid {
                    f.valid_rejected.push(format!("{} ({code})", event.marker));
                }
                if stored.is_some() {
                    f.stored_rejects.push(event.marker.clone());
                }
                match rejects.get(event.marker.as_str()) {
                    None => f.rejects_missing.push(format!("{} ({code})", event.marker)),
                    Some(rows) if rows.len() > 1 => f.rejects_repeated += 1,
                    Some(_) => {}
                }
            }
            State::Unconfirmed(_) | State::Pending => {
                if stored.is_some() {
                    f.unconfirmed_stored += 1;
                }
            }
        }
    }
    f
}

/// The `/fs/<run>/<n>` marker inside a raw event body.
fn marker_in(raw: &str) -> Option<&str> {
    let start = raw.find("/fs/")?;
    let rest = &raw[start..];
    let end = rest
        .char_indices()
        .skip(4)
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '/'))
        .map_or(rest.len(), |(i, _)| i);
    Some(&rest[..end])
}

/// Codes of the rejects in `back`, counted (for the report).
pub fn reject_codes(back: &Readback) -> BTreeMap<String, usize> {
    let mut codes = BTreeMap::new();
    for (code, source, _) in &back.rejects {
        *codes.entry(format!("{source}/{code}")).or_insert(0) += 1;
    }
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_in_raw_bodies() {
        let raw = r#"{"data":{"host":"h","path":"/fs/0a1b2c3d/17"},"x":1}"#;
        assert_eq!(marker_in(raw), Some("/fs/0a1b2c3d/17"));
        assert_eq!(marker_in("/fs/ab/9"), Some("/fs/ab/9"));
        assert_eq!(marker_in("nothing"), None);
    }
}
