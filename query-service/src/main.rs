//! `eye-query`: see the `query_service` library.

fn main() -> std::process::ExitCode {
    eye_server_kit::service::main(
        query_service::BINARY,
        query_service::ABOUT,
        query_service::run,
    )
}
