//! The common `main` of every Eye binary: parse flags and environment, answer the
//! `healthcheck` subcommand, install logging, bind the listen address, and run the
//! service until SIGTERM or Ctrl-C. Binaries stay one line long; tests call each
//! crate's `run` directly with their own listener and shutdown token.
//!
//! A binary may add its own one-shot subcommands (tools such as
//! `eye-consumer replay`) with [`main_with_tools`]: they take the service's
//! configuration (so they connect exactly as the service does), run once with
//! logging on standard error, and exit with the code they return.

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::args::LogArgs;

/// What a binary's configuration must tell the common `main`.
pub trait ServiceConfig: Args {
    /// The flag and environment variable of the listen address, for error messages.
    const LISTEN_OPTION: &'static str;
    /// The address the service's HTTP endpoints listen on.
    fn listen(&self) -> SocketAddr;
    /// The logging options.
    fn log(&self) -> &LogArgs;
}

#[derive(Debug, Parser)]
struct Cli<C: Args> {
    #[command(flatten)]
    config: C,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Exit 0 if the service configured by these options answers 200 on /readyz
    /// (for container health checks; uses the listen address, 0.0.0.0 via loopback).
    Healthcheck,
}

/// The command line of a binary with configuration `C`, as `main` parses it.
/// Each binary's tests call `.debug_assert()` on it to catch clashing options.
pub fn command<C: ServiceConfig>(name: &'static str, about: &'static str) -> clap::Command {
    Cli::<C>::command()
        .name(name)
        .about(about)
        .version(env!("CARGO_PKG_VERSION"))
}

/// [`command`] with the binary's own subcommands `T` added (see [`main_with_tools`]).
pub fn command_with_tools<C: ServiceConfig, T: Subcommand>(
    name: &'static str,
    about: &'static str,
) -> clap::Command {
    // The derive of `T` sets its own doc comment as the about text: put ours back.
    T::augment_subcommands(command::<C>(name, about))
        .about(about)
        .long_about(None::<&str>)
}

/// The subcommands of a binary that has none besides `healthcheck`.
#[derive(Debug, Clone, Copy)]
pub enum NoTools {}

impl FromArgMatches for NoTools {
    fn from_arg_matches(_: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Err(clap::Error::new(clap::error::ErrorKind::InvalidSubcommand))
    }
    fn update_from_arg_matches(&mut self, _: &clap::ArgMatches) -> Result<(), clap::Error> {
        match *self {}
    }
}

impl Subcommand for NoTools {
    fn augment_subcommands(command: clap::Command) -> clap::Command {
        command
    }
    fn augment_subcommands_for_update(command: clap::Command) -> clap::Command {
        command
    }
    fn has_subcommand(_: &str) -> bool {
        false
    }
}

/// Runs a service binary named `name`: see the module documentation.
pub fn main<C, F, Fut, E>(name: &'static str, about: &'static str, run: F) -> ExitCode
where
    C: ServiceConfig,
    F: FnOnce(C, TcpListener, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    main_with_tools(name, about, run, no_tool::<C>)
}

async fn no_tool<C>(_: C, tool: NoTools) -> ExitCode {
    match tool {}
}

/// [`main`] for a binary with its own subcommands `T`: when one of them is
/// given, `tool` runs it with the parsed configuration instead of the service
/// (the configuration's options go before the subcommand, or in the environment).
pub fn main_with_tools<C, F, Fut, E, T, G, GFut>(
    name: &'static str,
    about: &'static str,
    run: F,
    tool: G,
) -> ExitCode
where
    C: ServiceConfig,
    F: FnOnce(C, TcpListener, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
    T: Subcommand,
    G: FnOnce(C, T) -> GFut,
    GFut: Future<Output = ExitCode>,
{
    let matches = command_with_tools::<C, T>(name, about).get_matches();
    let picked_tool = match matches.subcommand_name() {
        Some(sub) if T::has_subcommand(sub) => match T::from_arg_matches(&matches) {
            Ok(picked) => Some(picked),
            Err(error) => error.exit(),
        },
        _ => None,
    };
    let cli = if picked_tool.is_some() {
        match C::from_arg_matches(&matches) {
            Ok(config) => Cli {
                config,
                command: None,
            },
            Err(error) => error.exit(),
        }
    } else {
        match Cli::<C>::from_arg_matches(&matches) {
            Ok(cli) => cli,
            Err(error) => error.exit(),
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{name}: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        if let Some(Command::Healthcheck) = cli.command {
            return crate::probe::run(cli.config.listen()).await;
        }
        crate::telemetry::init(cli.config.log().format);
        if let Some(picked) = picked_tool {
            return tool(cli.config, picked).await;
        }
        let listen = cli.config.listen();
        let listener = match crate::serve::bind(listen, C::LISTEN_OPTION).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(%error, "cannot start");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(service = name, version = env!("CARGO_PKG_VERSION"), %listen, "starting");
        let shutdown = crate::shutdown::on_signals();
        match run(cli.config, listener, shutdown).await {
            Ok(()) => {
                tracing::info!(service = name, "stopped");
                ExitCode::SUCCESS
            }
            Err(error) => {
                tracing::error!(service = name, %error, "failed");
                ExitCode::FAILURE
            }
        }
    })
}
