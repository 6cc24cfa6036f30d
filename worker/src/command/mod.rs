//! `cloudo-worker` (and `cloudo worker`): a standalone worker. It consumes its pool's Azure
//! Storage queue with the same pool code as the embedded engine, and reports to the
//! orchestrator over HTTP ([`crate::http::HttpReporter`]) with a worker key. Also the
//! pieces `cloudo serve` runs its in-process pool with: the runbook source and its refresh,
//! the data directory lock, the worker id, the shutdown signal.

use std::fs::File;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use cloudo_core::time;
use tokio::sync::watch;

use crate::http::HttpReporter;
use crate::secrets::Secret;
use crate::{
    GitConfig, GitRunbooks, LocalRunbooks, PoolConfig, PoolParts, RunbookSource, Sandboxes,
};

pub mod args;
pub mod azure;
pub mod config;

use args::{WorkerArgs, WorkerCli};
use config::{TomlFile, WorkerConfig, WorkerFile};

/// `cloudo-worker`: parses the command line and runs the worker.
pub fn main() -> ExitCode {
    // One TLS stack, rustls with ring, for every HTTPS client (Azure Storage, orchestrator).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = WorkerCli::parse();
    match start(args.worker) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "cloudo-worker failed");
            eprintln!("cloudo-worker: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves the configuration, sets up logging and runs the worker until SIGTERM / Ctrl-C
/// (then drains).
pub fn start(args: WorkerArgs) -> anyhow::Result<()> {
    let key = config::env_secret("CLOUDO_WORKER_KEY")
        .context("CLOUDO_WORKER_KEY is not set (create one: cloudo keys create --role worker --pool <pool> --name <name>)")?;
    let file = TomlFile::<WorkerFile>::read(args.common.config.as_deref())?;
    let cfg = WorkerConfig::resolve(args.common, args.azure, file.known)?;
    let mut secrets = cfg.known_secrets();
    secrets.push(key.expose().to_string());
    crate::logging::init(cfg.log_format, secrets);
    if !file.other.is_empty() {
        // The file may be shared with `cloudo serve`: its keys are not a worker's.
        let keys: Vec<&str> = file.other.keys().map(String::as_str).collect();
        tracing::warn!(keys = ?keys, "config file keys a worker does not use (ignored)");
    }
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
        .block_on(run(cfg, (args.pool, args.metrics_listen), base, key))
}

async fn run(
    cfg: WorkerConfig,
    (pool, metrics_listen): (String, Option<std::net::SocketAddr>),
    base: Vec<String>,
    key: Secret,
) -> anyhow::Result<()> {
    let Some(az) = &cfg.azure else {
        bail!(
            "a standalone worker needs the shared queue: --backend azure (and the storage account)"
        );
    };
    let _lock = lock_data_dir(&cfg.data_dir)?;
    let queue = az.queue(cfg.max_deliveries);
    let (stop, stopped) = watch::channel(false);
    if let Some(addr) = metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("--metrics-listen: cannot listen on {addr}"))?;
        tracing::info!(addr = %listener.local_addr()?, "metrics listening");
        crate::metrics::install("worker");
        let (q, p) = (queue.clone(), pool.clone());
        let refresh = move || {
            let (q, p) = (q.clone(), p.clone());
            async move { queue_gauges(&*q, &p).await }
        };
        let mut until = stopped.clone();
        tokio::spawn(crate::metrics::serve(listener, refresh, async move {
            let _ = until.wait_for(|s| *s).await;
        }));
    }
    let runbooks = runbook_source(&cfg).await;
    let sandboxes = Arc::new(
        Sandboxes::build(cfg.sandbox.clone())
            .await
            .map_err(anyhow::Error::msg)?,
    );
    let reporter = Arc::new(HttpReporter::new(base.clone(), key).map_err(anyhow::Error::msg)?);
    let worker_id = format!("{}-{}", worker_id(), time::now().timestamp_millis());
    tracing::info!(pool = %pool, orchestrator = ?base, worker_id = %worker_id, "standalone worker starting");
    let refresher = cfg
        .git
        .as_ref()
        .map(|git| tokio::spawn(refresh_loop(runbooks.clone(), git.refresh, stopped.clone())));
    let pool_task = tokio::spawn(crate::pool::run(
        PoolConfig::new(vec![pool], cfg.concurrency, worker_id, cfg.output_cap),
        PoolParts {
            queue,
            runbooks,
            sandboxes,
            secrets: Arc::new(cfg.secrets.clone()),
            reporter,
            running: Arc::default(),
            tokens: token_broker().await,
        },
        stopped,
    ));
    shutdown_signal().await;
    tracing::info!("stopping: no new jobs; waiting for running ones to report");
    let _ = stop.send(true);
    pool_task.await.context("worker pool task failed")?;
    if let Some(r) = refresher {
        r.abort();
    }
    tracing::info!("worker stopped");
    Ok(())
}

