//! The in-process test layer: the engine `cloudo serve <args>` would run (the same option
//! parsing, backend, worker pool and background tasks), with its router not bound to an
//! address, for handler tests that drive it with `tower::ServiceExt::oneshot`. The
//! end-to-end tests run the real binary instead. Not a supported API.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use clap::Parser;
use tower::ServiceExt;

use crate::commands::cli::{Cli, Command};
use crate::commands::config::ServeConfig;
use crate::commands::serve::Engine;

/// The base of execution links in answers.
pub const PUBLIC_URL: &str = "http://cloudo.test";

/// A running engine and its router.
pub struct TestEngine {
    engine: Engine,
    _lock: std::fs::File,
}

impl std::fmt::Debug for TestEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEngine").finish_non_exhaustive()
    }
}

impl TestEngine {
    /// Starts the engine of `cloudo serve` with `args` (e.g. `--data-dir`, `--catalog`).
    pub async fn start(args: &[&str]) -> anyhow::Result<Self> {
        // As the binaries do: rustls with ring for every HTTPS client.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let argv = ["cloudo", "serve"].iter().chain(args);
        let Command::Serve(serve) = Cli::try_parse_from(argv)?.command else {
            anyhow::bail!("not a serve command line");
        };
        let cfg = ServeConfig::resolve(*serve)?;
        let lock = cloudo_worker::command::lock_data_dir(&cfg.worker.data_dir)?;
        Ok(Self {
            engine: Engine::start(&cfg, PUBLIC_URL).await?,
            _lock: lock,
        })
    }

    /// Sends one request, as from `peer`, and returns the answer.
    pub async fn call_from(&self, peer: SocketAddr, mut req: Request<Body>) -> Response<Body> {
        req.extensions_mut().insert(ConnectInfo(peer));
        match self.engine.router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }

    /// Sends one request from 127.0.0.1.
    pub async fn call(&self, req: Request<Body>) -> Response<Body> {
        self.call_from(SocketAddr::from(([127, 0, 0, 1], 40000)), req)
            .await
    }

    /// Stops the engine as `cloudo serve` does at SIGTERM.
    pub async fn stop(self) {
        self.engine.stop().await;
    }
}
