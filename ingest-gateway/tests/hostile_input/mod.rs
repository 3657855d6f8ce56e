//! Hostile request bodies answered offline: the gateway's own body path
//! (`check::check`: gzip, splitting JSON and NDJSON, validation, reject records)
//! and its per-event answer (`IngestResponse`), as if every valid event were
//! published, with the invariants a client may rely on checked on every answer.
//!
//! Shared by `tests/properties.rs` and the fuzz target
//! (`fuzz/fuzz_targets/body.rs`, which includes this file by path), so both
//! check the same things.

#![allow(dead_code)] // Each user takes a different part.

use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use eye_contract::{SchemaRegistry, Timestamp, Validator};
use ingest_gateway::body::{BodyLimits, Encoding, Format};
use ingest_gateway::check::{self, Context, Outcome, RawBody};
use ingest_gateway::response::IngestResponse;

/// The client id of every offline request.
pub const CLIENT: &str = "hostile";
/// Bytes of a rejected event kept in its record (small, to exercise truncation).
pub const RAW_CAP: usize = 64;

/// How the gateway answered a body, reduced to what must not depend on how
/// the body was encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The request failed as a whole: its 4xx status and message.
    Request { status: u16, message: String },
    /// Per-event results: the HTTP status (202 or 422) and, per event, `None`
    /// for accepted or its error code.
    Events {
        status: u16,
        codes: Vec<Option<&'static str>>,
    },
}

struct Offline {
    validator: Validator,
    /// One fixed "now", so the same body always gets the same answer.
    now: Timestamp,
}

fn offline() -> &'static Offline {
    static OFFLINE: OnceLock<Offline> = OnceLock::new();
    OFFLINE.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas");
        let dir = if std::path::Path::new(dir).is_dir() {
            dir.to_owned()
        } else {
            // The fuzz crate's manifest directory is one level deeper.
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas").to_owned()
        };
        let registry = SchemaRegistry::load_dir(&dir)
            .unwrap_or_else(|error| panic!("loading the schemas in {dir}: {error}"));
        Offline {
            validator: Validator::new(Arc::new(registry)),
            now: Timestamp::now(),
        }
    })
}

/// Limits as the gateway's defaults would give, or small ones (to reach the
/// size and count limits with short inputs).
pub fn limits(small: bool) -> BodyLimits {
    BodyLimits {
        max_body_bytes: if small { 2048 } else { 1 << 20 },
        max_events: if small { 4 } else { 500 },
        read_timeout: Duration::from_secs(30),
    }
}

/// gzip of `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

/// Answers `bytes` sent as `format` with `encoding`, and panics if the answer
/// breaks a rule: a whole-request failure must be a 4xx; per-event results
/// must be one per event (at least one, at most the limit), with one reject
/// record per rejected event that serializes, and a 202 when any event was
/// accepted, else a 422.
pub fn answer(bytes: &[u8], format: Format, encoding: Encoding, limits: BodyLimits) -> Answer {
    let offline = offline();
    let cx = Context {
        validator: &offline.validator,
        client: CLIENT,
        raw_cap: RAW_CAP,
        now: offline.now,
    };
    let raw = RawBody {
        bytes: bytes.to_vec(),
        encoding,
        format,
    };
    let checked = match check::check(&cx, raw, limits) {
        Ok(checked) => checked,
        Err(error) => {
            let status = error.status();
            assert!(
                status.is_client_error(),
                "a body failed with {status}: {error} ({format:?}, {encoding:?})"
            );
            return Answer::Request {
                status: status.as_u16(),
                message: error.to_string(),
            };
        }
    };
    let events = checked.outcomes.len();
    assert!(
        (1..=limits.max_events).contains(&events),
        "{events} results for a limit of {}",
        limits.max_events
    );
    let codes: Vec<Option<&'static str>> = checked
        .outcomes
        .iter()
        .map(|outcome| match outcome {
            Outcome::Valid(_) => None,
            Outcome::Rejected(error) => Some(error.code.as_str()),
        })
        .collect();
    let rejected = codes.iter().filter(|c| c.is_some()).count();
    assert_eq!(
        checked.rejects.len(),
        rejected,
        "one reject record per reject"
    );
    for reject in &checked.rejects {
        assert_eq!(reject.client, CLIENT);
        serde_json::to_vec(reject).expect("a reject record serializes");
    }
    let published = vec![Ok(()); events - rejected];
    let response = IngestResponse::new(checked.outcomes, published);
    assert_eq!(response.results.len(), events);
    assert_eq!(
        (response.accepted, response.rejected, response.failed),
        (events - rejected, rejected, 0)
    );
    let status = response.into_http(false).status().as_u16();
    let expected = if rejected < events { 202 } else { 422 };
    assert_eq!(status, expected, "results {codes:?}");
    Answer::Events { status, codes }
}

/// The same body must get the same answer sent plain and gzipped, as long as
/// it fits the limit (a larger one is refused after decompression instead).
pub fn answer_plain_and_gzipped(bytes: &[u8], format: Format, limits: BodyLimits) -> Answer {
    let plain = answer(bytes, format, Encoding::Identity, limits);
    let zipped = answer(&gzip(bytes), format, Encoding::Gzip, limits);
    if bytes.len() <= limits.max_body_bytes {
        assert_eq!(plain, zipped, "plain and gzipped answers differ");
    } else {
        assert!(
            matches!(zipped, Answer::Request { status: 413, .. }),
            "{} bytes after decompression, limit {}: {zipped:?}",
            bytes.len(),
            limits.max_body_bytes
        );
    }
    plain
}
