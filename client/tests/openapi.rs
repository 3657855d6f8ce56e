//! The OpenAPI 3.1 documents of the gateway (`ingest-gateway/openapi.json`)
//! and the query service (`query-service/openapi.json`), checked against the
//! real services:
//!
//! - every route the services declare is documented, and every documented
//!   route is declared (the route tables are read from the `.route(...)`
//!   calls of the files that build each router, constants resolved);
//! - every example (request and response bodies, parameters, component
//!   schemas) validates against its schema;
//! - every documented operation, called on the running service with its
//!   examples, answers a documented success status with a body that
//!   validates against the documented schema; and each service serves its
//!   document at `/openapi.json`.
//!
//! They live with the client because the client is what the documents are
//! for, and because its tests already run the whole stack.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{READ_TOKEN, Stack, WRITE_KEY};
use serde_json::{Map, Value};

const METHODS: [&str; 7] = ["get", "post", "put", "delete", "patch", "options", "head"];

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
        .display()
        .to_string()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn document(path: &str) -> Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// The `(METHOD, path)` pairs of every `.route(path, method(..).method(..))`
/// call in `files`; a path given as a constant is looked up as
/// `const NAME: &str = "..."` in the same files.
fn declared_routes(files: &[&str]) -> BTreeSet<(String, String)> {
    let sources: Vec<String> = files.iter().map(|f| read(f)).collect();
    let all = sources.join("\n");
    let mut routes = BTreeSet::new();
    for source in &sources {
        let mut rest = source.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let call = balanced(rest);
            let (path, handlers) = call
                .split_once(',')
                .unwrap_or_else(|| panic!("cannot read route {call:?}"));
            let path = path.trim();
            let path = match path.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
                Some(literal) => literal.to_owned(),
                None => constant(&all, path.rsplit("::").next().unwrap_or(path)),
            };
            let handlers: String = handlers.split_whitespace().collect();
            for method in METHODS {
                let chained = format!(".{method}(");
                if handlers.starts_with(&format!("{method}(")) || handlers.contains(&chained) {
                    routes.insert((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
    }
    routes
}

/// The text up to the `)` that closes the call just opened.
fn balanced(text: &str) -> &str {
    let mut depth = 1;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[..i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced call: {text:.80}")
}

fn constant(sources: &str, name: &str) -> String {
    let decl = format!("const {name}: &str = \"");
    let at = sources
        .find(&decl)
        .unwrap_or_else(|| panic!("route constant {name} not found"));
    let value = &sources[at + decl.len()..];
    value[..value.find('"').expect("closing quote")].to_owned()
}

/// The `(METHOD, path)` pairs a document describes.
fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                routes.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    routes
}

/// A validator for `schema`, whose `$ref`s point into `doc`'s components.
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let mut root = match schema {
        Value::Object(map) => map.clone(),
        other => panic!("schema is not an object: {other}"),
    };
    root.insert("components".to_owned(), doc["components"].clone());
    jsonschema::draft202012::options()
        .build(&Value::Object(root))
        .unwrap_or_else(|e| panic!("schema does not compile: {e}\n{schema}"))
}

fn assert_valid(doc: &Value, schema: &Value, instance: &Value, what: &str) {
    let v = validator(doc, schema);
    let errors: Vec<String> = v.iter_errors(instance).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{what} does not match its schema: {errors:?}\n{instance}"
    );
}

/// Every example in `doc`, with the schema it must match and where it is.
fn examples(doc: &Value) -> Vec<(Value, Value, String)> {
    let mut found = Vec::new();
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        if let Some(example) = schema.get("example") {
            found.push((schema.clone(), example.clone(), format!("schema {name}")));
        }
    }
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let at = format!("{} {path}", method.to_ascii_uppercase());
            for p in op["parameters"].as_array().into_iter().flatten() {
                if let Some(example) = p.get("example") {
                    let what = format!("{at} parameter {}", p["name"]);
                    found.push((p["schema"].clone(), example.clone(), what));
                }
            }
            let mut media: Vec<(String, &Map<String, Value>)> = Vec::new();
            if let Some(content) = op["requestBody"]["content"].as_object() {
                media.extend(
                    content
                        .iter()
                        .map(|(t, m)| (format!("{at} request {t}"), m.as_object().expect("media"))),
                );
            }
            for (status, response) in op["responses"].as_object().expect("responses") {
                if let Some(content) = response["content"].as_object() {
                    media.extend(content.iter().map(|(t, m)| {
                        (format!("{at} {status} {t}"), m.as_object().expect("media"))
                    }));
                }
            }
            for (what, m) in media {
                let schema = m.get("schema").cloned().unwrap_or(Value::Bool(true));
                if let Some(example) = m.get("example") {
                    found.push((schema.clone(), example.clone(), what.clone()));
                }
                for (name, example) in m
                    .get("examples")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    found.push((
                        schema.clone(),
                        example["value"].clone(),
                        format!("{what} example {name}"),
                    ));
                }
            }
        }
    }
    found
}

fn check_document(file: &str, route_files: &[&str], not_api: &str) {
    let doc = document(file);
    assert_eq!(doc["openapi"], "3.1.0", "{file}");
    let declared: BTreeSet<_> = declared_routes(route_files)
        .into_iter()
        .filter(|(_, path)| !path.starts_with(not_api))
        .collect();
    let documented = documented_routes(&doc);
    let undocumented: Vec<_> = declared.difference(&documented).collect();
    let missing: Vec<_> = documented.difference(&declared).collect();
    assert!(
        undocumented.is_empty(),
        "{file}: routes not documented: {undocumented:?}"
    );
    assert!(
        missing.is_empty(),
        "{file}: documented routes that do not exist: {missing:?}"
    );
    assert!(
        declared.len() >= 8,
        "the route tables were read: {declared:?}"
    );

    let found = examples(&doc);
    assert!(found.len() >= 10, "{file}: examples found: {}", found.len());
    for (schema, example, what) in &found {
        assert_valid(&doc, schema, example, &format!("{file}: {what}"));
    }
}

