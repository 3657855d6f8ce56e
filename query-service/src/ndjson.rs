//! NDJSON exports: rows streamed from ClickHouse's cursor into the response
//! body, one JSON object per line, never collected.
//!
//! Memory stays bounded: rows are written into a buffer that is handed to the
//! body every [`CHUNK_BYTES`], through a channel of [`CHANNEL_CHUNKS`]
//! chunks; a slow client fills the channel, which stops reading from
//! ClickHouse (back-pressure down to its socket). A client that goes away
//! closes the channel, which ends the task and the ClickHouse request.
//!
//! The status is decided before the first byte: the handler waits for the
//! first row (or the end of an empty result), so a failing or slow query is
//! still a problem+json answer. After that, a failure can only end the body:
//! a last line `{"error": {problem}}` and an aborted transfer, so a client
//! never takes a cut export for a complete one. When the `limit` stops an
//! export that had more rows, the last line is `{"next_cursor": "…"}`.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::answer::{Read, Reader, NDJSON};
use crate::error::ApiError;
use crate::rows::Output;

/// Bytes written before a chunk goes to the body.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks waiting for the client at most.
pub const CHANNEL_CHUNKS: usize = 4;

type Chunk = Result<Bytes, std::io::Error>;

/// Streams `read` as NDJSON.
pub async fn export<T: Output>(reader: &Reader, read: Read) -> Result<Response, ApiError> {
    let permit = reader.permit()?;
    let started = Instant::now();
    let wait = reader.query_timeout;
    let deadline = tokio::time::Instant::now() + reader.export_timeout;
    let mut cursor = reader
        .query(&read.statement, reader.export_timeout)
        .fetch::<T>()
        .map_err(|e| ApiError::from_clickhouse(e, wait))?;
    let first = match tokio::time::timeout(wait, cursor.next()).await {
        Ok(result) => result.map_err(|e| ApiError::from_clickhouse(e, wait))?,
        Err(_) => return Err(ApiError::Timeout(wait)),
    };
    reader
        .metrics
        .observe_query(read.route, started.elapsed(), 0);

    let (tx, mut rx) = mpsc::channel::<Chunk>(CHANNEL_CHUNKS);
    let metrics = reader.metrics.clone();
    tokio::spawn(async move {
        // Held until the export ends: it counts against the concurrency limit.
        let _permit = permit;
        let mut buf = Vec::with_capacity(CHUNK_BYTES + 4096);
        let mut answered = 0u64;
        let mut last: Option<T> = None;
        let mut next = first;
        let outcome: Result<(), ApiError> = loop {
            let Some(row) = next.take() else { break Ok(()) };
            if answered == read.limit {
                if let Some(last) = &last {
                    let cursor = read.binding.encode(&last.position());
                    buf.extend_from_slice(b"{\"next_cursor\":");
                    buf.extend_from_slice(serde_json::Value::from(cursor).to_string().as_bytes());
                    buf.extend_from_slice(b"}\n");
                }
                break Ok(());
            }
            row.write_json(&mut buf);
            buf.push(b'\n');
            answered += 1;
            last = Some(row);
            if buf.len() >= CHUNK_BYTES {
                let chunk = Bytes::from(std::mem::replace(
                    &mut buf,
                    Vec::with_capacity(CHUNK_BYTES + 4096),
                ));
                if tx.send(Ok(chunk)).await.is_err() {
                    // The client went away; dropping the cursor ends the query.
                    return;
                }
            }
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let limit = remaining.min(wait);
            next = match tokio::time::timeout(limit, cursor.next()).await {
                Ok(Ok(row)) => row,
                Ok(Err(e)) => break Err(ApiError::from_clickhouse(e, limit)),
                Err(_) => break Err(ApiError::Timeout(limit)),
            };
        };
        metrics.count_rows(read.route, answered);
        if let Err(error) = outcome {
            tracing::warn!(%error, rows = answered, "export failed after it started");
            let problem = serde_json::Value::Object(error.problem().body);
            buf.extend_from_slice(b"{\"error\":");
            buf.extend_from_slice(problem.to_string().as_bytes());
            buf.extend_from_slice(b"}\n");
            if tx.send(Ok(Bytes::from(buf))).await.is_err() {
                return;
            }
            // Let the body take and write the error line before the abort:
            // an error item ends the connection at once, dropping what the
            // server had not written yet.
            let drained = async {
                while tx.capacity() < CHANNEL_CHUNKS {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), drained).await;
            let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
            return;
        }
        if !buf.is_empty() {
            let _ = tx.send(Ok(Bytes::from(buf))).await;
        }
    });
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON))],
        Body::from_stream(stream),
    )
        .into_response())
}
