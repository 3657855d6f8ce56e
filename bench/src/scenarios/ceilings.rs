//! The references: what NATS JetStream and ClickHouse take on this machine
//! with nothing in front of them.
//!
//! - **JetStream**: the gateway's payloads (the normalized events as JSON) with
//!   its headers (`Nats-Msg-Id`, event id, client id), published pipelined
//!   (a window of acknowledgements awaited at once) to a stream with the
//!   settings of `EYE_EVENTS` (server-kit's defaults) but its own name and
//!   subjects and a 1 GiB byte limit, deleted afterwards, so `EYE_EVENTS` is
//!   never touched.
//! - **ClickHouse**: the consumer's rows, through the consumer's insert path
//!   (`consumer::store::Store`), into a scratch database migrated with the
//!   consumer's migrations (so `events` and its materialized view, as in
//!   production), dropped afterwards. Batches of the consumer's batch size,
//!   one after another as the consumer does; then 10,000-row batches, to
//!   show what batch size buys.

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, message::PublishMessage};
use async_nats::HeaderMap;
use bytes::Bytes;
use consumer::rows::EventRow;
use consumer::store::Store;
use eye_contract::{category_to_token, dedup_id, headers, Timestamp};
use eye_server_kit::jetstream::StreamArgs;
use futures::stream::{FuturesUnordered, StreamExt};

use crate::traffic::Traffic;
use crate::{Context, Results};

/// Distinct events prepared for both ceilings (cycled when more are needed).
const PREPARED: usize = 20_000;
/// Each publish or insert waits at most this long.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Byte limit of the ceiling's stream (see where it is used).
const CEILING_STREAM_BYTES: i64 = 1024 * 1024 * 1024;
/// The larger batch tried against ClickHouse.
const LARGE_BATCH: usize = 10_000;

/// A prepared message.
struct Prepared {
    token: String,
    event_id: String,
    payload: Bytes,
    row: EventRow,
}

/// Runs both ceilings.
pub async fn run(ctx: &Context, results: &mut Results) -> anyhow::Result<()> {
    let client = ctx.config.client_id.as_str();
    let mut traffic = Traffic::new(0xCE11, ctx.plan.sessions);
    let now = Timestamp::now();
    let count = PREPARED.min(ctx.plan.nats_messages.max(ctx.plan.clickhouse_rows));
    let mut prepared = Vec::with_capacity(count);
    for _ in 0..count {
        let event = traffic.sample(now).to_event(client);
        let payload = Bytes::from(serde_json::to_vec(&event)?);
        prepared.push(Prepared {
            token: category_to_token(&event.category),
            event_id: event.event_id.clone(),
            payload,
            row: EventRow::new(client, event, now)
                .map_err(|e| anyhow::anyhow!("a generated event is not storable: {e}"))?,
        });
    }
    let mean = prepared.iter().map(|p| p.payload.len()).sum::<usize>() / prepared.len().max(1);
    results.set("event_payload_mean_bytes", mean as f64);

    let nats = jetstream_ceiling(ctx, &prepared).await;
    match nats {
        Ok(rate) => results.set("jetstream_publish_ceiling_per_s", rate),
        Err(error) => results.error(format!("JetStream ceiling: {error:#}")),
    }
    let batch = ctx.config.consumer_batch_size.max(1);
    let rows: Vec<&EventRow> = prepared.iter().map(|p| &p.row).collect();
    let clickhouse = clickhouse_ceiling(ctx, &rows, &[batch, LARGE_BATCH]).await?;
    results.set("clickhouse_insert_ceiling_rows_per_s", clickhouse[0]);
    results.set(
        &format!("clickhouse_insert_rows_per_s_batch_{LARGE_BATCH}"),
        clickhouse[1],
    );
    Ok(())
}

/// The settings of `EYE_EVENTS` with every option at its default.
fn default_stream_args() -> anyhow::Result<StreamArgs> {
    use clap::{FromArgMatches, Parser};
    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        streams: StreamArgs,
    }
    let matches = <Wrapper as clap::CommandFactory>::command()
        .no_binary_name(true)
        .try_get_matches_from(Vec::<String>::new())?;
    Ok(Wrapper::from_arg_matches(&matches)?.streams)
}

