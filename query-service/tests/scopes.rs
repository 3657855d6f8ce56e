//! Read scopes on every route, JSON and NDJSON: a `client` token sees only
//! its client's rows, an `admin` token every client's.

mod common;

use common::{event, ids, Stack, ADMIN_TOKEN, SHOP_TOKEN, T0};
use uuid::Uuid;

#[tokio::test]
async fn a_client_token_reads_only_its_rows_on_every_route() {
    let stack = Stack::start("q_scopes", &[]).await;
    let s = Uuid::new_v4();
    let mut shop = event(s, "shop1", "party", "Open", T0);
    shop.client_id = "shop".to_owned();
    stack
        .insert(&[shop, event(s, "demo1", "party", "Open", T0 + 1)])
        .await;
    let range = "from=2021-01-01T00:00:00Z&to=2022-01-01T00:00:00Z";

    for (token, expected) in [
        (SHOP_TOKEN, vec!["shop1"]),
        (ADMIN_TOKEN, vec!["shop1", "demo1"]),
    ] {
        for path in [
            format!("/v1/events?category=party&{range}"),
            format!("/v1/events?{range}"),
            format!("/v1/sessions/{s}/events"),
        ] {
            let (status, body) = stack.get(&path, Some(token)).await;
            assert_eq!(status, 200, "{path}: {body}");
            assert_eq!(
                ids(body["events"].as_array().expect("events")),
                expected,
                "{path}"
            );
        }
        let (status, body) = common::answer(
            stack
                .http
                .post(stack.service.url("/v1/events/search"))
                .bearer_auth(token)
                .json(&serde_json::json!({"session_id": s.to_string()})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(ids(body["events"].as_array().expect("events")), expected);

        // NDJSON export: one line per event, then the cursor line.
        let text = stack
            .http
            .get(stack.service.url(&format!("/v1/events?{range}")))
            .bearer_auth(token)
            .header("accept", "application/x-ndjson")
            .send()
            .await
            .expect("sent")
            .text()
            .await
            .expect("body");
        let exported: Vec<String> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["event_id"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(exported, expected, "{text}");

        let (status, body) = stack
            .get(&format!("/v1/sessions?{range}"), Some(token))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["sessions"][0]["events"], expected.len(), "{body}");
    }
}
