//! `POST /v1/events`, `/v1/validate` and `/v1/schemas` against a real NATS
//! server. The tests share one server and keep apart by their own client ids
//! (and so their own subjects).

mod common;

use std::io::Write;
use std::time::Duration;

use common::{fixture, header, messages, party, wait_for_messages, Gateway};
use eye_contract::{headers, EVENTS_STREAM};
use eye_server_kit::jetstream::REJECTS_STREAM;
use serde_json::{json, Value};

async fn gateway() -> Gateway {
    common::start(&eye_testkit::shared_nats().url(), &[]).await
}

async fn nats() -> async_nats::Client {
    eye_testkit::shared_nats().connect().await
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

#[tokio::test]
async fn every_example_is_accepted_and_lands_on_its_subject_with_headers() {
    let gw = gateway().await;
    let single = gw
        .post_raw(
            "/v1/events",
            "application/json",
            false,
            fixture("party.json"),
        )
        .await;
    assert_eq!(single.status, 202, "{single:?}");
    assert_eq!(single.body["accepted"], 1);
    let batch = gw
        .post_raw(
            "/v1/events",
            "application/json",
            false,
            fixture("batch.json"),
        )
        .await;
    assert_eq!(batch.status, 202, "{batch:?}");
    assert_eq!(
        (
            batch.body["accepted"].clone(),
            batch.body["rejected"].clone()
        ),
        (json!(3), json!(0))
    );
    let mut ids: Vec<String> = [&single.body, &batch.body]
        .iter()
        .flat_map(|b| b["results"].as_array().cloned().unwrap_or_default())
        .map(|r| {
            assert_eq!(r["status"], "accepted", "{r}");
            r["event_id"].as_str().expect("event id").to_owned()
        })
        .collect();

    let nats = nats().await;
    let stored = messages(&nats, EVENTS_STREAM, &gw.events_filter()).await;
    assert_eq!(stored.len(), 4);
    let expected_subjects = [
        "party",
        "page_20interaction",
        "page_20interaction",
        "form_20interaction",
    ]
    .map(|token| format!("eye.events.{}.{token}", gw.client));
    for (message, subject) in stored.iter().zip(&expected_subjects) {
        assert_eq!(message.subject.as_str(), subject);
        let event_id = header(message, headers::EVENT_ID).expect("event id header");
        assert_eq!(
            header(message, headers::CLIENT_ID).as_deref(),
            Some(gw.client.as_str())
        );
        assert_eq!(
            header(message, headers::NATS_MSG_ID),
            Some(eye_contract::dedup_id(&gw.client, &event_id))
        );
        let body: Value = serde_json::from_slice(&message.payload).expect("JSON body");
        assert_eq!(body["event_id"], event_id.as_str());
        ids.retain(|id| *id != event_id);
    }
    assert!(ids.is_empty(), "every answered id is stored: {ids:?}");
    let party: Value = serde_json::from_slice(&stored[0].payload).expect("JSON");
    assert_eq!(
        party["timestamp"], "2021-09-26T09:15:27.243860Z",
        "normalized"
    );
    assert_eq!(party["data"], json!({"host": "www.party.com", "path": "/"}));
}

/// One event per error code, with good events around them, as NDJSON (the only
/// body in which a line that is not JSON is a per-event `invalid_json`).
#[tokio::test]
async fn one_event_per_error_code_gets_exactly_its_code_and_pointer() {
    let gw = gateway().await;
    let with = |field: &str, value: Value| {
        let mut e = party(0);
        e[field] = value;
        e.to_string()
    };
    let without = |field: &str| {
        let mut e = party(0);
        e.as_object_mut().expect("object").remove(field);
        e.to_string()
    };
    let mut deep = json!("leaf");
    for _ in 0..40 {
        deep = json!({ "d": deep });
    }
    let cases: Vec<(String, Option<(&str, &str)>)> = vec![
        (party(1).to_string(), None),
        (
            "{\"session_id\": \"oops".to_owned(),
            Some(("invalid_json", "")),
        ),
        (without("timestamp"), Some(("missing_field", "/timestamp"))),
        (with("extra", json!(1)), Some(("unknown_field", "/extra"))),
        (with("data", json!([])), Some(("invalid_type", "/data"))),
        (
            with("session_id", json!("not-a-uuid")),
            Some(("invalid_session_id", "/session_id")),
        ),
        (
            with("category", json!("nope")),
            Some(("unknown_category", "/category")),
        ),
        (with("name", json!("  ")), Some(("invalid_name", "/name"))),
        (
            with("event_id", json!("bad id!")),
            Some(("invalid_event_id", "/event_id")),
        ),
        (
            with("timestamp", json!("yesterday")),
            Some(("invalid_timestamp", "/timestamp")),
        ),
        (
            with("timestamp", json!("2999-01-01 00:00:00")),
            Some(("timestamp_in_future", "/timestamp")),
        ),
        (
            with("timestamp", json!("1969-12-31 23:59:59")),
            Some(("timestamp_too_old", "/timestamp")),
        ),
        (
            with("data", json!({"host": "h"})),
            Some(("schema_violation", "/data/path")),
        ),
        (
            with("data", json!({"host": "x".repeat(40_000), "path": "/"})),
            Some(("event_too_large", "")),
        ),
        (with("data", deep), Some(("too_deep", ""))),
        (party(2).to_string(), None),
    ];
    let body = cases
        .iter()
        .map(|(line, _)| line.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let answer = gw
        .post_raw(
            "/v1/events",
            "application/x-ndjson",
            false,
            body.into_bytes(),
        )
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(answer.body["accepted"], 2);
    assert_eq!(answer.body["rejected"], cases.len() - 2);
    let results = answer.body["results"].as_array().expect("results");
    assert_eq!(results.len(), cases.len());
    for (i, ((_, expected), result)) in cases.iter().zip(results).enumerate() {
        assert_eq!(result["index"], i);
        match expected {
            None => assert_eq!(result["status"], "accepted", "{result}"),
            Some((code, pointer)) => {
                assert_eq!(result["status"], "rejected", "{result}");
                assert_eq!(result["code"], *code, "{result}");
                assert_eq!(result["pointer"], *pointer, "{result}");
                assert!(result["message"].as_str().is_some_and(|m| !m.is_empty()));
            }
        }
    }

    let nats = nats().await;
    let stored = messages(&nats, EVENTS_STREAM, &gw.events_filter()).await;
    let paths: Vec<Value> = stored
        .iter()
        .map(|m| serde_json::from_slice::<Value>(&m.payload).expect("JSON")["data"]["path"].clone())
        .collect();
    assert_eq!(
        paths,
        [json!("/1"), json!("/2")],
        "the good neighbours are stored"
    );

    let rejects = wait_for_messages(
        &nats,
        REJECTS_STREAM,
        &gw.rejects_filter(),
        cases.len() - 2,
        Duration::from_secs(10),
    )
    .await;
    let mut codes: Vec<String> = rejects
        .iter()
        .map(|m| {
            let reject: eye_contract::Reject =
                serde_json::from_slice(&m.payload).expect("a Reject");
            assert_eq!(reject.client, gw.client);
            assert_eq!(reject.source, eye_contract::RejectSource::Gateway);
            assert!(reject.raw.len() <= 4096);
            reject.code.as_str().to_owned()
        })
        .collect();
    let mut expected: Vec<String> = cases
        .iter()
        .filter_map(|(_, e)| e.map(|(c, _)| c.to_owned()))
        .collect();
    codes.sort();
    expected.sort();
    assert_eq!(codes, expected);
    assert_eq!(
        gw.metric("eye_gateway_events_rejected_total{code=\"too_deep\"}")
            .await,
        1.0
    );
    assert_eq!(gw.metric("eye_gateway_events_accepted_total").await, 2.0);
}

#[tokio::test]
async fn the_same_event_sent_twice_is_stored_once() {
    let gw = gateway().await;
    let first = gw.send(&party(7)).await;
    let again = gw.send(&json!([party(7), party(7)])).await;
    assert_eq!(first.status, 202);
    assert_eq!(again.status, 202, "{again:?}");
    let id = &first.body["results"][0]["event_id"];
    assert_eq!(&again.body["results"][0]["event_id"], id);
    assert_eq!(&again.body["results"][1]["event_id"], id);
    let stored = messages(&nats().await, EVENTS_STREAM, &gw.events_filter()).await;
    assert_eq!(stored.len(), 1);
}

#[tokio::test]
async fn gzip_bodies_are_accepted_and_bombs_refused() {
    let gw = gateway().await;
    let body = json!([party(1), party(2)]).to_string();
    let answer = gw
        .post_raw(
            "/v1/events",
            "application/json",
            true,
            gzip(body.as_bytes()),
        )
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(answer.body["accepted"], 2);

    let bomb = gzip(&vec![b' '; 64 * 1024 * 1024]);
    assert!(bomb.len() < 200_000);
    let answer = gw
        .post_raw("/v1/events", "application/json", true, bomb)
        .await;
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(answer.content_type, "application/problem+json");

    let answer = gw
        .post_raw("/v1/events", "application/json", true, b"not gzip".to_vec())
        .await;
    assert_eq!(answer.status, 400, "{answer:?}");
}

#[tokio::test]
async fn ndjson_with_a_bad_line_keeps_its_neighbours() {
    let gw = gateway().await;
    let body = format!("{}\r\n{{oops\n\n{}\n", party(1), party(2));
    let answer = gw
        .post_raw(
            "/v1/events",
            "application/x-ndjson",
            false,
            body.into_bytes(),
        )
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let codes: Vec<Value> = answer.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r.get("code").cloned().unwrap_or(r["status"].clone()))
        .collect();
    assert_eq!(
        codes,
        [json!("accepted"), json!("invalid_json"), json!("accepted")]
    );
    assert_eq!(
        messages(&nats().await, EVENTS_STREAM, &gw.events_filter())
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn whole_request_failures_are_problems() {
    let gw = gateway().await;
    let problem = |a: &common::Answer, status: u16| {
        assert_eq!(a.status, status, "{a:?}");
        assert_eq!(a.content_type, "application/problem+json", "{a:?}");
        assert_eq!(a.body["status"], status);
        assert!(
            a.body["type"].is_string()
                && a.body["title"].is_string()
                && a.body["detail"].is_string()
        );
    };

    let a = gw
        .post_raw(
            "/v1/events",
            "application/json",
            false,
            b"[{}, {} {}]".to_vec(),
        )
        .await;
    problem(&a, 400);
    assert_eq!(a.body["offset"], 8);
    let a = gw
        .post_raw(
            "/v1/events",
            "application/json",
            false,
            b"{\"session_id\": tru}".to_vec(),
        )
        .await;
    problem(&a, 400);
    let a = gw
        .post_raw("/v1/events", "application/json", false, b"[]".to_vec())
        .await;
    problem(&a, 400);

    let big = vec![b' '; 1024 * 1024 + 1];
    let a = gw
        .post_raw("/v1/events", "application/json", false, big)
        .await;
    problem(&a, 413);
    let many = json!((0..1001).map(party).collect::<Vec<_>>());
    problem(&gw.send(&many).await, 413);

    // text/plain is the beacon format, accepted with a write key like this
    // one; tests/security.rs shows it refused for signed requests.
    let a = gw
        .post_raw(
            "/v1/events",
            "text/html",
            false,
            party(1).to_string().into_bytes(),
        )
        .await;
    problem(&a, 415);
    let a = gw
        .post_raw(
            "/v1/events",
            "application/x-www-form-urlencoded",
            false,
            b"a=b".to_vec(),
        )
        .await;
    problem(&a, 415);

    let http = reqwest::Client::new();
    let no_key = http
        .post(gw.service.url("/v1/events"))
        .header("content-type", "application/json")
        .body(party(1).to_string())
        .send()
        .await
        .expect("sent");
    assert!(no_key.headers().contains_key("www-authenticate"));
    problem(&common::answer(no_key).await, 401);
    let wrong_key = http
        .post(gw.service.url("/v1/events"))
        .bearer_auth("eye_not_a_key")
        .header("content-type", "application/json")
        .body(party(1).to_string())
        .send()
        .await
        .expect("sent");
    problem(&common::answer(wrong_key).await, 401);

    let all_rejected = gw.send(&json!([{"nope": 1}])).await;
    assert_eq!(all_rejected.status, 422);
    assert_eq!(all_rejected.content_type, "application/json");
    assert!(messages(&nats().await, EVENTS_STREAM, &gw.events_filter())
        .await
        .is_empty());
    assert_eq!(
        gw.metric("eye_gateway_http_requests_total{route=\"/v1/events\",status=\"401\"}")
            .await,
        2.0
    );
}

#[tokio::test]
async fn validate_answers_the_same_results_and_publishes_nothing() {
    let gw = gateway().await;
    let body = json!([party(1), {"session_id": "x"}])
        .to_string()
        .into_bytes();
    let dry = gw
        .post_raw("/v1/validate", "application/json", false, body.clone())
        .await;
    assert_eq!(dry.status, 200, "{dry:?}");
    let real = gw
        .post_raw("/v1/events", "application/json", false, body)
        .await;
    assert_eq!(real.status, 202);
    assert_eq!(dry.body, real.body, "same per-event results");
    let rejected_only = gw
        .post_raw(
            "/v1/validate",
            "application/json",
            false,
            b"{\"a\": 1}".to_vec(),
        )
        .await;
    assert_eq!(rejected_only.status, 422);

    // Only the /v1/events request stored anything.
    let nats = nats().await;
    assert_eq!(
        messages(&nats, EVENTS_STREAM, &gw.events_filter())
            .await
            .len(),
        1
    );
    wait_for_messages(
        &nats,
        REJECTS_STREAM,
        &gw.rejects_filter(),
        1,
        Duration::from_secs(10),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        messages(&nats, REJECTS_STREAM, &gw.rejects_filter())
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn schemas_are_listed_with_their_event_names_and_served() {
    let gw = gateway().await;
    let list = gw.get("/v1/schemas").await;
    assert_eq!(list.status, 200);
    assert_eq!(
        list.body["categories"],
        json!([
            {"category": "form interaction", "names": ["submit"], "schema": "/v1/schemas/form%20interaction"},
            {"category": "page interaction", "names": ["pageview", "cta click"], "schema": "/v1/schemas/page%20interaction"},
            {"category": "party", "names": null, "schema": "/v1/schemas/party"}
        ])
    );
    let schema = gw.get("/v1/schemas/page%20interaction").await;
    assert_eq!(schema.status, 200);
    assert_eq!(schema.content_type, "application/schema+json");
    assert_eq!(schema.body["x-eye-category"], "page interaction");
    let missing = gw.get("/v1/schemas/nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.content_type, "application/problem+json");
}

/// A rough throughput figure, printed (run with `--nocapture`): 100-event batches.
#[tokio::test]
async fn hundred_event_batches_throughput() {
    let gw = gateway().await;
    let rounds = 30;
    let started = std::time::Instant::now();
    for round in 0..rounds {
        let batch = json!((0..100).map(|i| party(round * 100 + i)).collect::<Vec<_>>());
        let answer = gw.send(&batch).await;
        assert_eq!(answer.status, 202);
        assert_eq!(answer.body["accepted"], 100);
    }
    let elapsed = started.elapsed();
    println!(
        "{rounds} requests of 100 events: {elapsed:?}, {:.1} ms per request, {:.0} events/s",
        elapsed.as_secs_f64() * 1000.0 / rounds as f64,
        (rounds * 100) as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(gw.metric("eye_gateway_inflight_publishes").await, 0.0);
    assert_eq!(
        gw.metric("eye_gateway_publish_duration_seconds_count")
            .await,
        rounds as f64
    );
    assert_eq!(
        messages(&nats().await, EVENTS_STREAM, &gw.events_filter())
            .await
            .len(),
        rounds * 100
    );
}

#[tokio::test]
async fn a_body_that_trickles_in_too_slowly_gets_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = common::start(
        &eye_testkit::shared_nats().url(),
        &["--body-read-timeout", "300ms"],
    )
    .await;
    let mut stream = tokio::net::TcpStream::connect(gw.service.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{\"session",
        gw.key
    );
    stream.write_all(head.as_bytes()).await.expect("send");
    let mut reply = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut reply)).await;
    assert!(read.is_ok(), "answered without the rest of the body");
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("application/problem+json"), "{reply}");
}
