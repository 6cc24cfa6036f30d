//! The `cloudo-worker` binary: a standalone worker (`cloudo worker` without the rest; it
//! builds without the HTTP server).

fn main() -> std::process::ExitCode {
    // A runbook started through the relay (bwrap and docker sandboxes) runs it first.
    cloudo_worker::sandbox::relay::run_if_relay();
    cloudo_worker::sandbox::protect_process();
    cloudo_worker::command::main()
}
