//! The `cloudo` binary: everything lives in the library.

/// mimalloc: glibc's malloc and free were a fifth of the CPU of an alert's ingest.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // A runbook started through the relay (bwrap and docker sandboxes) runs it first.
    cloudo_worker::sandbox::relay::run_if_relay();
    cloudo_worker::sandbox::protect_process();
    cloudo_orchestrator::cloudo_main()
}
