//! `eye-consumer`: see the `consumer` library.

fn main() -> std::process::ExitCode {
    eye_server_kit::service::main(consumer::BINARY, consumer::ABOUT, consumer::run)
}
