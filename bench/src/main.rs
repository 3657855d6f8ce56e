//! `eye-bench`: runs the scenarios against a running stack, prints the table
//! and writes the results (see the library's documentation).

use std::process::ExitCode;

use clap::Parser;
use eye_bench::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let out = config.out.clone();
    let results = eye_bench::run(config).await;
    println!("{}", results.table());
    if let Some(path) = out {
        let text = match serde_json::to_string_pretty(&results.to_json()) {
            Ok(text) => text + "\n",
            Err(error) => {
                eprintln!("eye-bench: cannot write the results: {error}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(error) = std::fs::write(&path, text) {
            eprintln!("eye-bench: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
        println!("results written to {}", path.display());
    }
    if results.errors().is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "eye-bench: {} problem(s) during the run (listed above and under \"errors\")",
            results.errors().len()
        );
        ExitCode::FAILURE
    }
}
