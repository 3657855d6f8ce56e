//! Request parameters: from the query string or a JSON body to typed values.
//!
//! The rule of this module: nothing reaches SQL as text the client wrote.
//! Every parameter is parsed into its type (a UUID, a [`Timestamp`], an
//! [`ErrorCode`], a bounded string of a checked alphabet, a number in range)
//! and is then bound by the `clickhouse` crate, which escapes it. Unknown and
//! repeated parameters are errors that name the parameter, never ignored.

use eye_contract::schema::MAX_CATEGORY_LEN;
use eye_contract::validator::MAX_NAME_CHARS;
use eye_contract::{ErrorCode, Timestamp};
use serde_json::Value;
use uuid::Uuid;

use crate::error::ApiError;

/// Longest cursor accepted (ours are far shorter).
const MAX_CURSOR_LEN: usize = 1024;

/// How many rows a request may ask for, and how many it gets by default.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Rows when `limit` is absent.
    pub default: u64,
    /// Largest `limit`.
    pub max: u64,
}

/// Parameters as sent, before their names are checked.
#[derive(Debug, Default)]
pub struct RawParams(Vec<(String, String)>);

impl RawParams {
    /// The parameters of a query string (`None`: no query string).
    pub fn from_query(query: Option<&str>) -> RawParams {
        RawParams(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The members of a JSON object body. Strings are taken as they are,
    /// numbers as their text (for `limit`), `null` as absent.
    pub fn from_json(body: &[u8]) -> Result<RawParams, ApiError> {
        let members: serde_json::Map<String, Value> =
            serde_json::from_slice(body).map_err(|e| ApiError::BadBody(e.to_string()))?;
        let mut pairs = Vec::with_capacity(members.len());
        for (name, value) in members {
            match value {
                Value::Null => {}
                Value::String(s) => pairs.push((name, s)),
                Value::Number(n) => pairs.push((name, n.to_string())),
                _ => {
                    return Err(ApiError::param(
                        &name,
                        "must be a string (or a number for limit)",
                    ))
                }
            }
        }
        Ok(RawParams(pairs))
    }

    /// The first parameter, if any.
    pub fn into_first(self) -> Option<(String, String)> {
        self.0.into_iter().next()
    }

    /// Adds a parameter taken from the path (e.g. the session of
    /// `/v1/sessions/{session_id}/events`); the query may not repeat it.
    pub fn with_path(mut self, name: &str, value: String) -> Result<RawParams, ApiError> {
        if self.0.iter().any(|(n, _)| n == name) {
            return Err(ApiError::param(
                name,
                "is given by the path; do not repeat it",
            ));
        }
        self.0.push((name.to_owned(), value));
        Ok(self)
    }

    /// Checks that every name is in `allowed` and appears once.
    pub fn check(self, allowed: &[&str]) -> Result<Params, ApiError> {
        for (i, (name, _)) in self.0.iter().enumerate() {
            if !allowed.contains(&name.as_str()) {
                return Err(ApiError::param(
                    name,
                    format!("unknown parameter; accepted: {}", allowed.join(", ")),
                ));
            }
            if self.0[..i].iter().any(|(n, _)| n == name) {
                return Err(ApiError::param(name, "given more than once"));
            }
        }
        Ok(Params(self.0))
    }
}

/// Checked parameter names, read one by one into types.
#[derive(Debug)]
pub struct Params(Vec<(String, String)>);

impl Params {
    fn take(&mut self, name: &str) -> Option<String> {
        let i = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.swap_remove(i).1)
    }

    /// A session id: a UUID, answered lowercase hyphenated.
    pub fn session_id(&mut self, name: &str) -> Result<Option<Uuid>, ApiError> {
        self.take(name)
            .map(|v| {
                Uuid::try_parse(&v).map_err(|_| {
                    ApiError::param(
                        name,
                        "must be a UUID such as e2085be5-9137-4e4e-80b5-f1ffddc25423",
                    )
                })
            })
            .transpose()
    }

    /// A non-empty string of at most `max_chars` characters without control characters.
    pub fn text(&mut self, name: &str, max_chars: usize) -> Result<Option<String>, ApiError> {
        self.take(name)
            .map(|v| {
                if v.is_empty() {
                    Err(ApiError::param(name, "must not be empty"))
                } else if v.chars().count() > max_chars {
                    Err(ApiError::param(
                        name,
                        format!("must be at most {max_chars} characters"),
                    ))
                } else if v.chars().any(char::is_control) {
                    Err(ApiError::param(name, "must not contain control characters"))
                } else {
                    Ok(v)
                }
            })
            .transpose()
    }

    /// A category name.
    pub fn category(&mut self) -> Result<Option<String>, ApiError> {
        self.text("category", MAX_CATEGORY_LEN)
    }

    /// An event name.
    pub fn name(&mut self) -> Result<Option<String>, ApiError> {
        self.text("name", MAX_NAME_CHARS)
    }

    /// A client id (the registry's alphabet).
    pub fn client(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        self.take(name)
            .map(|v| {
                eye_contract::validate_client_id(&v)
                    .map(|()| v)
                    .map_err(|e| ApiError::param(name, e.to_string()))
            })
            .transpose()
    }

    /// An error code of the contract.
    pub fn code(&mut self, name: &str) -> Result<Option<ErrorCode>, ApiError> {
        self.take(name)
            .map(|v| {
                ErrorCode::ALL
                    .into_iter()
                    .find(|c| c.as_str() == v)
                    .ok_or_else(|| {
                        let known: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
                        ApiError::param(name, format!("unknown code; codes: {}", known.join(", ")))
                    })
            })
            .transpose()
    }

    /// An instant in the event timestamp formats or RFC 3339.
    pub fn time(&mut self, name: &str) -> Result<Option<Timestamp>, ApiError> {
        self.take(name)
            .map(|v| Timestamp::parse(&v).map_err(|e| ApiError::param(name, e.to_string())))
            .transpose()
    }

    /// A time range `[from, to)`; `from` must be before `to` when both are given.
    pub fn range(&mut self) -> Result<Range, ApiError> {
        let range = Range {
            from: self.time("from")?,
            to: self.time("to")?,
        };
        if let (Some(from), Some(to)) = (range.from, range.to) {
            if from >= to {
                return Err(ApiError::param(
                    "from",
                    "must be before to (the range is [from, to))",
                ));
            }
        }
        Ok(range)
    }

    /// `order`: `oldest` (the default) or `newest` first.
    pub fn newest_first(&mut self) -> Result<bool, ApiError> {
        match self.take("order").as_deref() {
            None | Some("oldest") => Ok(false),
            Some("newest") => Ok(true),
            Some(_) => Err(ApiError::param("order", "must be oldest or newest")),
        }
    }

    /// A time range with both ends, at most [`MAX_STATS_HOURS`] long (so an
    /// answer has at most that many hours).
    pub fn hourly_range(&mut self) -> Result<Range, ApiError> {
        let range = self.range()?;
        let (Some(from), Some(to)) = (range.from, range.to) else {
            let missing = if range.from.is_none() { "from" } else { "to" };
            return Err(ApiError::param(
                missing,
                "is required: counts cover a bounded range",
            ));
        };
        if to.as_micros().saturating_sub(from.as_micros()) > MAX_STATS_HOURS * 3_600_000_000 {
            return Err(ApiError::param(
                "to",
                format!("the range may span at most {MAX_STATS_HOURS} hours (92 days)"),
            ));
        }
        Ok(range)
    }

    /// The page size.
    pub fn limit(&mut self, limits: Limits) -> Result<u64, ApiError> {
        let Some(v) = self.take("limit") else {
            return Ok(limits.default);
        };
        match v.parse::<u64>() {
            Ok(n) if (1..=limits.max).contains(&n) => Ok(n),
            _ => Err(ApiError::param(
                "limit",
                format!("must be a whole number from 1 to {}", limits.max),
            )),
        }
    }

    /// The opaque cursor, still encoded (see `cursor.rs`).
    pub fn cursor(&mut self) -> Result<Option<String>, ApiError> {
        self.take("cursor")
            .map(|v| {
                if v.is_empty() || v.len() > MAX_CURSOR_LEN {
                    Err(ApiError::param(
                        "cursor",
                        "is not a cursor given by this API",
                    ))
                } else {
                    Ok(v)
                }
            })
            .transpose()
    }
}

/// A time range `[from, to)`; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    /// Inclusive start.
    pub from: Option<Timestamp>,
    /// Exclusive end.
    pub to: Option<Timestamp>,
}

