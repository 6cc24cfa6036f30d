//! The orchestrator: HTTP API, trigger ingestion, execution records, recovery, and the
//! commands of the `cloudo` and `cloudo-worker` binaries (which only call [`cloudo_main`]
//! and [`worker_main`]).

mod access;
mod api;
mod cli;
mod config;
mod documents;
mod executions;
mod http_server;
mod ingest;
mod keys_cli;
mod logging;
mod notify;
mod reaper;
mod serve;
mod worker_cmd;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn report(result: anyhow::Result<()>, name: &str) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "{name} failed");
            eprintln!("{name}: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn multi_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// `cloudo`: parses the command line and runs the command.
pub fn cloudo_main() -> ExitCode {
    // One TLS stack, rustls with ring, for every HTTPS client (JWKS, Azure Storage).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => config::ServeConfig::resolve(*args).and_then(|cfg| {
            logging::init(cfg.log_format, cfg.known_secrets());
            multi_thread()?.block_on(serve::run(cfg))
        }),
        Command::Worker(args) => worker_cmd::start(*args),
        Command::Keys(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(keys_cli::run(args))),
    };
    report(result, "cloudo")
}

/// `cloudo-worker`: the same as `cloudo worker`.
pub fn worker_main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = cli::WorkerCli::parse();
    report(worker_cmd::start(args.worker), "cloudo-worker")
}
