//! The `cloudo-worker` binary: a standalone worker (`cloudo worker` without the rest; it
//! builds without the HTTP server).

fn main() -> std::process::ExitCode {
    cloudo_worker::command::main()
}
