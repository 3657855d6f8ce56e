//! The gateway's configuration: flags with environment-variable fallbacks and
//! documented defaults (`eye-gateway --help` lists them all).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use eye_contract::reject::DEFAULT_RAW_CAP;
use eye_contract::validator::{DEFAULT_MAX_DEPTH, DEFAULT_MAX_EVENT_BYTES};
use eye_contract::{Limits, TimeRules};
use eye_server_kit::args::{LogArgs, NatsArgs};
use eye_server_kit::jetstream::StreamArgs;
use eye_server_kit::service::ServiceConfig;

/// Default cap on a request body, compressed or decompressed: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default cap on the events of one request.
pub const DEFAULT_MAX_EVENTS_PER_REQUEST: usize = 1000;
/// Default cap on events being published (sent, not yet acknowledged) at once.
pub const DEFAULT_MAX_INFLIGHT_PUBLISHES: usize = 10_000;

/// Everything `eye-gateway` can be told.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address of the HTTP ingest API and of /healthz, /readyz, /metrics.
    #[arg(long, env = "EYE_GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory of the JSON Schemas, one file per event category (read again on SIGHUP).
    #[arg(long, env = "EYE_SCHEMAS_DIR", default_value = "schemas")]
    pub schemas_dir: PathBuf,
    /// TOML file of the registered clients and their credentials.
    #[arg(long, env = "EYE_CLIENTS_FILE", default_value = "deploy/clients.toml")]
    pub clients_file: PathBuf,
    /// Seconds requests in flight may take to finish after a shutdown signal.
    #[arg(long, env = "EYE_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    /// Request and event limits.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Signed requests and the HTTP server's header limits.
    #[command(flatten)]
    pub security: SecurityArgs,
    /// Publishing to JetStream.
    #[command(flatten)]
    pub publish: PublishArgs,
    /// Connection to NATS.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// The JetStream streams, created or updated at start-up.
    #[command(flatten)]
    pub stream: StreamArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

/// What one request and one event may be.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Largest request body in bytes, checked before and after gzip decompression.
    #[arg(long, env = "EYE_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// How long a sender may take to send a whole body (e.g. `30s`); slower is 408.
    #[arg(long, env = "EYE_BODY_READ_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub body_read_timeout: Duration,
    /// Most events in one request (batch or NDJSON).
    #[arg(long, env = "EYE_MAX_EVENTS_PER_REQUEST", default_value_t = DEFAULT_MAX_EVENTS_PER_REQUEST, value_name = "N")]
    pub max_events_per_request: usize,
    /// Largest single event in bytes, as sent.
    #[arg(long, env = "EYE_MAX_EVENT_BYTES", default_value_t = DEFAULT_MAX_EVENT_BYTES, value_name = "BYTES")]
    pub max_event_bytes: usize,
    /// Deepest nesting of objects and arrays in one event.
    #[arg(long, env = "EYE_MAX_JSON_DEPTH", default_value_t = DEFAULT_MAX_DEPTH, value_name = "N")]
    pub max_json_depth: usize,
    /// How far in the future an event's timestamp may be (clock skew), e.g. `5m`.
    #[arg(long, env = "EYE_MAX_CLOCK_SKEW", default_value = "5m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub max_clock_skew: Duration,
    /// How old an event may be, e.g. `30d`; unset (the default) accepts any age
    /// back to 1970, since historical imports are normal.
    #[arg(long, env = "EYE_MAX_EVENT_AGE", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub max_event_age: Option<Duration>,
}

/// Signed requests and the bounds of a connection before its request starts.
#[derive(Debug, Clone, clap::Args)]
pub struct SecurityArgs {
    /// Replay window of signed requests: how far `X-Eye-Timestamp` may be from
    /// the gateway's clock, behind or ahead (e.g. `5m`). Outside it is 401.
    #[arg(long, env = "EYE_SIGNATURE_WINDOW", default_value = "5m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub signature_window: Duration,
    /// Longest a client may take to send a request's headers (e.g. `10s`);
    /// slower connections are closed (slow-loris defence).
    #[arg(long, env = "EYE_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers) in bytes, at least
    /// 8192; larger is answered 431.
    #[arg(long, env = "EYE_MAX_HEADER_BYTES", default_value_t = DEFAULT_MAX_HEADER_BYTES, value_name = "BYTES")]
    pub max_header_bytes: usize,
}

