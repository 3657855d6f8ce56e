//! [`Validator`]: raw bytes or JSON in, [`Event`] or one [`EventError`] out.
//!
//! Rules are checked in this order and the first failure is the answer:
//!
//! 1. size: at most `max_event_bytes` (`event_too_large`), before any parsing;
//! 2. nesting: at most `max_depth` levels of objects/arrays (`too_deep`) —
//!    a byte scan before the parse, so hostile input never reaches a
//!    recursive parser (a malformed *and* too deep document is `too_deep`);
//! 3. one JSON document (`invalid_json`, with line and column);
//! 4. a JSON object (`invalid_type` at `""`);
//! 5. no unknown top-level field (`unknown_field` at the field);
//! 6. every required field present: `session_id`, `category`, `name`,
//!    `data`, `timestamp` (`missing_field` at where it belongs);
//! 7. JSON types: strings, and `data` an object (`invalid_type`);
//!    `event_id` a string or `null` (`null` means absent);
//! 8. `session_id` a hyphenated UUID, any version, any case
//!    (`invalid_session_id`); the 32-digit form without hyphens, braces and
//!    `urn:uuid:` are refused so a session has one spelling on the wire;
//! 9. `category` known to the registry (`unknown_category`);
//! 10. `name` non-empty, not only whitespace, at most 256 characters (`invalid_name`);
//! 11. `timestamp` parses (`invalid_timestamp`) and obeys [`TimeRules`];
//! 12. `event_id`, if given, 1–64 characters of `[A-Za-z0-9._:-]` (`invalid_event_id`);
//! 13. the category's JSON Schema accepts the whole event (`schema_violation`).
//!
//! [`Validator::validate_value`] takes already-parsed JSON (e.g. one item of
//! a batch array): it checks nesting first, then size as the length of the
//! compact serialization, then rules 4–13.

use std::sync::Arc;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::{field_pointer, ErrorCode, EventError};
use crate::event::{
    Event, FIELDS, FIELD_CATEGORY, FIELD_DATA, FIELD_EVENT_ID, FIELD_NAME, FIELD_SESSION_ID,
    FIELD_TIMESTAMP, REQUIRED_FIELDS,
};
use crate::event_id::derive_event_id;
use crate::schema::SchemaRegistry;
use crate::time_rules::TimeRules;
use crate::timestamp::Timestamp;

/// Default largest event, in bytes of JSON: 32 KiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 32 * 1024;
/// Default deepest nesting of objects/arrays; the event object itself is level 1.
pub const DEFAULT_MAX_DEPTH: usize = 32;
/// The longest `name`, in characters.
pub const MAX_NAME_CHARS: usize = 256;
/// The longest client-given `event_id`, in characters.
pub const MAX_EVENT_ID_CHARS: usize = 64;

/// Size limits applied to every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest event in bytes. Default: 32 KiB ([`DEFAULT_MAX_EVENT_BYTES`]).
    pub max_event_bytes: usize,
    /// The deepest nesting of objects and arrays, counting the event object
    /// as 1. Default: 32 ([`DEFAULT_MAX_DEPTH`]).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// Validates and normalizes events; cheap to clone and share between threads.
#[derive(Debug, Clone)]
pub struct Validator {
    registry: Arc<SchemaRegistry>,
    time_rules: TimeRules,
    limits: Limits,
}

impl Validator {
    /// A validator over `registry` with default time rules and limits.
    pub fn new(registry: Arc<SchemaRegistry>) -> Validator {
        Validator {
            registry,
            time_rules: TimeRules::default(),
            limits: Limits::default(),
        }
    }

    /// Replaces the time rules.
    pub fn with_time_rules(mut self, time_rules: TimeRules) -> Validator {
        self.time_rules = time_rules;
        self
    }

    /// Replaces the size limits.
    pub fn with_limits(mut self, limits: Limits) -> Validator {
        self.limits = limits;
        self
    }

    /// The schema registry.
    pub fn registry(&self) -> &Arc<SchemaRegistry> {
        &self.registry
    }

    /// The time rules in force.
    pub fn time_rules(&self) -> &TimeRules {
        &self.time_rules
    }

