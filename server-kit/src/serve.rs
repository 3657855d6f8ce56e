//! Binding and serving HTTP. A taken port is reported with the address and the option
//! that set it, serving stops gracefully when the shutdown token is cancelled, and
//! every connection is bounded by [`HttpLimits`] (header read timeout, header size
//! and count), so a slow or hostile client cannot hold a connection open for nothing.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tower::{Service, ServiceExt};

/// Errors of binding or serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr} (set by {option}): {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The flag or environment variable that chose it, for the operator.
        option: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// Binds `addr`, naming `option` (e.g. `--listen / EYE_GATEWAY_LISTEN`) in the error.
pub async fn bind(addr: SocketAddr, option: &'static str) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr,
            option,
            source,
        })
}

/// What one connection may make the server wait for or hold in memory
/// before its request even starts: the defence against slow-loris clients
/// and oversized headers. Bodies have their own limits in each service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Longest a client may take to send a request's headers, from the first
    /// byte; slower connections are closed.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers) in bytes; larger is
    /// answered 431. At least [`MIN_HEADER_BYTES`] (hyper's floor).
    pub max_header_bytes: usize,
    /// Most header fields in one request; more is answered 431.
    pub max_headers: usize,
}

/// The smallest `max_header_bytes` the HTTP/1 server accepts.
pub const MIN_HEADER_BYTES: usize = 8192;

impl Default for HttpLimits {
    /// 10 s for the headers, 16 KiB and 100 fields at most.
    fn default() -> HttpLimits {
        HttpLimits {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_headers: 100,
        }
    }
}

/// Serves `router` on `listener` with the default [`HttpLimits`] until
/// `shutdown` is cancelled, then lets requests in flight finish for at most
/// `grace` before returning.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    grace: Duration,
) -> Result<(), ServeError> {
    serve_with(listener, router, shutdown, grace, HttpLimits::default()).await
}

/// [`serve`] with explicit limits. HTTP/1.1 only; handlers can take
/// `ConnectInfo<SocketAddr>`.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    grace: Duration,
    limits: HttpLimits,
) -> Result<(), ServeError> {
    let mut make_service = router.into_make_service_with_connect_info::<SocketAddr>();
    // Each connection task holds a receiver of `closing` and watches `stop`;
    // `closing.closed()` resolves once every connection has ended.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (closing_tx, closing_rx) = watch::channel(());
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::error!(%error, "cannot accept connections; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let service = match make_service.call(remote).await {
            Ok(service) => service,
            Err(never) => match never {},
        };
        let service = TowerToHyperService::new(
            service.map_request(|request: Request<Incoming>| request.map(Body::new)),
        );
        let mut stop = stop_rx.clone();
        let closing = closing_rx.clone();
        tokio::spawn(async move {
            let _closing = closing;
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES))
                .max_headers(limits.max_headers);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(error) = result {
                            tracing::debug!(%error, %remote, "connection ended with an error");
                        }
                        break;
                    }
                    changed = stop.changed() => {
                        connection.as_mut().graceful_shutdown();
                        if changed.is_err() {
                            // The server is gone; finish the connection alone.
                            (&mut connection).await.ok();
                            break;
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    drop(closing_rx);
    let _ = stop_tx.send(true);
    match tokio::time::timeout(grace, closing_tx.closed()).await {
        Ok(()) => Ok(()),
        Err(_) => {
            tracing::warn!(
                grace_secs = grace.as_secs_f64(),
                connections = closing_tx.receiver_count(),
                "requests still in flight after the grace period; closing them"
            );
            Ok(())
        }
    }
}

fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
