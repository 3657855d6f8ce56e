//! Counts per hour (`/v1/stats/…`) and sessions newest first, on a real
//! ClickHouse (18.16 here) through the service as the read-only user.

mod common;

use common::{event, reject, Stack, ADMIN_TOKEN, SHOP_TOKEN, T0};
use eye_contract::Timestamp;
use serde_json::{json, Value};
use uuid::Uuid;

const HOUR: i64 = 3_600_000_000;

fn at(us: i64) -> String {
    form_urlencoded::byte_serialize(Timestamp::from_micros(us).to_rfc3339().as_bytes()).collect()
}

/// `[T0 - 1 h, T0 + 5 h)`.
fn range() -> String {
    format!("from={}&to={}", at(T0 - HOUR), at(T0 + 5 * HOUR))
}

/// The `hours` of `/v1/stats/<route>` over [`range`] with `filters` (`&a=b`…), as the admin.
async fn hours(stack: &Stack, route: &str, filters: &str) -> Value {
    let body = stack
        .admin(&format!("/v1/stats/{route}?{}{filters}", range()))
        .await;
    body["hours"].clone()
}

#[tokio::test]
async fn events_per_hour_counts_each_event_once_by_hour_of_occurrence() {
    let stack = Stack::start("q_stats_events", &[]).await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    // T0 is 09:15:27: three events in the 09 hour (one stored twice, as a
    // redelivery would), one at 10, two at 12, one outside the range.
    let rows = [
        event(a, "a1", "party", "Open", T0),
        event(a, "a2", "party", "Click", T0 + 60_000_000),
        event(b, "b1", "page view", "View", T0 + 1),
        event(a, "a3", "party", "Click", T0 + HOUR),
        event(b, "b2", "page view", "View", T0 + 3 * HOUR),
        event(b, "b3", "party", "Close", T0 + 3 * HOUR + 5),
        event(b, "b4", "party", "Late", T0 + 9 * HOUR),
    ];
    stack.insert(&rows).await;
    stack.insert(&rows[..1]).await;

    let body = stack
        .admin(&format!("/v1/stats/events_per_hour?{}", range()))
        .await;
    assert_eq!(
        body["hours"],
        json!([
            {"hour": "2021-09-26T09:00:00.000000Z", "events": 3},
            {"hour": "2021-09-26T10:00:00.000000Z", "events": 1},
            {"hour": "2021-09-26T12:00:00.000000Z", "events": 2},
        ])
    );
    assert_eq!(body["from"], "2021-09-26T08:15:27.000000Z");

    assert_eq!(
        hours(&stack, "events_per_hour", "&category=page%20view").await,
        json!([
            {"hour": "2021-09-26T09:00:00.000000Z", "events": 1},
            {"hour": "2021-09-26T12:00:00.000000Z", "events": 1},
        ])
    );
    assert_eq!(
        hours(&stack, "events_per_hour", "&category=party&name=Click").await,
        json!([
            {"hour": "2021-09-26T09:00:00.000000Z", "events": 1},
            {"hour": "2021-09-26T10:00:00.000000Z", "events": 1},
        ])
    );

    // A token of client shop sees none of demo's events.
    let (status, body) = stack
        .get(
            &format!("/v1/stats/events_per_hour?{}", range()),
            Some(SHOP_TOKEN),
        )
        .await;
    assert_eq!((status, &body["hours"]), (200, &json!([])));
}

