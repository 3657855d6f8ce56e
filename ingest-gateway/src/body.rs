//! Request bodies: content type and encoding, reading with a size cap, gzip with
//! the same cap on the decompressed size, and splitting into events.
//!
//! The rule: this module finds *where* each event is in the body and nothing
//! more; whether an event is valid is the contract's `Validator`'s business.
//!
//! Body shapes (`Content-Type`):
//! - `application/json` holding one event object: one event.
//! - `application/json` holding an array: one event per element. The array must
//!   be well-formed as a whole: a broken array (a missing `,` or `]`, trailing
//!   data) is a 400 with the byte offset. Elements that are well-formed JSON but
//!   not valid events are rejected one by one, never affecting their neighbours.
//! - `text/plain` (only with a write key: `navigator.sendBeacon` sends it):
//!   read as `application/json`.
//! - `application/x-ndjson`: one event per line (`\n` or `\r\n`); blank lines
//!   are skipped and do not count as events. A line that is not JSON is that
//!   event's `invalid_json`; its neighbours are unaffected.
//!
//! Byte offsets are counted in the decoded (decompressed) body.

use std::io::Read;
use std::ops::Range;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap};

use crate::problem::RequestError;

/// What a request body may be.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Bytes, compressed and decompressed.
    pub max_body_bytes: usize,
    /// Events per request.
    pub max_events: usize,
    /// How long reading the whole body may take.
    pub read_timeout: Duration,
}

/// How the body's events are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`: one event object, or an array of events.
    Json,
    /// `application/x-ndjson`: one event per line.
    Ndjson,
}

/// How the body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Not compressed.
    Identity,
    /// `Content-Encoding: gzip`.
    Gzip,
}

/// Where the events are in a decoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Events {
    /// Whether the body must be JSON as a whole (a single event or an array),
    /// so an event that is not JSON makes the *body* malformed; false for NDJSON.
    pub whole_body_json: bool,
    /// Each event's bytes, in request order.
    pub ranges: Vec<Range<usize>>,
}

/// The body's format, from `Content-Type` (parameters such as `charset` are ignored).
pub fn format(headers: &HeaderMap) -> Result<Format, RequestError> {
    format_for(headers, false)
}

/// [`format`], also accepting `text/plain` (read as `application/json`) when
/// `beacon` is true: what `navigator.sendBeacon` sends for a string body. The
/// gateway passes `true` only for requests made with a write key.
pub fn format_for(headers: &HeaderMap, beacon: bool) -> Result<Format, RequestError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(RequestError::UnsupportedMediaType("(none)".to_owned()));
    };
    let text = value.to_str().unwrap_or("");
    let essence = text.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(Format::Json)
    } else if essence.eq_ignore_ascii_case("application/x-ndjson")
        || essence.eq_ignore_ascii_case("application/ndjson")
    {
        Ok(Format::Ndjson)
    } else if essence.eq_ignore_ascii_case("text/plain") {
        if beacon {
            Ok(Format::Json)
        } else {
            Err(RequestError::UnsupportedMediaType(format!(
                "{text:?} (accepted only with a write key, for navigator.sendBeacon)"
            )))
        }
    } else {
        Err(RequestError::UnsupportedMediaType(format!("{text:?}")))
    }
}

/// The body's compression, from `Content-Encoding`.
pub fn encoding(headers: &HeaderMap) -> Result<Encoding, RequestError> {
    let mut values = headers.get_all(header::CONTENT_ENCODING).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return if headers.contains_key(header::CONTENT_ENCODING) {
            Err(RequestError::UnsupportedEncoding(
                "(more than one)".to_owned(),
            ))
        } else {
            Ok(Encoding::Identity)
        };
    };
    let text = value.to_str().unwrap_or("").trim();
    if text.eq_ignore_ascii_case("gzip") || text.eq_ignore_ascii_case("x-gzip") {
        Ok(Encoding::Gzip)
    } else if text.eq_ignore_ascii_case("identity") || text.is_empty() {
        Ok(Encoding::Identity)
    } else {
        Err(RequestError::UnsupportedEncoding(format!("{text:?}")))
    }
}

