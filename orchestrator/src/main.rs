//! The `cloudo` binary: parses the command line and hands over. Nothing else lives here.

mod api;
mod cli;
mod config;
mod executions;
mod ingest;
mod keys_cli;
mod logging;
mod reaper;
mod serve;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    // One TLS stack, rustls with ring, for every HTTPS client (JWKS today).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => config::ServeConfig::resolve(*args).and_then(|cfg| {
            logging::init(cfg.log_format, cfg.known_secrets());
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(serve::run(cfg))
        }),
        Command::Keys(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(keys_cli::run(args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "cloudo failed");
            eprintln!("cloudo: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
