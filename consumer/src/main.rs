//! `eye-consumer`: see the `consumer` library.

fn main() -> std::process::ExitCode {
    eye_server_kit::service::main_with_tools(
        consumer::BINARY,
        consumer::ABOUT,
        consumer::run,
        |config, tool: consumer::Tool| tool.run(config),
    )
}