/// Reads the whole body, refusing more than `limits.max_body_bytes` (before
/// reading, when `Content-Length` already says so) and a sender too slow to
/// send it within `limits.read_timeout` (it would hold a connection for nothing).
pub async fn read(
    headers: &HeaderMap,
    body: Body,
    limits: &BodyLimits,
) -> Result<Vec<u8>, RequestError> {
    let limit = limits.max_body_bytes;
    let too_large = RequestError::BodyTooLarge { limit, after: "" };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large);
    }
    let read = tokio::time::timeout(limits.read_timeout, axum::body::to_bytes(body, limit));
    let Ok(read) = read.await else {
        return Err(RequestError::BodyTimeout(limits.read_timeout));
    };
    match read {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(error) => {
            let over_limit =
                std::iter::successors(Some(&error as &(dyn std::error::Error + 'static)), |e| {
                    e.source()
                })
                .any(|e| e.is::<http_body_util::LengthLimitError>());
            if over_limit {
                Err(too_large)
            } else {
                Err(RequestError::BodyRead(error.to_string()))
            }
        }
    }
}

/// Undoes `encoding`, refusing a decompressed body larger than `limit` (a zip
/// bomb stops after `limit + 1` bytes, never inflating further).
pub fn decode(raw: Vec<u8>, encoding: Encoding, limit: usize) -> Result<Vec<u8>, RequestError> {
    match encoding {
        Encoding::Identity => Ok(raw),
        Encoding::Gzip => {
            let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(limit));
            let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
            flate2::read::MultiGzDecoder::new(raw.as_slice())
                .take(cap)
                .read_to_end(&mut out)
                .map_err(|e| RequestError::BadGzip(e.to_string()))?;
            if out.len() > limit {
                return Err(RequestError::BodyTooLarge {
                    limit,
                    after: " after decompression",
                });
            }
            Ok(out)
        }
    }
}

/// Finds the events of a decoded body; at most `max_events` of them.
pub fn split(body: &[u8], format: Format, max_events: usize) -> Result<Events, RequestError> {
    let ranges = match format {
        Format::Ndjson => split_lines(body, max_events)?,
        Format::Json => {
            let start = skip_ws(body, 0);
            match body.get(start) {
                None => return Err(RequestError::NoEvents),
                Some(b'[') => split_array(body, start, max_events)?,
                Some(_) => std::iter::once(start..trim_end(body, start)).collect(),
            }
        }
    };
    if ranges.is_empty() {
        return Err(RequestError::NoEvents);
    }
    Ok(Events {
        whole_body_json: format == Format::Json,
        ranges,
    })
}

fn too_many(max_events: usize) -> RequestError {
    RequestError::TooManyEvents { limit: max_events }
}

