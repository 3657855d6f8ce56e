//! Running one of our services inside a test: bind `127.0.0.1:0`, start the crate's
//! `run` on it with a fresh shutdown token, and wait for it with a deadline.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A service started by a test; cancel it with [`RunningService::stop`].
pub struct RunningService<E> {
    /// The address it listens on.
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), E>>,
}

impl<E: std::fmt::Display + Send + 'static> RunningService<E> {
    /// Binds a free loopback port and spawns `run(listener, shutdown)` on it.
    pub async fn start<F, Fut>(run: F) -> Self
    where
        F: FnOnce(TcpListener, CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free loopback port");
        let addr = listener
            .local_addr()
            .expect("local address of the listener");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(listener, shutdown.clone()));
        RunningService {
            addr,
            shutdown,
            task,
        }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Polls `GET path` until it answers `status`, failing the test after `deadline`.
    pub async fn wait_for_status(&self, path: &str, status: u16, deadline: Duration) {
        let client = reqwest::Client::new();
        let started = Instant::now();
        let mut last = String::from("no answer yet");
        while started.elapsed() < deadline {
            match client.get(self.url(path)).send().await {
                Ok(response) if response.status().as_u16() == status => return,
                Ok(response) => {
                    last = format!(
                        "{}: {}",
                        response.status(),
                        response.text().await.unwrap_or_default()
                    )
                }
                Err(error) => last = error.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("GET {path} did not answer {status} within {deadline:?}; last: {last}");
    }

    /// Cancels the service and waits (at most `deadline`) for `run` to return, which
    /// must be `Ok`.
    pub async fn stop(self, deadline: Duration) {
        self.shutdown.cancel();
        match tokio::time::timeout(deadline, self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => panic!("service stopped with an error: {error}"),
            Ok(Err(join_error)) => panic!("service task failed: {join_error}"),
            Err(_) => panic!("service did not stop within {deadline:?} of shutdown"),
        }
    }
}

/// Parses a service configuration from `args` (without the program name), with every
/// other option at its default, as the binary would.
pub fn parse_config<C: clap::Args>(args: &[&str]) -> C {
    use clap::{FromArgMatches, Parser};
    #[derive(Parser)]
    struct Wrapper<C: clap::Args> {
        #[command(flatten)]
        config: C,
    }
    let matches = <Wrapper<C> as clap::CommandFactory>::command()
        .no_binary_name(true)
        .try_get_matches_from(args)
        .unwrap_or_else(|error| panic!("bad test configuration {args:?}: {error}"));
    Wrapper::<C>::from_arg_matches(&matches)
        .unwrap_or_else(|error| panic!("bad test configuration {args:?}: {error}"))
        .config
}
