//! What every Eye service shares, so the three binaries stay thin.
//!
//! - [`args`]: command-line/environment options common to several binaries.
//! - [`telemetry`]: structured logging through `tracing-subscriber`.
//! - [`shutdown`]: SIGTERM/Ctrl-C turned into a cancellation token.
//! - [`ops`]: the `/healthz`, `/readyz` and `/metrics` endpoints and readiness checks.
//! - [`serve`]: binding a listener with a clear error and serving a router until shutdown,
//!   with header timeouts and size limits.
//! - [`service`]: the common `main` of the binaries.
//! - [`probe`]: the `healthcheck` subcommand used by container health checks.
//! - [`jetstream`]: the streams and their settings, created idempotently.
//! - [`clickhouse`]: a ClickHouse client with `TCP_NODELAY`.
//! - [`clients`]: the client registry (write keys, HMAC secrets, read tokens).
//! - [`reload`]: the registry in force, reloaded from its file on SIGHUP.
//! - [`schemas`]: the event schemas in force, reloaded from their directory on SIGHUP.
//! - [`signature`]: the HMAC-SHA256 request signature recipe and its checks.
//! - [`ratelimit`]: per-client token buckets.
//! - [`http`]: the bearer credential of a request, and the request counter.
//! - [`problem`]: problem+json (RFC 9457) answers for failed requests.

pub mod args;
pub mod clickhouse;
pub mod clients;
pub mod http;
pub mod jetstream;
pub mod ops;
pub mod probe;
pub mod problem;
pub mod ratelimit;
pub mod reload;
pub mod schemas;
pub mod serve;
pub mod service;
pub mod shutdown;
pub mod signature;
pub mod telemetry;
