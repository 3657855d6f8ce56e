//! Queries on millions of stored events.
//!
//! **Load.** `events` is filled up to the planned count (10 million) straight
//! in ClickHouse with `INSERT … SELECT` from `numbers()`, in chunks, as the
//! default user: the same table and columns the consumer writes (the
//! materialized view fills `events_by_category` as for the consumer's
//! inserts). Shape: sessions of about 16 events within a few minutes, session
//! start times spread over 30 days of October 2025, the category mix of the
//! live traffic (page interaction 60%, party 25%, form interaction 15%), and
//! `data` JSON of 200–400 bytes. The SQL runs on ClickHouse 18.16 and current
//! versions alike (no DateTime64, no JSON functions).
//!
//! **Settle.** Then it waits, boundedly, for ClickHouse's background merges
//! of the loaded parts to finish, so the reads see the table as it is most
//! of the time, not in the minute after a 10-million-row load.
//!
//! **Reads**, through the query service with the read token, one at a time
//! (latency, not throughput), each kind at least 200 requests: a session's
//! timeline, one category over one hour, and the sessions of one hour.
//!
//! **Export.** Then one NDJSON export of about a million rows (`party`, the
//! first 14 days), streamed and counted, never kept; the query service's
//! peak memory (`query_rss_mb`, read at the end of the run) includes it.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::http::Conn;
use crate::rng::Rng;
use crate::stats::Latencies;
use crate::{Context, Results};

/// 2025-10-01T00:00:00Z: the start of the loaded events' time range.
const LOAD_START_S: i64 = 1_759_276_800;
/// 30 days.
const LOAD_SPAN_S: i64 = 30 * 86_400;
/// Events per session, on average.
const EVENTS_PER_SESSION: u64 = 16;
const CATEGORIES: [&str; 3] = ["page interaction", "party", "form interaction"];
/// Session ids picked for the timeline reads.
const SESSIONS_PICKED: usize = 1000;
/// Days of `party` events exported as NDJSON: about 1.07 million rows of the
/// 10 million loaded (13 days gave 994,963).
const EXPORT_DAYS: i64 = 14;
/// Longest the export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the load, then the reads.
pub async fn run(ctx: &Context, results: &mut Results) -> anyhow::Result<()> {
    load(ctx, results).await?;
    settle(ctx, results).await?;
    read(ctx, results).await
}