/// The runbooks' token endpoint, with the credential `CLOUDO_RUNBOOK_CREDENTIAL` names
/// (auto, managed, workload, developer; default auto) and, for schemas that name no
/// `azure_identity`, the identity `CLOUDO_RUNBOOK_CLIENT_ID` names; `None` (logged) if it
/// cannot start.
pub async fn token_broker() -> Option<crate::access::TokenBroker> {
    let kind = match std::env::var("CLOUDO_RUNBOOK_CREDENTIAL") {
        Ok(k) if !k.is_empty() => match k.parse() {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "CLOUDO_RUNBOOK_CREDENTIAL: Azure access for runbooks is off");
                return None;
            }
        },
        _ => cloudo_azure::CredentialKind::Auto,
    };
    let default_identity = std::env::var("CLOUDO_RUNBOOK_CLIENT_ID")
        .ok()
        .filter(|v| !v.is_empty());
    let worker_identity = std::env::var("AZURE_CLIENT_ID")
        .ok()
        .filter(|v| !v.is_empty());
    match crate::access::TokenBroker::start(kind, default_identity, worker_identity).await {
        Ok(b) => Some(b),
        Err(e) => {
            tracing::error!(error = %e, "the runbooks' token endpoint cannot listen; Azure access for runbooks is off");
            None
        }
    }
}

/// Sets a pool's queue gauges (at scrape time): its depth and its oldest waiting message.
pub async fn queue_gauges(queue: &dyn cloudo_core::JobQueue, pool: &str) {
    match queue.depth(pool).await {
        Ok(d) => {
            metrics::gauge!(crate::metrics::QUEUE_DEPTH, "pool" => pool.to_string())
                .set(d.messages as f64);
            metrics::gauge!(crate::metrics::QUEUE_OLDEST_AGE, "pool" => pool.to_string())
                .set(d.oldest_waiting.map_or(0.0, |a| a.as_secs_f64()));
        }
        Err(e) => tracing::warn!(pool, error = %e, "cannot read the queue's depth for metrics"),
    }
}

/// Takes the data directory for this process alone; two engines on one database would
/// each believe the other's runs were lost, two workers would share a runbook mirror.
pub fn lock_data_dir(data_dir: &Path) -> anyhow::Result<File> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let path = data_dir.join("cloudo.lock");
    let file = File::create(&path).with_context(|| format!("cannot open {}", path.display()))?;
    // A lock outlives its holder's close for as long as a child started by any thread
    // of the process (a runbook between its clone and its exec, joining its cgroups)
    // still holds a copy of the descriptor table: an engine started again in the same
    // process right after a stop can see it taken for a few milliseconds. A second
    // process holds it for good, so the wait is short.
    for _ in 0..LOCK_TRIES {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => std::thread::sleep(LOCK_RETRY),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
    }
    bail!(
        "data dir {} is in use by another cloudo process",
        data_dir.display()
    )
}

/// How long [`lock_data_dir`] waits for a lock being released: 20 × 25 ms.
const LOCK_TRIES: u32 = 20;
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(25);

/// `<host>-<pid>`: who holds a run, in the worker registry and the logs.
pub fn worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}-{}", std::process::id())
}

/// The runbooks, from the folder or from git (fetched once before returning; a failure is
/// not fatal: readyz says so, runs end in error with the reason, the refresh loop retries).
pub async fn runbook_source(cfg: &WorkerConfig) -> Arc<dyn RunbookSource> {
    let runbooks: Arc<dyn RunbookSource> = match &cfg.git {
        None => Arc::new(LocalRunbooks::new(&cfg.runbooks)),
        Some(git) => Arc::new(GitRunbooks::new(GitConfig {
            url: git.url.clone(),
            reference: git.reference.clone(),
            prefix: git.prefix.clone(),
            mirror: cfg.data_dir.join("runbooks.git"),
            token: git.token.clone(),
            ssh_key: git.ssh_key.clone(),
            known_hosts: git.known_hosts.clone(),
        })),
    };
    if cfg.git.is_some() {
        let _ = runbooks.refresh().await;
    }
    if let Err(e) = runbooks.check().await {
        tracing::warn!(error = %e, "runbooks are not available; runs will end in error until they are");
    }
    runbooks
}

/// Fetches the runbooks repository every `every` until shutdown.
pub async fn refresh_loop(
    runbooks: Arc<dyn RunbookSource>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        // Failures are logged and shown in readyz by the source; the last good commit stays.
        let _ = runbooks.refresh().await;
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