/// The filters of `GET /v1/events` (and of a session's events, and of a search).
#[derive(Debug, Clone, Default)]
pub struct EventFilters {
    /// One session.
    pub session_id: Option<Uuid>,
    /// One category.
    pub category: Option<String>,
    /// One event name.
    pub name: Option<String>,
    /// Time of occurrence.
    pub range: Range,
}

/// The filters of `GET /v1/sessions`.
#[derive(Debug, Clone, Default)]
pub struct SessionFilters {
    /// Sessions with at least one event of this category in the range.
    pub category: Option<String>,
    /// Time of occurrence of the events counted.
    pub range: Range,
    /// `order=newest`: pages from the latest first event back (default: oldest first).
    pub newest_first: bool,
}

/// The filters of `GET /v1/errors`.
#[derive(Debug, Clone, Default)]
pub struct ErrorFilters {
    /// One code.
    pub code: Option<ErrorCode>,
    /// One client.
    pub client: Option<String>,
    /// Time of reception.
    pub range: Range,
}

/// A page request: how many rows, from where.
#[derive(Debug, Clone)]
pub struct Page {
    /// Rows at most.
    pub limit: u64,
    /// Where the previous page ended.
    pub cursor: Option<String>,
}

/// Parameters of the events routes.
pub const EVENT_PARAMS: &[&str] = &[
    "session_id",
    "category",
    "name",
    "from",
    "to",
    "limit",
    "cursor",
];
/// Parameters of `GET /v1/sessions`.
pub const SESSION_PARAMS: &[&str] = &["category", "from", "to", "order", "limit", "cursor"];
/// Parameters of `GET /v1/errors`.
pub const ERROR_PARAMS: &[&str] = &["code", "client", "from", "to", "limit", "cursor"];
/// Parameters of `GET /v1/stats/events_per_hour`.
pub const EVENT_STATS_PARAMS: &[&str] = &["category", "name", "from", "to"];
/// Parameters of `GET /v1/stats/errors_per_hour`.
pub const ERROR_STATS_PARAMS: &[&str] = &["code", "client", "from", "to"];
/// Longest range of an hourly count: 92 days (2,208 hours, a quarter).
pub const MAX_STATS_HOURS: i64 = 92 * 24;

