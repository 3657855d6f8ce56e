//! NATS stream and subject names, the category → subject token rule, and
//! client ids.
//!
//! # Subjects
//!
//! | what | subject | wildcard |
//! |---|---|---|
//! | accepted events | `eye.events.<client>.<category-token>` | [`EVENTS_SUBJECTS`] (stream [`EVENTS_STREAM`]) |
//! | one client's events | — | `eye.events.<client>.>` ([`client_events_subjects`], for publish permissions) |
//! | rejects | `eye.rejects.<client>` | [`REJECTS_SUBJECTS`] |
//! | dead letters | `eye.deadletter.<client>.<category-token>` | [`DEADLETTER_SUBJECTS`] |
//!
//! # The category token rule
//!
//! Categories are free text ("page interaction"), but a NATS subject token
//! may not contain `.`, `*`, `>` or whitespace. The token is the category's
//! UTF-8 bytes with every byte in `[A-Za-z0-9-]` kept as is and every other
//! byte — including `_` itself, space, `.`, `*`, `>` and each byte of a
//! non-ASCII character — written as `_` followed by two UPPERCASE hex digits:
//!
//! - `party` → `party`
//! - `page interaction` → `page_20interaction`
//! - `a_b` → `a_5Fb`, `a.b` → `a_2Eb`, `é` → `_C3_A9`
//!
//! Because `_` is always an escape and never a literal, decoding is
//! unambiguous, so the rule is injective (two categories never share a
//! token). [`token_to_category`] accepts only the canonical spelling (upper
//! case hex, no escaped byte that would have been kept), which makes the
//! mapping a bijection between categories and valid tokens.
//!
//! # Client ids
//!
//! 1–64 characters of `[A-Za-z0-9_-]`. Client ids are not encoded: they are
//! chosen by operators, and this alphabet is already a safe subject token
//! (`_` is allowed here because nothing needs to be decoded).

/// The JetStream stream that holds every accepted event.
pub const EVENTS_STREAM: &str = "EYE_EVENTS";
/// The prefix of every event subject (without the trailing dot).
pub const EVENTS_SUBJECT_PREFIX: &str = "eye.events";
/// The wildcard the events stream captures.
pub const EVENTS_SUBJECTS: &str = "eye.events.>";
/// The prefix of every reject subject (without the trailing dot).
pub const REJECTS_SUBJECT_PREFIX: &str = "eye.rejects";
/// The wildcard matching every client's reject subject.
pub const REJECTS_SUBJECTS: &str = "eye.rejects.*";
/// The prefix of every dead-letter subject (without the trailing dot).
pub const DEADLETTER_SUBJECT_PREFIX: &str = "eye.deadletter";
/// The wildcard matching every dead-letter subject.
pub const DEADLETTER_SUBJECTS: &str = "eye.deadletter.>";

/// The longest accepted client id, in characters (all ASCII, so also bytes).
pub const MAX_CLIENT_ID_LEN: usize = 64;

/// Why a string is not a valid client id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientIdError {
    /// The id is empty.
    #[error("client id is empty")]
    Empty,
    /// The id is longer than [`MAX_CLIENT_ID_LEN`].
    #[error("client id is {0} bytes long; at most 64 are allowed")]
    TooLong(usize),
    /// The id contains a character outside `[A-Za-z0-9_-]`.
    #[error("client id contains {0:?}; only A-Z, a-z, 0-9, '_' and '-' are allowed")]
    InvalidChar(char),
}

/// Checks that `client` is 1–64 characters of `[A-Za-z0-9_-]`.
pub fn validate_client_id(client: &str) -> Result<(), ClientIdError> {
    if client.is_empty() {
        return Err(ClientIdError::Empty);
    }
    if let Some(c) = client
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(ClientIdError::InvalidChar(c));
    }
    if client.len() > MAX_CLIENT_ID_LEN {
        return Err(ClientIdError::TooLong(client.len()));
    }
    Ok(())
}

