//! The session explorer: the static files of `query-service/ui/`, embedded
//! in the binary and served under `/ui`.
//!
//! The page is plain HTML, CSS and ES modules with no build step; it only
//! calls the public `/v1/` API with the read token the user gives it, so it
//! needs no access of its own and the files themselves are public.
//!
//! Every answer carries a strict Content-Security-Policy (scripts, styles and
//! fetches from this origin only, no inline script or style markup, no
//! framing), `X-Content-Type-Options: nosniff` and an `ETag` (a hash of the
//! file) with `Cache-Control: no-cache`: browsers revalidate and get a 304
//! until a new binary serves different bytes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

/// The policy of every `/ui` answer: nothing inline, nothing from elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One embedded file: its name under `/ui/`, its bytes and its media type.
struct File {
    name: &'static str,
    body: &'static [u8],
    content_type: &'static str,
}

macro_rules! embed {
    ($name:literal, $content_type:expr) => {
        File {
            name: $name,
            body: include_bytes!(concat!("../ui/", $name)),
            content_type: $content_type,
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the page is made of. A file added to `ui/` must be listed here
/// (the UI test checks that everything `index.html` and the modules refer to
/// is served).
const FILES: &[File] = &[
    embed!("index.html", "text/html; charset=utf-8"),
    embed!("style.css", "text/css; charset=utf-8"),
    embed!("app.js", JS),
    embed!("api.js", JS),
    embed!("dom.js", JS),
    embed!("time.js", JS),
    embed!("chart.js", JS),
    embed!("controls.js", JS),
    embed!("sessions.js", JS),
    embed!("timeline.js", JS),
    embed!("rejects.js", JS),
];

/// A file ready to serve: its bytes, media type and entity tag.
struct Served {
    body: &'static [u8],
    content_type: HeaderValue,
    etag: HeaderValue,
}

type Files = Arc<HashMap<&'static str, Served>>;

fn served() -> Files {
    let files = FILES
        .iter()
        .map(|f| {
            let digest = Sha256::digest(f.body);
            // 128 bits of the hash: a strong validator for a file of the binary.
            let etag = format!("\"{}\"", hex::encode(&digest[..16]));
            let served = Served {
                body: f.body,
                content_type: HeaderValue::from_static(f.content_type),
                etag: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\"")),
            };
            (f.name, served)
        })
        .collect();
    Arc::new(files)
}

/// The `/ui` routes: `/ui` and `/ui/` are the page, `/ui/<file>` its files,
/// anything else under `/ui/` is 404.
pub fn router() -> Router {
    Router::new()
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route("/ui/{*path}", get(file))
        .with_state(served())
}

async fn index(State(files): State<Files>, headers: HeaderMap) -> Response {
    answer(&files, "index.html", &headers).await
}

async fn file(
    State(files): State<Files>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(&files, &path, &headers).await
}

async fn answer(files: &Files, name: &str, request: &HeaderMap) -> Response {
    let Some(file) = files.get(name) else {
        return crate::routes::not_found().await.into_response();
    };
    let mut response = if matches(request, &file.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = file.body.into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, file.content_type.clone());
        r
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, file.etag.clone());
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// Whether `If-None-Match` names `etag` (or is `*`).
fn matches(request: &HeaderMap, etag: &HeaderValue) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t.as_bytes() == etag.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn if_none_match(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::IF_NONE_MATCH, HeaderValue::from_static(v));
        }
        headers
    }

    #[test]
    fn if_none_match_names_the_tag_in_any_form() {
        let etag = HeaderValue::from_static("\"abc\"");
        for yes in [
            &["\"abc\""][..],
            &["W/\"abc\""],
            &["\"x\", \"abc\""],
            &["\"x\"", "\"abc\""],
            &["*"],
        ] {
            assert!(matches(&if_none_match(yes), &etag), "{yes:?}");
        }
        for no in [&[][..], &["\"abd\""], &["abc"], &["\"abc"]] {
            assert!(!matches(&if_none_match(no), &etag), "{no:?}");
        }
    }

    #[test]
    fn every_file_has_one_name_and_its_own_tag() {
        let files = served();
        assert_eq!(files.len(), FILES.len(), "names are unique");
        let tags: std::collections::HashSet<_> = files.values().map(|f| f.etag.clone()).collect();
        assert_eq!(tags.len(), files.len(), "tags differ");
        assert!(files.contains_key("index.html"));
    }
}