/// Default of `--max-header-bytes`: 16 KiB.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;

/// How accepted events and rejects reach JetStream.
#[derive(Debug, Clone, clap::Args)]
pub struct PublishArgs {
    /// How long a request waits for JetStream to acknowledge its events; events
    /// not acknowledged by then get the retryable code `publish_timeout`.
    #[arg(long, env = "EYE_PUBLISH_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub publish_timeout: Duration,
    /// Most events being published at once over all requests; a request that would
    /// exceed it is answered 503 with Retry-After instead of queueing.
    #[arg(long, env = "EYE_MAX_INFLIGHT_PUBLISHES", default_value_t = DEFAULT_MAX_INFLIGHT_PUBLISHES, value_name = "N")]
    pub max_inflight_publishes: usize,
    /// Bytes of a rejected event's raw body kept in its reject record.
    #[arg(long, env = "EYE_REJECT_RAW_CAP", default_value_t = DEFAULT_RAW_CAP, value_name = "BYTES")]
    pub reject_raw_cap: usize,
}

/// A configuration value that cannot work, named by its flag.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {option} {problem}")]
pub struct ConfigError {
    /// The flag and environment variable.
    pub option: &'static str,
    /// What is wrong with its value.
    pub problem: String,
}

impl Config {
    /// Checks the values no flag parser can check alone.
    pub fn check(&self) -> Result<(), ConfigError> {
        let positive = [
            (
                "--max-body-bytes / EYE_MAX_BODY_BYTES",
                self.limits.max_body_bytes,
            ),
            (
                "--max-events-per-request / EYE_MAX_EVENTS_PER_REQUEST",
                self.limits.max_events_per_request,
            ),
            (
                "--max-event-bytes / EYE_MAX_EVENT_BYTES",
                self.limits.max_event_bytes,
            ),
            (
                "--max-json-depth / EYE_MAX_JSON_DEPTH",
                self.limits.max_json_depth,
            ),
            (
                "--max-inflight-publishes / EYE_MAX_INFLIGHT_PUBLISHES",
                self.publish.max_inflight_publishes,
            ),
        ];
        for (option, value) in positive {
            if value == 0 {
                return Err(ConfigError {
                    option,
                    problem: "must be at least 1".to_owned(),
                });
            }
        }
        // The semaphore hands out u32 permits.
        if u32::try_from(self.publish.max_inflight_publishes).is_err() {
            return Err(ConfigError {
                option: "--max-inflight-publishes / EYE_MAX_INFLIGHT_PUBLISHES",
                problem: format!("must be at most {}", u32::MAX),
            });
        }
        // A request's events are admitted all at once, so one full request must fit.
        if self.publish.max_inflight_publishes < self.limits.max_events_per_request {
            return Err(ConfigError {
                option: "--max-inflight-publishes / EYE_MAX_INFLIGHT_PUBLISHES",
                problem: format!(
                    "must be at least --max-events-per-request ({})",
                    self.limits.max_events_per_request
                ),
            });
        }
        if self.security.signature_window.is_zero() {
            return Err(ConfigError {
                option: "--signature-window / EYE_SIGNATURE_WINDOW",
                problem: "must be longer than zero".to_owned(),
            });
        }
        if self.security.header_read_timeout.is_zero() {
            return Err(ConfigError {
                option: "--header-read-timeout / EYE_HEADER_READ_TIMEOUT",
                problem: "must be longer than zero".to_owned(),
            });
        }
        if self.security.max_header_bytes < eye_server_kit::serve::MIN_HEADER_BYTES {
            return Err(ConfigError {
                option: "--max-header-bytes / EYE_MAX_HEADER_BYTES",
                problem: format!(
                    "must be at least {}",
                    eye_server_kit::serve::MIN_HEADER_BYTES
                ),
            });
        }
        if self.publish.publish_timeout.is_zero() {
            return Err(ConfigError {
                option: "--publish-timeout / EYE_PUBLISH_TIMEOUT",
                problem: "must be longer than zero".to_owned(),
            });
        }
        Ok(())
    }