/// Messages acknowledged per second.
async fn jetstream_ceiling(ctx: &Context, prepared: &[Prepared]) -> anyhow::Result<f64> {
    let plan = &ctx.plan;
    let client = ctx.config.client_id.as_str();
    let nats = async_nats::connect(&ctx.config.nats_url)
        .await
        .with_context(|| format!("connecting to {}", ctx.config.nats_url))?;
    let js = jetstream::ContextBuilder::new()
        .timeout(OPERATION_TIMEOUT)
        .ack_timeout(OPERATION_TIMEOUT)
        .max_ack_inflight(plan.nats_window.max(1))
        .build(nats.clone());
    let pid = std::process::id();
    let mut config = default_stream_args()?.events_config();
    config.name = format!("EYE_BENCH_CEILING_{pid}");
    let prefix = format!("eyebench.{pid}.events.{client}");
    config.subjects = vec![format!("eyebench.{pid}.events.>")];
    // JetStream reserves a stream's byte limit up front; the 8 GiB of the
    // default may not fit beside EYE_EVENTS's own reservation. A limit is not
    // consulted per message, so a smaller one changes nothing measured.
    config.max_bytes = config.max_bytes.min(CEILING_STREAM_BYTES);
    let name = config.name.clone();
    let _absent = js.delete_stream(&name).await;
    js.create_stream(config)
        .await
        .with_context(|| format!("creating stream {name}"))?;
    let subjects: Vec<_> = prepared
        .iter()
        .map(|p| async_nats::Subject::from(format!("{prefix}.{}", p.token)))
        .collect();

    let mut inflight = FuturesUnordered::new();
    let (mut acked, mut failed) = (0u64, 0u64);
    let started = Instant::now();
    let mut sent = 0usize;
    while sent < plan.nats_messages && started.elapsed() < plan.nats_time {
        let i = sent % prepared.len();
        let p = &prepared[i];
        // Past the first round the same payload goes again under a new id,
        // so JetStream stores it instead of dropping it as a duplicate.
        let event_id = if sent < prepared.len() {
            p.event_id.clone()
        } else {
            format!("{}.{}", p.event_id, sent / prepared.len())
        };
        let mut headers = HeaderMap::new();
        headers.insert(headers::EVENT_ID, event_id.as_str());
        headers.insert(headers::CLIENT_ID, client);
        let message = PublishMessage::build()
            .payload(p.payload.clone())
            .headers(headers)
            .message_id(dedup_id(client, &event_id));
        match js.send_publish(subjects[i].clone(), message).await {
            Ok(ack) => inflight.push(ack.into_future()),
            Err(_) => failed += 1,
        }
        sent += 1;
        while inflight.len() >= plan.nats_window {
            match inflight.next().await {
                Some(Ok(_)) => acked += 1,
                Some(Err(_)) => failed += 1,
                None => break,
            }
        }
    }
    while let Some(ack) = inflight.next().await {
        match ack {
            Ok(_) => acked += 1,
            Err(_) => failed += 1,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Err(error) = js.delete_stream(&name).await {
        eprintln!("eye-bench: warning: could not delete stream {name}: {error}");
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {sent} publishes failed");
    }
    Ok(acked as f64 / elapsed)
}

/// Rows per second for each batch size.
async fn clickhouse_ceiling(
    ctx: &Context,
    rows: &[&EventRow],
    batches: &[usize],
) -> anyhow::Result<Vec<f64>> {
    let plan = &ctx.plan;
    let database = format!("{}_bench_ceiling", ctx.config.clickhouse_database);
    let client = eye_server_kit::clickhouse::client(&ctx.config.clickhouse(&database));
    let drop = format!("DROP DATABASE IF EXISTS {database}");
    client
        .clone()
        .with_database("default")
        .query(&drop)
        .execute()
        .await
        .context("dropping the scratch database")?;
    consumer::migrations::migrate(&client, &database)
        .await
        .context("migrating the scratch database")?;
    let mut registry = prometheus_client::registry::Registry::default();
    let store = Store::new(
        client.clone(),
        OPERATION_TIMEOUT,
        consumer::metrics::Metrics::register(&mut registry),
    );

    let mut rates = Vec::new();
    for &batch in batches {
        let started = Instant::now();
        let mut inserted = 0usize;
        let mut next = 0usize;
        while inserted < plan.clickhouse_rows && started.elapsed() < plan.clickhouse_time {
            let n = batch.min(plan.clickhouse_rows - inserted);
            let chunk: Vec<&EventRow> = (0..n).map(|k| rows[(next + k) % rows.len()]).collect();
            next = (next + n) % rows.len();
            store
                .insert("events", &chunk)
                .await
                .map_err(|failure| anyhow::anyhow!("insert of {n} rows: {failure:?}"))?;
            inserted += n;
        }
        rates.push(inserted as f64 / started.elapsed().as_secs_f64());
    }
    if let Err(error) = client.with_database("default").query(&drop).execute().await {
        eprintln!("eye-bench: warning: could not drop {database}: {error}");
    }
    Ok(rates)
}
