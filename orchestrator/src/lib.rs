//! The orchestrator, in three parts: `api/` (the HTTP API, one module per resource, and
//! its server), `services/` (the execution hub, ingestion, reaper, notifications,
//! documents) and `commands/` (serve, keys and their configuration; `cloudo worker` is the worker crate's).
//! The `cloudo` binary only calls [`cloudo_main`].

mod api;
mod client;
mod commands;
mod services;
#[doc(hidden)]
pub mod testing;

use std::process::ExitCode;

use clap::Parser;

use crate::commands::cli::{Cli, Command};
use crate::commands::{config, keys, serve};
use cloudo_worker::logging;

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
            logging::init(cfg.worker.log_format, cfg.known_secrets());
            multi_thread()?.block_on(serve::run(cfg))
        }),
        Command::Worker(args) => cloudo_worker::command::start(*args),
        Command::Keys(args) if args.url.is_none() => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(keys::run(*args))),
        client => return commands::client::run(client),
    };
    report(result, "cloudo")
}
