//! The `cloudo` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    cloudo_orchestrator::cloudo_main()
}