    /// The size limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Validates one event given as raw JSON bytes, sent by `client` (an
    /// already authenticated client id), at server time `now`.
    pub fn validate_slice(
        &self,
        client: &str,
        bytes: &[u8],
        now: Timestamp,
    ) -> Result<Event, EventError> {
        if bytes.len() > self.limits.max_event_bytes {
            return Err(too_large(bytes.len(), self.limits.max_event_bytes));
        }
        scan_depth(bytes, self.limits.max_depth)?;
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            EventError::new(ErrorCode::InvalidJson, format!("invalid JSON: {e}"), "")
        })?;
        self.check(client, value, now)
    }

    /// Validates one event given as parsed JSON, sent by `client` at server
    /// time `now`. Its size is the length of its compact serialization.
    pub fn validate_value(
        &self,
        client: &str,
        value: Value,
        now: Timestamp,
    ) -> Result<Event, EventError> {
        if let Err(e) = check_value_depth(&value, self.limits.max_depth) {
            drop_iteratively(value);
            return Err(e);
        }
        let size = serialized_len(&value, self.limits.max_event_bytes);
        if size > self.limits.max_event_bytes {
            return Err(too_large(size, self.limits.max_event_bytes));
        }
        self.check(client, value, now)
    }

    /// Rules 4–13 of the module documentation.
    fn check(&self, client: &str, value: Value, now: Timestamp) -> Result<Event, EventError> {
        let Value::Object(obj) = &value else {
            return Err(EventError::new(
                ErrorCode::InvalidType,
                format!("an event must be a JSON object, got {}", type_name(&value)),
                "",
            ));
        };
        if let Some(key) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(EventError::new(
                ErrorCode::UnknownField,
                format!(
                    "unknown field {}; an event has only {}",
                    quote_short(key),
                    FIELDS.join(", ")
                ),
                field_pointer(key),
            ));
        }
        if let Some(missing) = REQUIRED_FIELDS.iter().find(|f| !obj.contains_key(**f)) {
            return Err(EventError::new(
                ErrorCode::MissingField,
                format!("missing required field \"{missing}\""),
                field_pointer(missing),
            ));
        }
        let session_id = string_field(obj, FIELD_SESSION_ID)?;
        let category = string_field(obj, FIELD_CATEGORY)?;
        let name = string_field(obj, FIELD_NAME)?;
        if !matches!(obj.get(FIELD_DATA), Some(Value::Object(_))) {
            let got = obj.get(FIELD_DATA).map_or("nothing", type_name);
            return Err(EventError::new(
                ErrorCode::InvalidType,
                format!("field \"data\" must be a JSON object, got {got}"),
                "/data",
            ));
        }
        let timestamp = string_field(obj, FIELD_TIMESTAMP)?;
        let event_id = match obj.get(FIELD_EVENT_ID) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(other) => {
                return Err(EventError::new(
                    ErrorCode::InvalidType,
                    format!(
                        "field \"event_id\" must be a string, got {}",
                        type_name(other)
                    ),
                    "/event_id",
                ))
            }
        };

        let session_id = parse_session_id(session_id)?;
        if !self.registry.contains(category) {
            return Err(self.registry.unknown_category(category));
        }
        check_name(name)?;
        let timestamp = Timestamp::parse(timestamp)?;
        self.time_rules.check(timestamp, now)?;
        if let Some(id) = event_id {
            check_event_id(id)?;
        }
        self.registry.validate(category, &value)?;

        // Every field is now known to have the right type; move them out
        // instead of copying (`data` may be most of the event).
        let Value::Object(mut obj) = value else {
            return Err(internal_error());
        };
        let category = take_string(&mut obj, FIELD_CATEGORY);
        let name = take_string(&mut obj, FIELD_NAME);
        let data = match obj.remove(FIELD_DATA) {
            Some(Value::Object(data)) => data,
            _ => return Err(internal_error()),
        };
        let event_id = match obj.remove(FIELD_EVENT_ID) {
            Some(Value::String(id)) => id,
            _ => derive_event_id(client, &session_id, &category, &name, &data, timestamp),
        };
        Ok(Event {
            event_id,
            session_id,
            category,
            name,
            data,
            timestamp,
        })
    }
}

/// Never expected: the checks above guarantee the shape. An error rather than
/// a panic keeps one bad event from taking a worker down if that ever changes.
fn internal_error() -> EventError {
    EventError::new(
        ErrorCode::InvalidType,
        "internal error: event changed shape during validation",
        "",
    )
}

fn too_large(size: usize, max: usize) -> EventError {
    EventError::new(
        ErrorCode::EventTooLarge,
        format!("event is {size} bytes; at most {max} bytes are allowed"),
        "",
    )
}

