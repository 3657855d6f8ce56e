//! Reads from a running query service: one session's events when a session
//! id is given, otherwise the sessions of the last 24 hours and the latest
//! rejects.
//!
//! ```sh
//! cargo run -p eye-client --example read -- e2085be5-9137-4e4e-80b5-f1ffddc25423
//! cargo run -p eye-client --example read
//! ```
//!
//! Environment: `EYE_QUERY_URL` (default `http://127.0.0.1:8081`) and
//! `EYE_READ_TOKEN` (default: the demo client's `eye_demo_read_token`).

use std::time::Duration;

use eye_client::{Client, ErrorFilter, SessionFilter, Timestamp, Uuid};
use futures::{StreamExt, TryStreamExt};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder()
        .query_url(env("EYE_QUERY_URL", "http://127.0.0.1:8081"))
        .read_token(env("EYE_READ_TOKEN", "eye_demo_read_token"))
        .build()?;

    if let Some(session) = std::env::args().nth(1) {
        let session = Uuid::parse_str(&session)?;
        for event in client.session_events(session).await? {
            println!(
                "{}  {:<16} {:<16} {}",
                event.timestamp.to_rfc3339(),
                event.category,
                event.name,
                event.data
            );
        }
        return Ok(());
    }

    let now = Timestamp::now();
    let day_ago = now.saturating_sub(Duration::from_secs(24 * 3600));
    let filter = SessionFilter::default()
        .from(day_ago)
        .to(now.saturating_add(Duration::from_secs(1)));
    let mut sessions = std::pin::pin!(client.sessions(filter));
    println!("sessions of the last 24 hours:");
    while let Some(s) = sessions.try_next().await? {
        println!(
            "{}  {} events  {} .. {}  {:?}",
            s.session_id,
            s.events,
            s.first.to_rfc3339(),
            s.last.to_rfc3339(),
            s.categories
        );
    }
    let rejects = ErrorFilter::default().from(day_ago).page_size(20);
    let first: Vec<_> = client.errors(rejects).take(20).try_collect().await?;
    println!("rejects of the last 24 hours (first {}):", first.len());
    for r in first {
        println!(
            "{}  {:<20} {} {}",
            r.received.to_rfc3339(),
            r.code,
            r.pointer,
            r.message
        );
    }
    Ok(())
}