/// Reads the events filters and page.
pub fn events(raw: RawParams, limits: Limits) -> Result<(EventFilters, Page), ApiError> {
    let mut p = raw.check(EVENT_PARAMS)?;
    let filters = EventFilters {
        session_id: p.session_id("session_id")?,
        category: p.category()?,
        name: p.name()?,
        range: p.range()?,
    };
    Ok((filters, page(&mut p, limits)?))
}

/// Reads the sessions filters and page.
pub fn sessions(raw: RawParams, limits: Limits) -> Result<(SessionFilters, Page), ApiError> {
    let mut p = raw.check(SESSION_PARAMS)?;
    let filters = SessionFilters {
        category: p.category()?,
        range: p.range()?,
        newest_first: p.newest_first()?,
    };
    Ok((filters, page(&mut p, limits)?))
}

/// Reads the errors filters and page.
pub fn errors(raw: RawParams, limits: Limits) -> Result<(ErrorFilters, Page), ApiError> {
    let mut p = raw.check(ERROR_PARAMS)?;
    let filters = ErrorFilters {
        code: p.code("code")?,
        client: p.client("client")?,
        range: p.range()?,
    };
    Ok((filters, page(&mut p, limits)?))
}

/// Reads the filters of `GET /v1/stats/events_per_hour` (a bounded range is required).
pub fn event_stats(raw: RawParams) -> Result<EventFilters, ApiError> {
    let mut p = raw.check(EVENT_STATS_PARAMS)?;
    Ok(EventFilters {
        session_id: None,
        category: p.category()?,
        name: p.name()?,
        range: p.hourly_range()?,
    })
}

/// Reads the filters of `GET /v1/stats/errors_per_hour` (a bounded range is required).
pub fn error_stats(raw: RawParams) -> Result<ErrorFilters, ApiError> {
    let mut p = raw.check(ERROR_STATS_PARAMS)?;
    Ok(ErrorFilters {
        code: p.code("code")?,
        client: p.client("client")?,
        range: p.hourly_range()?,
    })
}

