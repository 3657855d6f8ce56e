//! A process for testkit's own lifecycle tests (`tests/server_lifecycle.rs`)
//! to start and watch: what a test process does with its servers when it
//! fails to start one, panics or is killed. Not part of any deployment.
//!
//! - `broken-start`: starts a nats-server (the parent points
//!   `EYE_NATS_SERVER_BIN` at a binary that exits at once) and prints the error.
//! - `shared-then-die panic|sigkill`: starts the shared nats-server and
//!   clickhouse-server, prints `PIDS <nats> <clickhouse>`, then panics, or
//!   waits (at most 60 s) to be killed.

use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["broken-start"] => match eye_testkit::NatsServer::start() {
            Ok(_) => {
                println!("a server started from a broken binary");
                ExitCode::FAILURE
            }
            Err(error) => {
                println!("{error}");
                ExitCode::SUCCESS
            }
        },
        ["shared-then-die", how @ ("panic" | "sigkill")] => {
            let nats = eye_testkit::shared_nats().pid().expect("nats pid");
            let clickhouse = eye_testkit::shared_clickhouse()
                .pid()
                .expect("clickhouse pid");
            println!("PIDS {nats} {clickhouse}");
            if how == "panic" {
                panic!("dying with shared servers running");
            }
            // Wait to be killed (bounded, so a broken parent cannot leave us here).
            std::thread::sleep(Duration::from_secs(60));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: eye-testkit-child broken-start | shared-then-die panic|sigkill");
            ExitCode::from(2)
        }
    }
}