fn too_deep(max: usize, at: &str) -> EventError {
    EventError::new(
        ErrorCode::TooDeep,
        format!("event nests objects/arrays deeper than {max} levels{at}"),
        "",
    )
}

/// Rejects JSON text nesting deeper than `max`, by counting brackets outside
/// strings. Linear, no allocation, no recursion.
fn scan_depth(bytes: &[u8], max: usize) -> Result<(), EventError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    let (line, column) = line_column(bytes, i);
                    return Err(too_deep(max, &format!(" at line {line} column {column}")));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// 1-based line and column (in bytes) of `offset`, as serde_json reports them.
fn line_column(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let column = 1 + before.iter().rev().take_while(|&&b| b != b'\n').count();
    (line, column)
}

/// Rejects a parsed value nesting deeper than `max`, without recursion.
fn check_value_depth(value: &Value, max: usize) -> Result<(), EventError> {
    let mut stack: Vec<(&Value, usize)> = vec![(value, 1)];
    while let Some((v, depth)) = stack.pop() {
        let is_container = matches!(v, Value::Array(_) | Value::Object(_));
        if is_container && depth > max {
            return Err(too_deep(max, ""));
        }
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|c| (c, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|c| (c, depth + 1))),
            _ => {}
        }
    }
    Ok(())
}

/// Drops a value without recursion: serde_json's own drop recurses once per
/// level, which a hostile, very deep value could turn into a stack overflow.
fn drop_iteratively(value: Value) {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

/// The compact JSON length of `value`, stopping early once it exceeds `max`.
fn serialized_len(value: &Value, max: usize) -> usize {
    struct Counter {
        len: usize,
        max: usize,
    }
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.len = self.len.saturating_add(buf.len());
            if self.len > self.max {
                // Stop serializing: the answer (too large) is already known.
                return Err(std::io::Error::other("limit exceeded"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter { len: 0, max };
    // The only possible error is the counter's own early stop.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.len
}

/// "a string", "an array", … for messages.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Quotes `s` for a message, or describes it if it is too long to echo.
fn quote_short(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        format!("(a {}-character string)", s.chars().count())
    }
}

fn string_field<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, EventError> {
    match obj.get(field) {
        Some(Value::String(s)) => Ok(s),
        other => Err(EventError::new(
            ErrorCode::InvalidType,
            format!(
                "field \"{field}\" must be a string, got {}",
                other.map_or("nothing", type_name)
            ),
            field_pointer(field),
        )),
    }
}

fn take_string(obj: &mut Map<String, Value>, field: &str) -> String {
    match obj.remove(field) {
        Some(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// A UUID of any version in the hyphenated 8-4-4-4-12 form, any case.
fn parse_session_id(s: &str) -> Result<Uuid, EventError> {
    let b = s.as_bytes();
    let hyphenated = b.len() == 36 && [8, 13, 18, 23].iter().all(|&i| b.get(i) == Some(&b'-'));
    let parsed = if hyphenated {
        Uuid::try_parse(s).ok()
    } else {
        None
    };
    parsed.ok_or_else(|| {
        EventError::new(
            ErrorCode::InvalidSessionId,
            format!(
                "session_id must be a UUID in the hyphenated form \
                 xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, got {}",
                quote_short(s)
            ),
            "/session_id",
        )
    })
}

fn check_name(name: &str) -> Result<(), EventError> {
    let invalid = |message: String| EventError::new(ErrorCode::InvalidName, message, "/name");
    if name.trim().is_empty() {
        return Err(invalid(
            "name must not be empty or only whitespace".to_owned(),
        ));
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(invalid(format!(
            "name is {chars} characters long; at most {MAX_NAME_CHARS} are allowed"
        )));
    }
    Ok(())
}

fn is_event_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

fn check_event_id(id: &str) -> Result<(), EventError> {
    let invalid =
        |message: String| EventError::new(ErrorCode::InvalidEventId, message, "/event_id");
    if id.is_empty() {
        return Err(invalid("event_id must not be empty".to_owned()));
    }
    if let Some(c) = id.chars().find(|c| !is_event_id_char(*c)) {
        return Err(invalid(format!(
            "event_id contains {c:?}; only A-Z, a-z, 0-9, '.', '_', ':' and '-' are allowed"
        )));
    }
    if id.len() > MAX_EVENT_ID_CHARS {
        return Err(invalid(format!(
            "event_id is {} characters long; at most {MAX_EVENT_ID_CHARS} are allowed",
            id.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
