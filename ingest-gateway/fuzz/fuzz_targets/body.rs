//! Fuzz target: a request body through the gateway's body path (gzip, JSON or
//! NDJSON splitting, validation, reject records, the per-event answer).
//!
//! The first input byte chooses how the rest is sent:
//! - bit 0: `application/json` (0) or `application/x-ndjson` (1);
//! - bit 1: the gateway's default limits (0) or small ones (1), so size and
//!   count limits are reached by short inputs;
//! - bits 2-3 (mod 3): the rest sent as it is (0); the rest taken as a gzip
//!   stream (1: hostile compressed data); the rest gzipped by the target and
//!   sent compressed *and* plain (2), which must get the same answer.
//!
//! Every answer is checked by `tests/hostile_input/mod.rs` (a 4xx for a
//! whole-request failure, else one result per event and 202/422), shared with
//! the property tests; a panic anywhere is a finding.

#![no_main]

use ingest_gateway::body::{Encoding, Format};
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/hostile_input/mod.rs"]
mod hostile_input;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let format = if selector & 1 == 0 {
        Format::Json
    } else {
        Format::Ndjson
    };
    let limits = hostile_input::limits(selector & 2 != 0);
    match (selector >> 2) % 3 {
        0 => {
            hostile_input::answer(body, format, Encoding::Identity, limits);
        }
        1 => {
            hostile_input::answer(body, format, Encoding::Gzip, limits);
        }
        _ => {
            hostile_input::answer_plain_and_gzipped(body, format, limits);
        }
    }
});