#[tokio::test]
async fn errors_per_hour_counts_by_code_and_keeps_a_clients_token_to_its_client() {
    let stack = Stack::start("q_stats_errors", &[]).await;
    stack
        .insert_errors(&[
            reject("r1", "demo", "invalid_session_id", T0),
            reject("r2", "demo", "invalid_session_id", T0 + 5),
            reject("r3", "shop", "timestamp_in_future", T0 + 10),
            reject("r4", "shop", "invalid_session_id", T0 + 2 * HOUR),
        ])
        .await;
    assert_eq!(
        hours(&stack, "errors_per_hour", "").await,
        json!([
            {"hour": "2021-09-26T09:00:00.000000Z", "code": "invalid_session_id", "errors": 2},
            {"hour": "2021-09-26T09:00:00.000000Z", "code": "timestamp_in_future", "errors": 1},
            {"hour": "2021-09-26T11:00:00.000000Z", "code": "invalid_session_id", "errors": 1},
        ])
    );
    assert_eq!(
        hours(
            &stack,
            "errors_per_hour",
            "&code=invalid_session_id&client=shop"
        )
        .await,
        json!([{"hour": "2021-09-26T11:00:00.000000Z", "code": "invalid_session_id", "errors": 1}])
    );

    // Client shop's token counts shop's rejects only, and may not ask for demo's.
    let (status, body) = stack
        .get(
            &format!("/v1/stats/errors_per_hour?{}", range()),
            Some(SHOP_TOKEN),
        )
        .await;
    assert_eq!(status, 200);
    let total: u64 = body["hours"]
        .as_array()
        .expect("hours")
        .iter()
        .map(|h| h["errors"].as_u64().expect("count"))
        .sum();
    assert_eq!(total, 2);
    let (status, _) = stack
        .get(
            &format!("/v1/stats/errors_per_hour?{}&client=demo", range()),
            Some(SHOP_TOKEN),
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn counts_need_a_token_and_a_bounded_range() {
    let stack = Stack::start("q_stats_params", &[]).await;
    for route in ["events_per_hour", "errors_per_hour"] {
        let (status, _) = stack
            .get(&format!("/v1/stats/{route}?{}", range()), None)
            .await;
        assert_eq!(status, 401, "{route}");
        for (query, parameter) in [
            (format!("from={}", at(T0)), "to"),
            (format!("to={}", at(T0)), "from"),
            (
                format!("from={}&to={}", at(T0), at(T0 + 93 * 24 * HOUR)),
                "to",
            ),
            (format!("{}&limit=5", range()), "limit"),
            (format!("{}&cursor=x", range()), "cursor"),
        ] {
            let (status, body) = stack
                .get(&format!("/v1/stats/{route}?{query}"), Some(ADMIN_TOKEN))
                .await;
            assert_eq!(
                (status, body["parameter"].as_str()),
                (400, Some(parameter)),
                "{route}?{query}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn sessions_page_newest_first_with_stable_cursors() {
    let stack = Stack::start("q_sessions_newest", &[]).await;
    let mut sessions: Vec<Uuid> = (0..7).map(|_| Uuid::new_v4()).collect();
    // Two sessions start at the same microsecond: ordered by id, descending.
    let rows: Vec<_> = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let start = T0 + i64::try_from(i.min(5)).expect("small") * 1_000_000;
            event(*s, &format!("e{i}"), "party", "Open", start)
        })
        .collect();
    stack.insert(&rows).await;
    let newest: Vec<String> = stack
        .all_pages(
            &format!("/v1/sessions?{}&order=newest&limit=3", range()),
            "sessions",
        )
        .await
        .into_iter()
        .flatten()
        .map(|r| r["session_id"].as_str().expect("id").to_owned())
        .collect();
    let oldest: Vec<String> = stack
        .all_pages(&format!("/v1/sessions?{}&limit=3", range()), "sessions")
        .await
        .into_iter()
        .flatten()
        .map(|r| r["session_id"].as_str().expect("id").to_owned())
        .collect();
    let mut expected_oldest: Vec<String> = Vec::new();
    sessions[5..].sort();
    expected_oldest.extend(sessions.iter().map(Uuid::to_string));
    assert_eq!(oldest, expected_oldest);
    let mut reversed = expected_oldest.clone();
    reversed.reverse();
    assert_eq!(newest, reversed);

    // A cursor of one order is not a cursor of the other.
    let body = stack
        .admin(&format!("/v1/sessions?{}&limit=3", range()))
        .await;
    let cursor = body["next_cursor"].as_str().expect("more pages");
    let (status, body) = stack
        .get(
            &format!(
                "/v1/sessions?{}&limit=3&order=newest&cursor={cursor}",
                range()
            ),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let _: &Value = &body;
}
