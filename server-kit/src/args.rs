//! Options shared by several binaries, as `clap` argument groups that each binary
//! flattens into its own configuration. Every option has a flag, an environment
//! variable and a default, all shown by `--help`.

use std::time::Duration;

use crate::clickhouse::ClickHouseConfig;
use crate::telemetry::LogFormat;

/// Logging options.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log line format. The level filter comes from RUST_LOG (default `info`).
    #[arg(
        id = "log_format",
        value_name = "FORMAT",
        long = "log-format",
        env = "EYE_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub format: LogFormat,
}

/// Connection to NATS. Its `Debug` output hides the password.
#[derive(Clone, clap::Args)]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated for a cluster.
    #[arg(
        id = "nats_url",
        value_name = "URL",
        long = "nats-url",
        env = "EYE_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub url: String,
    /// NATS user name, when the server requires authentication (deploy/nats/*.conf).
    /// Default: none (connect without credentials).
    #[arg(
        id = "nats_user",
        value_name = "USER",
        long = "nats-user",
        env = "EYE_NATS_USER"
    )]
    pub user: Option<String>,
    /// Password of --nats-user (prefer the environment variable: flags show up in `ps`).
    #[arg(
        id = "nats_password",
        value_name = "PASSWORD",
        long = "nats-password",
        env = "EYE_NATS_PASSWORD",
        requires = "nats_user",
        hide_env_values = true
    )]
    pub password: Option<String>,
}

impl std::fmt::Debug for NatsArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsArgs")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "(hidden)"))
            .finish()
    }
}

/// NATS options that cannot work (for instance a malformed URL).
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to NATS at {url}: {source}")]
pub struct NatsConnectError {
    /// The configured URL.
    pub url: String,
    /// The client's error.
    #[source]
    pub source: async_nats::ConnectError,
}

impl NatsArgs {
    /// The configured server URLs, one per comma-separated entry.
    pub fn servers(&self) -> Vec<&str> {
        self.url
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .collect()
    }

    /// Connects to NATS as client `name`. The connection is made in the background and
    /// retried for ever, so a service starts (and reports "not ready") while NATS is down.
    pub async fn connect(&self, name: &str) -> Result<async_nats::Client, NatsConnectError> {
        let mut options = async_nats::ConnectOptions::new();
        if let Some(user) = &self.user {
            options =
                options.user_and_password(user.clone(), self.password.clone().unwrap_or_default());
        }
        options
            .name(name)
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(self.servers())
            .await
            .map_err(|source| NatsConnectError {
                url: self.url.clone(),
                source,
            })
    }
}

/// Connection to ClickHouse over HTTP.
#[derive(Debug, Clone, clap::Args)]
pub struct ClickHouseArgs {
    /// ClickHouse HTTP interface URL.
    #[arg(
        id = "clickhouse_url",
        value_name = "URL",
        long = "clickhouse-url",
        env = "EYE_CLICKHOUSE_URL",
        default_value = "http://127.0.0.1:8123"
    )]
    pub url: String,
    /// Database holding the Eye's tables.
    #[arg(
        id = "clickhouse_database",
        value_name = "NAME",
        long = "clickhouse-database",
        env = "EYE_CLICKHOUSE_DATABASE",
        default_value = "eye"
    )]
    pub database: String,
    /// ClickHouse user.
    #[arg(
        id = "clickhouse_user",
        value_name = "USER",
        long = "clickhouse-user",
        env = "EYE_CLICKHOUSE_USER",
        default_value = "default"
    )]
    pub user: String,
    /// ClickHouse password (prefer the environment variable: flags show up in `ps`).
    #[arg(
        id = "clickhouse_password",
        value_name = "PASSWORD",
        long = "clickhouse-password",
        env = "EYE_CLICKHOUSE_PASSWORD",
        default_value = "",
        hide_env_values = true
    )]
    pub password: String,
}

impl ClickHouseArgs {
    /// The client configuration these options describe.
    pub fn config(&self) -> ClickHouseConfig {
        ClickHouseConfig {
            url: self.url.clone(),
            database: self.database.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_url_lists_are_split_on_commas() {
        let args = NatsArgs {
            url: "nats://a:4222, nats://b:4222,".into(),
            user: None,
            password: None,
        };
        assert_eq!(args.servers(), ["nats://a:4222", "nats://b:4222"]);
    }

    fn parse_nats(args: &[&str]) -> Result<NatsArgs, clap::Error> {
        use clap::{CommandFactory, FromArgMatches, Parser};
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            nats: NatsArgs,
        }
        let matches = Wrapper::command()
            .no_binary_name(true)
            .try_get_matches_from(args)?;
        Ok(Wrapper::from_arg_matches(&matches)?.nats)
    }

    #[test]
    fn nats_credentials_are_optional_and_the_password_needs_a_user() {
        let none = parse_nats(&[]).expect("no credentials");
        assert_eq!((none.user, none.password), (None, None));
        let both = parse_nats(&["--nats-user", "eye_gateway", "--nats-password", "s3cret"])
            .expect("user and password");
        assert_eq!(both.user.as_deref(), Some("eye_gateway"));
        assert_eq!(both.password.as_deref(), Some("s3cret"));
        assert!(!format!("{both:?}").contains("s3cret"), "{both:?}");
        let error = parse_nats(&["--nats-password", "s3cret"]).err();
        assert!(error.is_some(), "a password without a user is refused");
    }

    #[tokio::test]
    async fn a_malformed_nats_url_is_an_error_naming_it() {
        let args = NatsArgs {
            url: "nats://[::1".into(),
            user: None,
            password: None,
        };
        let error = args.connect("test").await.unwrap_err();
        assert!(error.to_string().contains("nats://[::1"), "{error}");
    }
}
