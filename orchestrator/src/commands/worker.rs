//! `cloudo worker` / `cloudo-worker`: a standalone worker. It consumes its pool's Azure
//! Storage queue with the same pool code as the embedded engine, and reports to the
//! orchestrator over HTTP (`cloudo_worker::http::HttpReporter`) with a worker key.

use std::sync::Arc;

use anyhow::{Context, bail};
use cloudo_core::time;
use cloudo_worker::http::HttpReporter;
use cloudo_worker::secrets::Secret;
use cloudo_worker::{PoolConfig, PoolParts, Sandboxes};
use tokio::sync::watch;

use crate::commands::cli::WorkerArgs;
use crate::commands::config::ServeConfig;
use crate::commands::serve;

/// Parses, sets up logging and runs the worker until SIGTERM / Ctrl-C (then drains).
pub fn start(args: WorkerArgs) -> anyhow::Result<()> {
    let key = std::env::var("CLOUDO_WORKER_KEY")
        .ok()
        .filter(|k| !k.is_empty())
        .map(Secret::new)
        .context("CLOUDO_WORKER_KEY is not set (create one: cloudo keys create --role worker --pool <pool> --name <name>)")?;
    let cfg = ServeConfig::resolve(crate::commands::cli::ServeArgs {
        common: args.common,
        azure: args.azure,
        ..Default::default()
    })?;
    let mut secrets = cfg.known_secrets();
    secrets.push(key.expose().to_string());
    crate::logging::init(cfg.log_format, secrets);
    let mut base = Vec::new();
    for url in &args.orchestrator {
        let url = url.trim().trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--orchestrator must be http:// or https:// URLs, got {url:?}");
        }
        base.push(url.to_string());
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(cfg, args.pool, base, key))
}

async fn run(cfg: ServeConfig, pool: String, base: Vec<String>, key: Secret) -> anyhow::Result<()> {
    let Some(az) = &cfg.azure else {
        bail!(
            "a standalone worker needs the shared queue: --backend azure (and the storage account)"
        );
    };
    let _lock = serve::lock_data_dir(&cfg)?;
    let queue = crate::commands::backend::azure_queue(az, cfg.max_deliveries);
    let runbooks = serve::runbook_source(&cfg).await;
    let sandboxes = Arc::new(
        Sandboxes::build(cfg.sandbox.clone())
            .await
            .map_err(anyhow::Error::msg)?,
    );
    let reporter = Arc::new(HttpReporter::new(base.clone(), key).map_err(anyhow::Error::msg)?);
    let worker_id = format!("{}-{}", serve::worker_id(), time::now().timestamp_millis());
    tracing::info!(pool = %pool, orchestrator = ?base, worker_id = %worker_id, "standalone worker starting");
    let (stop, stopped) = watch::channel(false);
    let refresher = cfg.git.as_ref().map(|git| {
        tokio::spawn(serve::refresh_loop(
            runbooks.clone(),
            git.refresh,
            stopped.clone(),
        ))
    });
    let pool_task = tokio::spawn(cloudo_worker::pool::run(
        PoolConfig::new(vec![pool], cfg.concurrency, worker_id, cfg.output_cap),
        PoolParts {
            queue,
            runbooks,
            sandboxes,
            secrets: Arc::new(cfg.secrets.clone()),
            reporter,
            running: Arc::default(),
        },
        stopped,
    ));
    serve::shutdown_signal().await;
    tracing::info!("stopping: no new jobs; waiting for running ones to report");
    let _ = stop.send(true);
    pool_task.await.context("worker pool task failed")?;
    if let Some(r) = refresher {
        r.abort();
    }
    tracing::info!("worker stopped");
    Ok(())
}