#[test]
fn the_gateway_document_matches_its_routes_and_its_examples_validate() {
    check_document(
        "ingest-gateway/openapi.json",
        &["ingest-gateway/src/routes.rs", "server-kit/src/ops.rs"],
        // The gateway serves nothing but its API.
        "\u{0}",
    );
    // Each NDJSON line of the example is a documented event.
    let doc = document("ingest-gateway/openapi.json");
    let body = &doc["paths"]["/v1/events"]["post"]["requestBody"]["content"];
    let event = serde_json::json!({"$ref": "#/components/schemas/Event"});
    let ndjson = body["application/x-ndjson"]["example"]
        .as_str()
        .expect("NDJSON example");
    for line in ndjson.lines() {
        let value: Value = serde_json::from_str(line).expect("a JSON line");
        assert_valid(&doc, &event, &value, "an NDJSON example line");
    }
}

#[test]
fn the_query_document_matches_its_routes_and_its_examples_validate() {
    check_document(
        "query-service/openapi.json",
        &[
            "query-service/src/routes.rs",
            "query-service/src/stats.rs",
            "query-service/src/ui.rs",
            "server-kit/src/ops.rs",
        ],
        // The session explorer's pages and files (`/ui/{*path}`, a catch-all
        // OpenAPI cannot express) are a web page, not the API.
        "/ui",
    );
}

/// Calls every documented operation with its examples; each must answer a
/// documented 2xx whose body matches the documented schema.
async fn call_every_operation(doc: &Value, base: &str, auth: &[(&str, &str)]) {
    let http = reqwest::Client::new();
    let mut calls = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let mut url = format!("{base}{path}");
            let mut query = Vec::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                let (Some(name), Some(example)) = (p["name"].as_str(), p.get("example")) else {
                    continue;
                };
                let text = match example {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                match p["in"].as_str() {
                    Some("path") => url = url.replace(&format!("{{{name}}}"), &text),
                    // Optional filters stay off unless required, so every
                    // call can find rows or none without a 400.
                    Some("query") if p["required"] == true => query.push((name.to_owned(), text)),
                    _ => {}
                }
            }
            // One call per request example, or one call without a body.
            let mut bodies: Vec<Option<(String, Vec<u8>)>> = Vec::new();
            if let Some(content) = op["requestBody"]["content"].as_object() {
                for (media_type, m) in content {
                    let mut values: Vec<Value> = m.get("example").into_iter().cloned().collect();
                    values.extend(
                        m.get("examples")
                            .and_then(Value::as_object)
                            .into_iter()
                            .flatten()
                            .map(|(_, e)| e["value"].clone()),
                    );
                    for value in values {
                        let bytes = match value {
                            Value::String(s) => s.into_bytes(),
                            other => other.to_string().into_bytes(),
                        };
                        bodies.push(Some((media_type.clone(), bytes)));
                    }
                }
            } else {
                bodies.push(None);
            }
            for body in bodies {
                let mut request = http
                    .request(method.to_ascii_uppercase().parse().expect("method"), &url)
                    .query(&query);
                let needs_auth = op.get("security").is_some();
                if needs_auth {
                    for (name, value) in auth {
                        request = request.header(*name, *value);
                    }
                }
                let media_type = body.as_ref().map(|(t, _)| t.clone());
                if let Some((media_type, bytes)) = body {
                    request = request.header("content-type", media_type).body(bytes);
                }
                let response = request.send().await.expect("request sent");
                let status = response.status().as_u16();
                let content_type = response
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let text = response.text().await.expect("body");
                let what = format!("{} {url} ({media_type:?})", method.to_ascii_uppercase());
                assert!((200..300).contains(&status), "{what}: {status} {text}");
                let documented = &op["responses"][status.to_string()];
                assert!(
                    documented.is_object(),
                    "{what}: status {status} is not documented"
                );
                if let Some(content) = documented["content"].as_object() {
                    let essence = content_type.split(';').next().unwrap_or("").trim();
                    let m = content.get(essence).unwrap_or_else(|| {
                        panic!("{what}: content type {content_type} is not documented")
                    });
                    if essence.ends_with("json") {
                        let value: Value = serde_json::from_str(&text).expect("JSON body");
                        if let Some(schema) = m.get("schema") {
                            assert_valid(doc, schema, &value, &what);
                        }
                        if path == "/openapi.json" {
                            assert_eq!(&value, doc, "{what} serves the document in the repository");
                        }
                    }
                }
                calls += 1;
            }
        }
    }
    assert!(calls >= 8, "calls made: {calls}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_answers_as_documented() {
    let stack = Stack::start("client_openapi").await;
    let write_key = format!("Bearer {WRITE_KEY}");
    let read_token = format!("Bearer {READ_TOKEN}");
    call_every_operation(
        &document("ingest-gateway/openapi.json"),
        &stack.gateway.url(""),
        &[("authorization", &write_key)],
    )
    .await;
    call_every_operation(
        &document("query-service/openapi.json"),
        &stack.query.url(""),
        &[("authorization", &read_token)],
    )
    .await;
    stack.stop().await;
}
