//! Schemas reloaded on SIGHUP, end to end: a consumer started with a copy of
//! the repository's schemas stores an event of a category added to that
//! directory once the process gets SIGHUP.
//!
//! A test binary of its own: the signal goes to the whole test process, so
//! every consumer running in it would reload too.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use uuid::Uuid;

const ERRORS_FINAL: &str = "SELECT count() FROM event_errors FINAL";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_category_added_by_sighup_is_stored_from_then_on() {
    // This process takes SIGHUP from here on (its default action would end it).
    let mut hangups =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).expect("SIGHUP");
    let dir = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(eye_testkit::schemas_dir()).expect("repo schemas") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
    }
    let stack = Stack::new("sighup").await;
    let mut config = stack.config(&[]);
    config.schemas_dir = dir.path().to_owned();
    let service = start(config).await;
    service
        .wait_for_status("/readyz", 200, Duration::from_secs(20))
        .await;

    let session = Uuid::new_v4();
    let checkout = |i: u32| {
        let mut event = party_event(i, session);
        event["category"] = json!("checkout");
        event["data"] = json!({"cart": ["sku-1"]});
        message("web", &event)
    };
    publish(&stack.js, vec![checkout(1)]).await;
    wait_for_count(&stack.client, ERRORS_FINAL, 1).await;
    let code: String = stack
        .client
        .query("SELECT code FROM event_errors")
        .fetch_one()
        .await
        .expect("code");
    assert_eq!(code, "unknown_category");

    std::fs::write(
        dir.path().join("checkout.json"),
        r#"{"$schema": "https://json-schema.org/draft/2020-12/schema",
            "x-eye-category": "checkout", "type": "object", "required": ["data"],
            "properties": {"data": {"type": "object", "required": ["cart"]}}}"#,
    )
    .expect("schema");
    let hangup = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("kill");
    assert!(hangup.success());
    hangups.recv().await.expect("SIGHUP received");
    // The reload runs on the consumer's own SIGHUP task: publish until an
    // event of the new category is stored (each one distinct).
    let stored = wait_for("a checkout event stored", Duration::from_secs(10), || {
        let (js, client) = (&stack.js, &stack.client);
        async move {
            publish(js, vec![checkout(2)]).await;
            let n: u64 = client
                .query("SELECT count() FROM events FINAL WHERE category = 'checkout'")
                .fetch_one()
                .await
                .map_err(|e| e.to_string())?;
            if n > 0 {
                Ok(n)
            } else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Err("none yet".to_owned())
            }
        }
    })
    .await;
    assert_eq!(stored, 1, "the same event, published again, is one row");
    service.stop(Duration::from_secs(10)).await;
}