fn malformed(offset: usize, message: &str) -> RequestError {
    RequestError::MalformedBody {
        offset,
        message: message.to_owned(),
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_ws(body: &[u8], mut i: usize) -> usize {
    while body.get(i).copied().is_some_and(is_ws) {
        i += 1;
    }
    i
}

/// The end of `body[start..]` without trailing whitespace.
fn trim_end(body: &[u8], start: usize) -> usize {
    let mut end = body.len();
    while end > start && is_ws(body[end - 1]) {
        end -= 1;
    }
    end
}

fn split_lines(body: &[u8], max_events: usize) -> Result<Vec<Range<usize>>, RequestError> {
    let mut ranges = Vec::new();
    let mut start = 0;
    while start < body.len() {
        let end = body[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |p| start + p);
        let first = skip_ws(&body[..end], start);
        if first < end {
            if ranges.len() == max_events {
                return Err(too_many(max_events));
            }
            ranges.push(first..trim_end(&body[..end], first));
        }
        start = end + 1;
    }
    Ok(ranges)
}

/// Splits the array that opens at `open` into its elements.
fn split_array(
    body: &[u8],
    open: usize,
    max_events: usize,
) -> Result<Vec<Range<usize>>, RequestError> {
    let mut ranges = Vec::new();
    let mut i = skip_ws(body, open + 1);
    if body.get(i) == Some(&b']') {
        i += 1;
    } else {
        loop {
            match body.get(i) {
                None => return Err(malformed(i, "unterminated array: expected an event")),
                Some(b',' | b']') => return Err(malformed(i, "expected an event")),
                Some(_) => {}
            }
            let end = value_end(body, i)?;
            if ranges.len() == max_events {
                return Err(too_many(max_events));
            }
            ranges.push(i..end);
            i = skip_ws(body, end);
            match body.get(i) {
                Some(b',') => i = skip_ws(body, i + 1),
                Some(b']') => {
                    i += 1;
                    break;
                }
                None => return Err(malformed(i, "unterminated array: expected ',' or ']'")),
                Some(_) => return Err(malformed(i, "expected ',' or ']' after an event")),
            }
        }
    }
    let rest = skip_ws(body, i);
    if rest < body.len() {
        return Err(malformed(rest, "unexpected data after the array"));
    }
    Ok(ranges)
}

/// The end of the JSON value that starts at `start`, found by its structure
/// alone (strings, brackets); its content is checked later, by the validator.
/// Brackets are matched with an explicit stack, so any nesting depth is safe.
fn value_end(body: &[u8], start: usize) -> Result<usize, RequestError> {
    let mut stack: Vec<u8> = Vec::new();
    let mut i = start;
    loop {
        let Some(&b) = body.get(i) else {
            return if stack.is_empty() {
                Ok(i)
            } else {
                Err(malformed(i, "unterminated object or array"))
            };
        };
        match b {
            b'"' => i = string_end(body, i)?,
            b'{' | b'[' => {
                stack.push(if b == b'{' { b'}' } else { b']' });
                i += 1;
            }
            b'}' | b']' => {
                match stack.pop() {
                    Some(expected) if expected == b => {}
                    // A `]` with nothing open ends the enclosing array's last element.
                    None => return Ok(i),
                    Some(_) => return Err(malformed(i, "mismatched bracket")),
                }
                i += 1;
            }
            b',' if stack.is_empty() => return Ok(i),
            _ if stack.is_empty() && is_ws(b) => return Ok(i),
            _ => i += 1,
        }
        if stack.is_empty() && matches!(b, b'"' | b'}' | b']') {
            return Ok(i);
        }
    }
}

/// The index just after the closing quote of the string opening at `open`.
fn string_end(body: &[u8], open: usize) -> Result<usize, RequestError> {
    let mut i = open + 1;
    loop {
        match body.get(i) {
            None => return Err(malformed(open, "unterminated string")),
            Some(b'\\') => i += 2,
            Some(b'"') => return Ok(i + 1),
            Some(_) => i += 1,
        }
    }
}

/// The byte offset in `bytes` at which `error` (from parsing `bytes`) occurred.
pub fn error_offset(bytes: &[u8], error: &serde_json::Error) -> usize {
    // serde_json reports a 1-based line and a 1-based byte column.
    let line_start = if error.line() <= 1 {
        0
    } else {
        bytes
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .nth(error.line() - 2)
            .map_or(bytes.len(), |(i, _)| i + 1)
    };
    line_start
        .saturating_add(error.column().saturating_sub(1))
        .min(bytes.len())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use axum::http::HeaderValue;

    use super::*;

    fn events(body: &str, format: Format) -> Vec<&str> {
        let found = split(body.as_bytes(), format, 10).expect("splits");
        found.ranges.into_iter().map(|r| &body[r]).collect()
    }

    fn offset_of(body: &str) -> usize {
        match split(body.as_bytes(), Format::Json, 10) {
            Err(RequestError::MalformedBody { offset, .. }) => offset,
            other => panic!("{body:?}: expected a malformed body, got {other:?}"),
        }
    }

    #[test]
    fn a_single_object_is_one_event() {
        assert_eq!(events("  {\"a\": [1]} \n", Format::Json), ["{\"a\": [1]}"]);
        assert_eq!(events("42", Format::Json), ["42"]);
    }

    #[test]
    fn arrays_split_into_elements_whatever_they_hold() {
        let body = r#"[ {"a": "x,]}\"y"}, [1,[2]] ,"s", 3 , null,{"b":{"c":[]}}]"#;
        assert_eq!(
            events(body, Format::Json),
            [
                r#"{"a": "x,]}\"y"}"#,
                "[1,[2]]",
                "\"s\"",
                "3",
                "null",
                r#"{"b":{"c":[]}}"#
            ]
        );
    }

    #[test]
    fn broken_arrays_are_malformed_at_the_right_offset() {
        assert_eq!(offset_of("[{} {}]"), 4);
        assert_eq!(offset_of("[{},]"), 4);
        assert_eq!(offset_of("[,{}]"), 1);
        assert_eq!(offset_of("[{}"), 3);
        assert_eq!(offset_of("[{}] x"), 5);
        assert_eq!(offset_of("[{]"), 2);
        assert_eq!(offset_of("[{\"a\": \"x}]"), 7);
        assert!(matches!(
            split(b"[]", Format::Json, 10),
            Err(RequestError::NoEvents)
        ));
        assert!(matches!(
            split(b"  ", Format::Json, 10),
            Err(RequestError::NoEvents)
        ));
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let deep = format!("[{}{}]", "[".repeat(200_000), "]".repeat(200_000));
        assert_eq!(
            split(deep.as_bytes(), Format::Json, 10)
                .map(|e| e.ranges.len())
                .ok(),
            Some(1)
        );
    }

    #[test]
    fn ndjson_lines_are_events_and_blank_lines_are_skipped() {
        let body = "{\"a\":1}\r\n\n  \nnot json\n{\"b\":2}";
        assert_eq!(
            events(body, Format::Ndjson),
            ["{\"a\":1}", "not json", "{\"b\":2}"]
        );
        let found = split(body.as_bytes(), Format::Ndjson, 10).expect("splits");
        assert!(!found.whole_body_json);
        assert!(matches!(
            split(b"\n\n", Format::Ndjson, 10),
            Err(RequestError::NoEvents)
        ));
    }

    #[test]
    fn event_counts_are_capped() {
        assert!(matches!(
            split(b"[1,2,3]", Format::Json, 2),
            Err(RequestError::TooManyEvents { limit: 2 })
        ));
        assert!(matches!(
            split(b"1\n2\n3\n", Format::Ndjson, 2),
            Err(RequestError::TooManyEvents { limit: 2 })
        ));
        assert!(split(b"[1,2]", Format::Json, 2).is_ok());
    }

    #[test]
    fn content_types_and_encodings() {
        let mut h = HeaderMap::new();
        assert!(matches!(
            format(&h),
            Err(RequestError::UnsupportedMediaType(_))
        ));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert_eq!(format(&h).ok(), Some(Format::Json));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        assert_eq!(format(&h).ok(), Some(Format::Ndjson));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(format(&h).is_err());

        assert_eq!(encoding(&h).ok(), Some(Encoding::Identity));
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("GZIP"));
        assert_eq!(encoding(&h).ok(), Some(Encoding::Gzip));
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
        assert!(matches!(
            encoding(&h),
            Err(RequestError::UnsupportedEncoding(_))
        ));
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).expect("compress");
        encoder.finish().expect("compress")
    }

    #[test]
    fn gzip_is_inflated_up_to_the_limit_only() {
        let data = b"{\"a\": 1}".repeat(10);
        assert_eq!(
            decode(gzip(&data), Encoding::Gzip, 1000).ok(),
            Some(data.clone())
        );
        let bomb = gzip(&vec![b' '; 10 * 1024 * 1024]);
        assert!(bomb.len() < 20_000, "a real bomb: {} bytes", bomb.len());
        assert!(matches!(
            decode(bomb, Encoding::Gzip, 1024 * 1024),
            Err(RequestError::BodyTooLarge { .. })
        ));
        assert!(matches!(
            decode(b"not gzip".to_vec(), Encoding::Gzip, 1000),
            Err(RequestError::BadGzip(_))
        ));
    }

    #[test]
    fn serde_errors_map_to_byte_offsets() {
        let text = b"{\"a\": 1,\n \"b\": tru}";
        let error = serde_json::from_slice::<serde_json::Value>(text).expect_err("bad json");
        let offset = error_offset(text, &error);
        assert!((15..=18).contains(&offset), "{offset}: {error}");
        let error = serde_json::from_slice::<serde_json::Value>(b"{x").expect_err("bad");
        assert_eq!(error_offset(b"{x", &error), 1);
    }
}