fn page(p: &mut Params, limits: Limits) -> Result<Page, ApiError> {
    Ok(Page {
        limit: p.limit(limits)?,
        cursor: p.cursor()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        default: 100,
        max: 10_000,
    };

    fn parameter_of(query: &str) -> String {
        match events(RawParams::from_query(Some(query)), LIMITS) {
            Err(ApiError::BadParameter { parameter, .. }) => parameter,
            other => panic!("{query}: expected a bad parameter, got {other:?}"),
        }
    }

    #[test]
    fn good_parameters_become_typed_values() {
        let (f, page) = events(
            RawParams::from_query(Some(
                "session_id=E2085BE5-9137-4E4E-80B5-F1FFDDC25423&category=page%20view&from=2021-09-26%2009:15:27.243860&to=2021-09-26T10:00:00Z&limit=10",
            )),
            LIMITS,
        )
        .expect("valid");
        assert_eq!(
            f.session_id.map(|u| u.to_string()).as_deref(),
            Some("e2085be5-9137-4e4e-80b5-f1ffddc25423")
        );
        assert_eq!(f.category.as_deref(), Some("page view"));
        assert_eq!(
            f.range.from.map(|t| t.as_micros()),
            Some(1_632_647_727_243_860)
        );
        assert_eq!(page.limit, 10);
        let (_, page) = events(RawParams::default(), LIMITS).expect("no parameters");
        assert_eq!(page.limit, 100);
    }

    #[test]
    fn bad_parameters_are_named() {
        for (query, parameter) in [
            ("session_id=nope", "session_id"),
            ("session_id=", "session_id"),
            ("category=", "category"),
            ("name=a%00b", "name"),
            ("from=yesterday", "from"),
            ("to=2021-02-30%2000:00:00", "to"),
            ("from=2021-01-02&to=2021-01-01", "from"),
            ("from=2021-01-01&to=2021-01-01", "from"),
            ("limit=0", "limit"),
            ("limit=10001", "limit"),
            ("limit=-1", "limit"),
            ("limit=ten", "limit"),
            ("cursor=", "cursor"),
            ("sort=asc", "sort"),
            ("category=a&category=b", "category"),
        ] {
            assert_eq!(parameter_of(query), parameter, "{query}");
        }
        let error = errors(RawParams::from_query(Some("code=nope")), LIMITS).expect_err("bad code");
        assert!(matches!(error, ApiError::BadParameter { parameter, .. } if parameter == "code"));
        let error = sessions(RawParams::from_query(Some("order=desc")), LIMITS).expect_err("order");
        assert!(matches!(error, ApiError::BadParameter { parameter, .. } if parameter == "order"));
        let (f, _) = sessions(RawParams::from_query(Some("order=newest")), LIMITS).expect("newest");
        assert!(f.newest_first);
        for (query, parameter) in [
            ("to=2021-01-01T00:00:00Z", "from"),
            ("from=2021-01-01T00:00:00Z", "to"),
            ("from=2021-01-01T00:00:00Z&to=2021-04-03T00:00:01Z", "to"),
            (
                "from=2021-01-01T00:00:00Z&to=2021-01-02T00:00:00Z&limit=5",
                "limit",
            ),
        ] {
            let error = event_stats(RawParams::from_query(Some(query))).expect_err(query);
            assert!(
                matches!(&error, ApiError::BadParameter { parameter: p, .. } if p == parameter),
                "{query}: {error}"
            );
        }
        // 92 days exactly is allowed.
        error_stats(RawParams::from_query(Some(
            "from=2021-01-01T00:00:00Z&to=2021-04-03T00:00:00Z",
        )))
        .expect("92 days");
        let error =
            errors(RawParams::from_query(Some("client=a.b")), LIMITS).expect_err("bad client");
        assert!(matches!(error, ApiError::BadParameter { parameter, .. } if parameter == "client"));
    }

    #[test]
    fn json_bodies_give_the_same_parameters() {
        let raw = RawParams::from_json(br#"{"category": "party", "limit": 5, "to": null}"#)
            .expect("object");
        let (f, page) = events(raw, LIMITS).expect("valid");
        assert_eq!(
            (f.category.as_deref(), page.limit, f.range.to),
            (Some("party"), 5, None)
        );
        assert!(matches!(
            RawParams::from_json(b"[1]"),
            Err(ApiError::BadBody(_))
        ));
        let raw = RawParams::from_json(br#"{"category": ["a"]}"#);
        assert!(
            matches!(raw, Err(ApiError::BadParameter { parameter, .. }) if parameter == "category")
        );
    }
}