fn is_kept(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// The subject token of a category (see the module documentation for the rule).
pub fn category_to_token(category: &str) -> String {
    let mut token = String::with_capacity(category.len());
    for &b in category.as_bytes() {
        if is_kept(b) {
            token.push(char::from(b));
        } else {
            token.push('_');
            token.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
            token.push(char::from(HEX_UPPER[usize::from(b & 0x0F)]));
        }
    }
    token
}

fn upper_hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The category a token encodes, or `None` if `token` is not the canonical
/// encoding of any non-empty category.
pub fn token_to_category(token: &str) -> Option<String> {
    if token.is_empty() {
        return None;
    }
    let t = token.as_bytes();
    let mut bytes = Vec::with_capacity(t.len());
    let mut i = 0;
    while i < t.len() {
        let b = t[i];
        if is_kept(b) {
            bytes.push(b);
            i += 1;
        } else if b == b'_' {
            let hi = upper_hex_value(*t.get(i + 1)?)?;
            let lo = upper_hex_value(*t.get(i + 2)?)?;
            let decoded = hi << 4 | lo;
            // An escaped byte that the encoder would have kept is not canonical.
            if is_kept(decoded) {
                return None;
            }
            bytes.push(decoded);
            i += 3;
        } else {
            return None;
        }
    }
    String::from_utf8(bytes).ok()
}

/// `eye.events.<client>.<category-token>`: where an event of `client` in
/// `category` is published. `client` must already be valid
/// ([`validate_client_id`]); it is not checked here.
pub fn events_subject(client: &str, category: &str) -> String {
    format!(
        "{EVENTS_SUBJECT_PREFIX}.{client}.{}",
        category_to_token(category)
    )
}

/// `eye.events.<client>.>`: every subject `client` may publish events on;
/// the NATS publish permission of a direct publisher.
pub fn client_events_subjects(client: &str) -> String {
    format!("{EVENTS_SUBJECT_PREFIX}.{client}.>")
}

/// Splits `prefix.<client>.<token>` into a valid client id and decoded category.
fn parse_client_category(subject: &str, prefix: &str) -> Option<(String, String)> {
    let rest = subject.strip_prefix(prefix)?.strip_prefix('.')?;
    let (client, token) = rest.split_once('.')?;
    validate_client_id(client).ok()?;
    let category = token_to_category(token)?;
    Some((client.to_owned(), category))
}

/// The `(client, category)` of an events subject, or `None` if `subject` is
/// not exactly `eye.events.<valid client>.<canonical token>`.
pub fn parse_events_subject(subject: &str) -> Option<(String, String)> {
    parse_client_category(subject, EVENTS_SUBJECT_PREFIX)
}

/// `eye.rejects.<client>`: where rejects of `client` are published.
pub fn rejects_subject(client: &str) -> String {
    format!("{REJECTS_SUBJECT_PREFIX}.{client}")
}

/// The client of a rejects subject, or `None` if it is not `eye.rejects.<valid client>`.
pub fn parse_rejects_subject(subject: &str) -> Option<String> {
    let client = subject
        .strip_prefix(REJECTS_SUBJECT_PREFIX)?
        .strip_prefix('.')?;
    validate_client_id(client).ok()?;
    Some(client.to_owned())
}

/// `eye.deadletter.<client>.<category-token>`: where a message that keeps
/// failing is parked, with its reason in a header.
pub fn deadletter_subject(client: &str, category: &str) -> String {
    format!(
        "{DEADLETTER_SUBJECT_PREFIX}.{client}.{}",
        category_to_token(category)
    )
}

/// The dead-letter subject for a message that arrived on `events_subject`,
/// keeping its client and token as they are (even if the token does not
/// decode, so a malformed message can still be parked); `None` if the subject
/// is not under `eye.events.`.
pub fn deadletter_subject_for(events_subject: &str) -> Option<String> {
    let rest = events_subject
        .strip_prefix(EVENTS_SUBJECT_PREFIX)?
        .strip_prefix('.')?;
    Some(format!("{DEADLETTER_SUBJECT_PREFIX}.{rest}"))
}

/// The `(client, category)` of a dead-letter subject, like [`parse_events_subject`].
pub fn parse_deadletter_subject(subject: &str) -> Option<(String, String)> {
    parse_client_category(subject, DEADLETTER_SUBJECT_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_safe_bytes_and_escape_the_rest() {
        assert_eq!(category_to_token("party"), "party");
        assert_eq!(category_to_token("page interaction"), "page_20interaction");
        assert_eq!(category_to_token("Form-2"), "Form-2");
        assert_eq!(category_to_token("a_b"), "a_5Fb");
        assert_eq!(category_to_token("a.b"), "a_2Eb");
        assert_eq!(category_to_token("*>"), "_2A_3E");
        assert_eq!(category_to_token("é"), "_C3_A9");
        assert_eq!(category_to_token("\t"), "_09");
    }

    #[test]
    fn tokens_are_safe_nats_subject_tokens() {
        for c in ["a b", "a.b", "a*b", "a>b", "日本", "tab\there", "x_y"] {
            let t = category_to_token(c);
            assert!(
                t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{c:?} -> {t:?}"
            );
        }
    }

    #[test]
    fn tokens_round_trip_and_are_injective() {
        let categories = [
            "a b",
            "a_20b",
            "a.b",
            "a_2Eb",
            "a_b",
            "a-b",
            "ab",
            "party",
            "page interaction",
            "form interaction",
            "é",
            "日本語",
            "_",
            "__",
            "*",
            ">",
            " ",
        ];
        let mut seen = std::collections::HashSet::new();
        for c in categories {
            let t = category_to_token(c);
            assert_eq!(token_to_category(&t).as_deref(), Some(c), "{c:?} -> {t:?}");
            assert!(seen.insert(t.clone()), "token {t:?} is shared");
        }
        assert_ne!(category_to_token("a b"), category_to_token("a_20b"));
        assert_ne!(category_to_token("a b"), category_to_token("a.b"));
        assert_ne!(category_to_token("a_20b"), category_to_token("a.b"));
    }

    #[test]
    fn only_canonical_tokens_decode() {
        assert_eq!(token_to_category(""), None);
        assert_eq!(token_to_category("a_2eb"), None, "lower-case hex");
        assert_eq!(token_to_category("a_41"), None, "escaped byte that is kept");
        assert_eq!(token_to_category("a_2"), None, "truncated escape");
        assert_eq!(token_to_category("a_"), None);
        assert_eq!(token_to_category("a.b"), None);
        assert_eq!(token_to_category("a b"), None);
        assert_eq!(token_to_category("_C3"), None, "invalid UTF-8");
        assert_eq!(token_to_category("_C3_A9").as_deref(), Some("é"));
    }

    #[test]
    fn client_ids() {
        assert_eq!(validate_client_id("demo"), Ok(()));
        assert_eq!(validate_client_id("web_app-2"), Ok(()));
        assert_eq!(validate_client_id(&"x".repeat(64)), Ok(()));
        assert_eq!(
            validate_client_id(&"x".repeat(65)),
            Err(ClientIdError::TooLong(65))
        );
        assert_eq!(validate_client_id(""), Err(ClientIdError::Empty));
        assert_eq!(
            validate_client_id("a.b"),
            Err(ClientIdError::InvalidChar('.'))
        );
        assert_eq!(
            validate_client_id("a b"),
            Err(ClientIdError::InvalidChar(' '))
        );
        assert_eq!(
            validate_client_id("a*"),
            Err(ClientIdError::InvalidChar('*'))
        );
        assert_eq!(
            validate_client_id("é"),
            Err(ClientIdError::InvalidChar('é'))
        );
    }

    #[test]
    fn events_subjects() {
        assert_eq!(
            events_subject("demo", "page interaction"),
            "eye.events.demo.page_20interaction"
        );
        assert_eq!(client_events_subjects("demo"), "eye.events.demo.>");
        assert_eq!(
            parse_events_subject("eye.events.demo.page_20interaction"),
            Some(("demo".to_owned(), "page interaction".to_owned()))
        );
        let s = events_subject("web_1", "a.b c");
        assert_eq!(
            parse_events_subject(&s),
            Some(("web_1".to_owned(), "a.b c".to_owned()))
        );
        for bad in [
            "eye.events.demo",
            "eye.events.demo.",
            "eye.events..party",
            "eye.events.demo.party.extra",
            "eye.events.de*mo.party",
            "eye.eventsX.demo.party",
            "eye.rejects.demo",
            "eye.events.demo.page interaction",
        ] {
            assert_eq!(parse_events_subject(bad), None, "{bad}");
        }
    }

    #[test]
    fn reject_and_deadletter_subjects() {
        assert_eq!(rejects_subject("demo"), "eye.rejects.demo");
        assert_eq!(
            parse_rejects_subject("eye.rejects.demo").as_deref(),
            Some("demo")
        );
        assert_eq!(parse_rejects_subject("eye.rejects.demo.x"), None);
        assert_eq!(
            deadletter_subject("demo", "form interaction"),
            "eye.deadletter.demo.form_20interaction"
        );
        assert_eq!(
            parse_deadletter_subject("eye.deadletter.demo.form_20interaction"),
            Some(("demo".to_owned(), "form interaction".to_owned()))
        );
        assert_eq!(
            deadletter_subject_for("eye.events.demo.not_valid").as_deref(),
            Some("eye.deadletter.demo.not_valid")
        );
        assert_eq!(deadletter_subject_for("eye.rejects.demo"), None);
    }
}
