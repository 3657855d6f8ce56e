//! Sends a few events of a new session to a running gateway and prints each
//! event's outcome, then the sender's counts.
//!
//! ```sh
//! ./deploy/local.sh up        # in another terminal
//! cargo run -p eye-client --example send -- 10
//! ```
//!
//! Environment: `EYE_GATEWAY_URL` (default `http://127.0.0.1:8080`),
//! `EYE_CLIENT_ID` and `EYE_HMAC_SECRET` (default: the demo client `demo`,
//! `eye_demo_secret`; requests are signed), or `EYE_WRITE_KEY` to send with a
//! write key instead. The first argument is how many events (default 5).

use std::time::Duration;

use eye_client::{BatchConfig, Client, Event, Timestamp, Uuid};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: u32 = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 5,
    };
    let builder = Client::builder()
        .gateway_url(env("EYE_GATEWAY_URL", "http://127.0.0.1:8080"))
        .batching(BatchConfig {
            max_events: 100,
            linger: Duration::from_millis(10),
            ..Default::default()
        });
    let builder = match std::env::var("EYE_WRITE_KEY") {
        Ok(key) => builder.write_key(key),
        Err(_) => builder.hmac(
            env("EYE_CLIENT_ID", "demo"),
            env("EYE_HMAC_SECRET", "eye_demo_secret"),
        ),
    };
    let client = builder.build()?;

    let session = Uuid::new_v4();
    println!("session {session}");
    let mut receipts = Vec::new();
    for n in 0..count {
        let event = Event::new(session, "party", "AppName", Timestamp::now())
            .with_data(serde_json::json!({"host": "www.party.com", "path": format!("/page/{n}")}))
            .map_err(|_| "data must be a JSON object")?;
        receipts.push(client.send(event).await?);
    }
    for (n, receipt) in receipts.into_iter().enumerate() {
        match receipt.await {
            Ok(accepted) => println!("event {n}: stored as {}", accepted.event_id),
            Err(error) => println!("event {n}: not stored: {error}"),
        }
    }
    client.close().await?;
    println!("{:?}", client.stats());
    Ok(())
}