    /// The HTTP server's per-connection limits.
    pub fn http_limits(&self) -> eye_server_kit::serve::HttpLimits {
        eye_server_kit::serve::HttpLimits {
            header_read_timeout: self.security.header_read_timeout,
            max_header_bytes: self.security.max_header_bytes,
            ..eye_server_kit::serve::HttpLimits::default()
        }
    }

    /// The contract's per-event limits.
    pub fn event_limits(&self) -> Limits {
        Limits {
            max_event_bytes: self.limits.max_event_bytes,
            max_depth: self.limits.max_json_depth,
        }
    }

    /// The contract's timestamp rules.
    pub fn time_rules(&self) -> TimeRules {
        TimeRules {
            max_future_skew: self.limits.max_clock_skew,
            max_age: self.limits.max_event_age,
        }
    }
}

impl ServiceConfig for Config {
    const LISTEN_OPTION: &'static str = "--listen / EYE_GATEWAY_LISTEN";
    fn listen(&self) -> SocketAddr {
        self.listen
    }
    fn log(&self) -> &LogArgs {
        &self.log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        eye_testkit::service::parse_config(args)
    }

    #[test]
    fn command_line_is_well_formed() {
        eye_server_kit::service::command::<Config>(crate::BINARY, crate::ABOUT).debug_assert();
    }

    #[test]
    fn help_lists_every_option_with_its_variable() {
        let help = eye_server_kit::service::command::<Config>(crate::BINARY, crate::ABOUT)
            .render_long_help()
            .to_string();
        for option in [
            "--clients-file",
            "EYE_CLIENTS_FILE",
            "--max-body-bytes",
            "--max-events-per-request",
            "--max-event-bytes",
            "--max-json-depth",
            "--publish-timeout",
            "--reject-raw-cap",
            "--max-inflight-publishes",
            "--stream-max-bytes",
            "--nats-url",
            "--signature-window",
            "EYE_SIGNATURE_WINDOW",
            "--header-read-timeout",
            "--max-header-bytes",
        ] {
            assert!(
                help.contains(option),
                "{option} missing from --help:\n{help}"
            );
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = parse(&[]);
        assert_eq!(c.limits.max_body_bytes, 1024 * 1024);
        assert_eq!(c.limits.max_events_per_request, 1000);
        assert_eq!(c.limits.max_event_bytes, 32 * 1024);
        assert_eq!(c.limits.max_json_depth, 32);
        assert_eq!(c.publish.publish_timeout, Duration::from_secs(5));
        assert_eq!(c.publish.reject_raw_cap, 4096);
        assert_eq!(c.time_rules(), TimeRules::default());
        assert_eq!(c.security.signature_window, Duration::from_secs(300));
        assert_eq!(c.security.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.security.max_header_bytes, 16 * 1024);
        assert!(c.check().is_ok());
    }

    #[test]
    fn unusable_values_are_named() {
        let e = parse(&["--max-events-per-request", "0"])
            .check()
            .expect_err("zero events");
        assert!(e.to_string().contains("--max-events-per-request"), "{e}");
        let e = parse(&["--publish-timeout", "0s"])
            .check()
            .expect_err("zero timeout");
        assert!(e.to_string().contains("EYE_PUBLISH_TIMEOUT"), "{e}");
        let e = parse(&["--max-header-bytes", "100"])
            .check()
            .expect_err("below hyper's floor");
        assert!(e.to_string().contains("at least 8192"), "{e}");
        let e = parse(&["--max-inflight-publishes", "999"])
            .check()
            .expect_err("a full request must fit");
        assert!(
            e.to_string().contains("--max-events-per-request (1000)"),
            "{e}"
        );
    }
}
