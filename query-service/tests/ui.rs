//! The session explorer's files under `/ui`: the page and everything it
//! refers to are served from the binary with their media type, a strict
//! Content-Security-Policy, `nosniff` and an ETag; anything else is 404.

mod common;

use std::collections::BTreeSet;

use common::Stack;
use reqwest::header;

const UI_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/ui");

/// The files a text refers to: `/ui/x` in `href`/`src` attributes and
/// `./x.js` in module imports.
fn references(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for quote in ['"', '\''] {
        for part in text.split(quote) {
            if let Some(name) = part.strip_prefix("/ui/") {
                if !name.is_empty() && !name.contains(' ') {
                    found.insert(name.to_owned());
                }
            }
            if let Some(name) = part.strip_prefix("./") {
                if name.ends_with(".js") && !name.contains(' ') {
                    found.insert(name.to_owned());
                }
            }
        }
    }
    found
}

fn media_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        _ => panic!("no media type expected for {name}"),
    }
}

async fn fetch(stack: &Stack, path: &str) -> reqwest::Response {
    stack
        .http
        .get(stack.service.url(path))
        .send()
        .await
        .expect("request sent")
}

fn header_of(response: &reqwest::Response, name: header::HeaderName) -> String {
    response
        .headers()
        .get(&name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("{} has no {name} header", response.url()))
        .to_owned()
}

#[tokio::test]
async fn the_page_and_every_file_it_refers_to_are_served_with_strict_headers() {
    let stack = Stack::start("q_ui", &[]).await;

    let page = fetch(&stack, "/ui").await;
    assert_eq!(page.status(), 200);
    assert_eq!(
        header_of(&page, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    let csp = header_of(&page, header::CONTENT_SECURITY_POLICY);
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(header_of(&page, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(header_of(&page, header::CACHE_CONTROL), "no-cache");
    let etag = header_of(&page, header::ETAG);
    let html = page.text().await.expect("body");
    let on_disk = std::fs::read_to_string(format!("{UI_DIR}/index.html")).expect("index.html");
    assert_eq!(html, on_disk, "/ui is ui/index.html");
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "no inline script or style"
    );

    // `/ui/` is the same page; a matching If-None-Match gets a 304 with the
    // same headers and no body.
    assert_eq!(
        fetch(&stack, "/ui/").await.text().await.expect("body"),
        html
    );
    let again = stack
        .http
        .get(stack.service.url("/ui"))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .expect("request sent");
    assert_eq!(again.status(), 304);
    assert_eq!(header_of(&again, header::ETAG), etag);
    assert_eq!(header_of(&again, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert!(again.bytes().await.expect("body").is_empty());

    // Everything the page and its modules refer to, followed to the end; each
    // is the file of ui/ with its media type and headers.
    let mut todo: Vec<String> = references(&html).into_iter().collect();
    let mut served = BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !served.insert(name.clone()) {
            continue;
        }
        let response = fetch(&stack, &format!("/ui/{name}")).await;
        assert_eq!(response.status(), 200, "/ui/{name}");
        assert_eq!(
            header_of(&response, header::CONTENT_TYPE),
            media_type(&name)
        );
        assert_eq!(
            header_of(&response, header::X_CONTENT_TYPE_OPTIONS),
            "nosniff"
        );
        assert_eq!(header_of(&response, header::CONTENT_SECURITY_POLICY), csp);
        assert_ne!(
            header_of(&response, header::ETAG),
            etag,
            "{name}: its own ETag"
        );
        let text = response.text().await.expect("body");
        let on_disk = std::fs::read_to_string(format!("{UI_DIR}/{name}")).expect("file of ui/");
        assert_eq!(text, on_disk, "/ui/{name}");
        todo.extend(references(&text));
    }
    assert!(
        served.contains("app.js") && served.contains("style.css"),
        "{served:?}"
    );

    // Every page file of ui/ is reachable from the page (nothing listed in
    // the binary but unused, nothing on disk but not embedded).
    let on_disk: BTreeSet<String> = std::fs::read_dir(UI_DIR)
        .expect("ui/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "index.html" && n != "README.md" && n != "LICENSE")
        .collect();
    assert_eq!(served, on_disk);

    // Unknown files, directories and escapes are 404 problem+json.
    for path in [
        "/ui/nope.js",
        "/ui/index.htm",
        "/ui/README.md",
        "/ui/../Cargo.toml",
        "/ui/%2e%2e/Cargo.toml",
        "/ui/app.js/x",
        "/uix",
    ] {
        let response = fetch(&stack, path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            header_of(&response, header::CONTENT_TYPE),
            "application/problem+json",
            "{path}"
        );
    }
}