/// Waits (at most `plan.settle_time`) until ClickHouse has no merge running
/// on the database: the bulk load leaves many parts that background merges
/// combine for a while, and reads measured meanwhile would measure the merges.
async fn settle(ctx: &Context, results: &mut Results) -> anyhow::Result<()> {
    let client =
        eye_server_kit::clickhouse::client(&ctx.config.clickhouse(&ctx.config.clickhouse_database));
    let started = Instant::now();
    loop {
        let merges: u64 = client
            .query("SELECT count() FROM system.merges WHERE database = ?")
            .bind(&ctx.config.clickhouse_database)
            .fetch_one()
            .await
            .context("reading system.merges")?;
        if merges == 0 || started.elapsed() >= ctx.plan.settle_time {
            results.set("merges_running_before_reads", merges as f64);
            results.set("merges_wait_seconds", started.elapsed().as_secs_f64());
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The INSERT … SELECT of rows `start .. start + count` of the synthetic set
/// of `sessions` sessions, for `client`.
pub fn load_statement(client: &str, start: u64, count: u64, sessions: u64) -> String {
    // Identifiers from hashes of the row number: `eh` (event) and `sh`
    // (session) are 32 lowercase hex digits, cut into UUID form. Groups of 4
    // consecutive rows share a session key `k`, so a session gets about
    // EVENTS_PER_SESSION events in a few groups. The statement goes through
    // the crate's `query`, where `??` stands for a literal `?`.
    let uuid = |h: &str| {
        format!("concat(substring({h},1,8),'-',substring({h},9,4),'-',substring({h},13,4),'-',substring({h},17,4),'-',substring({h},21,12))")
    };
    let event_id = uuid("eh");
    let session = uuid("sh");
    format!(
        "INSERT INTO events (event_id, client_id, session_id, category, name, data, timestamp, timestamp_us, received_at, received_us) \
SELECT event_id, client_id, toUUID(sid), category, name, data, \
toDateTime(intDiv(ts_us, 1000000), 'UTC'), ts_us, toDateTime(intDiv(ts_us + 80000, 1000000), 'UTC'), ts_us + 80000 \
FROM ( \
SELECT {event_id} AS event_id, '{client}' AS client_id, {session} AS sid, \
r % 100 AS roll, \
multiIf(roll < 60, 'page interaction', roll < 85, 'party', 'form interaction') AS category, \
multiIf(roll < 45, 'pageview', roll < 60, 'cta click', roll < 85, concat('App', toString(k % 5)), 'submit') AS name, \
concat('{{\"host\":\"www.example', toString(k % 8), '.com\",\"path\":\"/products/', substring(eh, 1, 12), '/item-', toString(r % 100000), \
'??utm_source=newsletter&utm_medium=email&utm_campaign=summer-sale&gclid=', sh, substring(eh, 13, 20), '\"', \
multiIf(roll < 45, '', roll < 60, ',\"element\":\"buy now button\"', roll < 85, '', \
concat(',\"form\":{{\"email\":\"user', toString(r % 1000000), '@example.com\",\"name\":\"Visitor\",\"plan\":\"team\",\"message\":\"Hello, we would like a demo for our team next week.\"}}')), '}}') AS data, \
toInt64({LOAD_START_S} + intHash64(k) % {LOAD_SPAN_S}) * 1000000 + toInt64(intHash64(n) % 180000000) AS ts_us \
FROM ( \
SELECT number AS n, intHash64(intDiv(number, 4)) % {sessions} AS k, \
lower(hex(sipHash128(toString(number)))) AS eh, \
lower(hex(sipHash128(concat('s', toString(k))))) AS sh, \
intHash64(number + 1) AS r \
FROM numbers({start}, {count})))"
    )
}

async fn load(ctx: &Context, results: &mut Results) -> anyhow::Result<()> {
    let plan = &ctx.plan;
    let client =
        eye_server_kit::clickhouse::client(&ctx.config.clickhouse(&ctx.config.clickhouse_database));
    let have: u64 = client
        .query("SELECT count() FROM events")
        .fetch_one()
        .await
        .context("counting events")?;
    let sessions = (plan.stored_events / EVENTS_PER_SESSION).max(1);
    let started = Instant::now();
    // The synthetic rows already there (a run against a reused stack).
    let loaded: u64 = client
        .query("SELECT count() FROM events WHERE client_id = ? AND timestamp_us < ?")
        .bind(&ctx.config.client_id)
        .bind((LOAD_START_S + LOAD_SPAN_S + 86_400) * 1_000_000)
        .fetch_one()
        .await
        .context("counting loaded events")?;
    let mut next = loaded;
    let mut total = have;
    while total < plan.stored_events {
        if started.elapsed() >= plan.load_time {
            anyhow::bail!(
                "the bulk load reached {total} of {} events in {:?}",
                plan.stored_events,
                plan.load_time
            );
        }
        let count = plan.load_chunk.min(plan.stored_events - total);
        let statement = load_statement(&ctx.config.client_id, next, count, sessions);
        client
            .query(&statement)
            .with_setting("max_execution_time", plan.load_time.as_secs().to_string())
            .execute()
            .await
            .with_context(|| format!("loading rows {next}..{}", next + count))?;
        next += count;
        total += count;
    }
    results.set("stored_events", total as f64);
    results.set("bulk_load_seconds", started.elapsed().as_secs_f64());
    Ok(())
}

async fn read(ctx: &Context, results: &mut Results) -> anyhow::Result<()> {
    let plan = &ctx.plan;
    let client =
        eye_server_kit::clickhouse::client(&ctx.config.clickhouse(&ctx.config.clickhouse_database));
    // Sessions of the loaded set, picked by a hash (not by sort order, which
    // would put them all in the same corner of the table).
    let sessions: Vec<String> = client
        .query(
            "SELECT DISTINCT toString(session_id) FROM events \
             WHERE client_id = ? AND timestamp_us < ? AND sipHash64(toString(session_id)) % 101 = 7 \
             LIMIT ?",
        )
        .bind(&ctx.config.client_id)
        .bind((LOAD_START_S + LOAD_SPAN_S + 86_400) * 1_000_000)
        .bind(SESSIONS_PICKED as u64)
        .fetch_all()
        .await
        .context("picking sessions")?;
    if sessions.is_empty() {
        anyhow::bail!("no loaded sessions to read");
    }
    let mut rng = Rng::new(0x0E1);
    let n = plan.query_requests;

    let mut paths = Vec::with_capacity(n);
    for _ in 0..n {
        let session = &sessions[rng.index(sessions.len())];
        paths.push(format!("/v1/sessions/{session}/events"));
    }
    let timeline = measure(ctx, &paths, plan.query_time).await?;
    report(results, "session_query", timeline);

    let hour = |rng: &mut Rng| {
        let hours = u64::try_from(LOAD_SPAN_S / 3600 - 1).unwrap_or(1);
        let from = LOAD_START_S + i64::try_from(rng.below(hours)).unwrap_or(0) * 3600;
        (rfc3339(from), rfc3339(from + 3600))
    };
    let mut paths = Vec::with_capacity(n);
    for _ in 0..n {
        let category = CATEGORIES[rng.index(CATEGORIES.len())].replace(' ', "%20");
        let (from, to) = hour(&mut rng);
        paths.push(format!(
            "/v1/events?category={category}&from={from}&to={to}"
        ));
    }
    let category = measure(ctx, &paths, plan.query_time).await?;
    report(results, "category_hour_query", category);

    let mut paths = Vec::with_capacity(n);
    for _ in 0..n {
        let (from, to) = hour(&mut rng);
        paths.push(format!("/v1/sessions?from={from}&to={to}"));
    }
    let listing = measure(ctx, &paths, plan.query_time).await?;
    report(results, "sessions_listing", listing);
    export(ctx, results).await
}

/// One NDJSON export of about a million rows; its rows, time and rate.
async fn export(ctx: &Context, results: &mut Results) -> anyhow::Result<()> {
    let path = format!(
        "/v1/events?category=party&from={}&to={}",
        rfc3339(LOAD_START_S),
        rfc3339(LOAD_START_S + EXPORT_DAYS * 86_400)
    );
    let mut conn = Conn::open(&ctx.query).await?;
    let started = Instant::now();
    let export = conn
        .export(&path, &ctx.read_bearer, EXPORT_TIMEOUT)
        .await
        .context("NDJSON export")?;
    let seconds = started.elapsed().as_secs_f64();
    if export.status != 200 {
        results.error(format!("NDJSON export: status {}", export.status));
        return Ok(());
    }
    results.set("export_rows", export.lines as f64);
    results.set("export_mb", export.bytes as f64 / 1e6);
    results.set("export_seconds", seconds);
    results.set("export_rows_per_s", export.lines as f64 / seconds.max(1e-9));
    Ok(())
}

/// What one kind of read measured.
struct Measured {
    latencies: Latencies,
    empty: u64,
    failed: u64,
}

/// GETs each path in turn on one connection, within `time`.
async fn measure(ctx: &Context, paths: &[String], time: Duration) -> anyhow::Result<Measured> {
    let mut conn = Conn::open(&ctx.query).await?;
    let mut measured = Measured {
        latencies: Latencies::with_capacity(paths.len()),
        empty: 0,
        failed: 0,
    };
    let started = Instant::now();
    for path in paths {
        if started.elapsed() >= time {
            break;
        }
        let sent = Instant::now();
        match conn.get(path, Some(&ctx.read_bearer)).await {
            Ok(answer) if answer.status == 200 => {
                measured.latencies.record(sent.elapsed());
                let rows = serde_json::from_slice::<serde_json::Value>(&answer.body)
                    .ok()
                    .and_then(|v| {
                        let member = if path.starts_with("/v1/sessions?") {
                            "sessions"
                        } else {
                            "events"
                        };
                        v.get(member)?.as_array().map(Vec::len)
                    })
                    .unwrap_or(0);
                measured.empty += u64::from(rows == 0);
            }
            Ok(_) => measured.failed += 1,
            Err(_) => {
                measured.failed += 1;
                conn = Conn::open(&ctx.query).await?;
            }
        }
    }
    Ok(measured)
}

fn report(results: &mut Results, name: &str, mut m: Measured) {
    results.set(&format!("{name}_requests"), m.latencies.len() as f64);
    results.set_opt(&format!("{name}_p50_ms"), m.latencies.percentile_ms(50.0));
    results.set_opt(&format!("{name}_p99_ms"), m.latencies.percentile_ms(99.0));
    results.set(&format!("{name}_empty_answers"), m.empty as f64);
    if m.failed > 0 {
        results.error(format!("{name}: {} requests failed", m.failed));
    }
}

/// `2025-10-01T00:00:00Z`.
fn rfc3339(seconds: i64) -> String {
    eye_contract::Timestamp::from_micros(seconds * 1_000_000)
        .to_rfc3339()
        .replace(".000000Z", "Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_print_as_rfc3339() {
        assert_eq!(rfc3339(LOAD_START_S), "2025-10-01T00:00:00Z");
        assert_eq!(rfc3339(LOAD_START_S + 3600), "2025-10-01T01:00:00Z");
    }

    #[test]
    fn the_load_statement_names_every_column_once() {
        let sql = load_statement("demo", 0, 10, 1);
        assert!(sql.starts_with("INSERT INTO events (event_id, client_id, session_id"));
        assert!(sql.contains("FROM numbers(0, 10)"));
        // `??` is the crate's escape of a literal `?`; a lone `?` would be a
        // placeholder the crate expects a bound value for.
        assert!(
            !sql.replace("??", "").contains('?'),
            "no placeholders left for the crate to bind"
        );
    }
}
