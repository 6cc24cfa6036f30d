//! The `cloudo-worker` binary: a standalone worker (`cloudo worker` without the rest).

fn main() -> std::process::ExitCode {
    cloudo_orchestrator::worker_main()
}
