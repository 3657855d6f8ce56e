//! Binding and serving HTTP. A taken port is reported with the address and the option
//! that set it, and serving stops gracefully when the shutdown token is cancelled.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

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

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets requests in
/// flight finish for at most `grace` before returning.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    grace: Duration,
) -> Result<(), ServeError> {
    let stopping = shutdown.clone();
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { stopping.cancelled().await });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        result = &mut server => return result.map_err(ServeError::Serve),
        _ = shutdown.cancelled() => {}
    }
    match tokio::time::timeout(grace, server).await {
        Ok(result) => result.map_err(ServeError::Serve),
        Err(_) => {
            tracing::warn!(
                grace_secs = grace.as_secs_f64(),
                "requests still in flight after the grace period; closing them"
            );
            Ok(())
        }
    }
}
