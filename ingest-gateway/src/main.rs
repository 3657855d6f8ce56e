//! `eye-gateway`: see the `ingest_gateway` library.

fn main() -> std::process::ExitCode {
    eye_server_kit::service::main(
        ingest_gateway::BINARY,
        ingest_gateway::ABOUT,
        ingest_gateway::run,
    )
}
