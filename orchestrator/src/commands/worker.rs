//! `cloudo worker` / `cloudo-worker`: a standalone worker. It consumes its pool's Azure
//! Storage queue with the same pool code as the embedded engine, and reports to the
//! orchestrator over HTTP ([`HttpReporter`]) with a worker key.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use async_trait::async_trait;
use cloudo_core::store::WorkerInfo;
use cloudo_core::{ExecId, Job, StatusChange, time};
use cloudo_worker::protocol::{
    ALIVE_PATH, AliveRequest, FinishAnswer, FinishRequest, HeartbeatAnswer, HeartbeatRequest,
    LogPiece, PayloadAnswer, StartAnswer, exec_path,
};
use cloudo_worker::secrets::Secret;
use cloudo_worker::{PoolConfig, PoolParts, ReportError, Reporter, RunRef, Sandboxes, Start};
use serde_json::Value;
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
    let reporter = Arc::new(HttpReporter::new(base.clone(), key)?);
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

/// Reports to the orchestrator's `/api/worker/...` routes. Server errors and unreachable
/// orchestrators are `Retry` (the pool retries with backoff, holding the report); a 4xx is
/// `Refused` for good (e.g. 409: the execution already ended, as when a retried report
/// had in fact arrived).
#[derive(Debug)]
pub struct HttpReporter {
    http: reqwest::Client,
    /// Orchestrator base URLs; `current` is the one that answered last.
    base: Vec<String>,
    current: std::sync::atomic::AtomicUsize,
    key: Secret,
}

impl HttpReporter {
    pub fn new(base: Vec<String>, key: Secret) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("cloudo-worker/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base,
            current: Default::default(),
            key,
        })
    }

    /// Sends to the current orchestrator, moving on to the next one when it cannot be
    /// reached (each is tried once per call).
    async fn send(&self, path: &str, body: &Value) -> Result<reqwest::Response, ReportError> {
        use std::sync::atomic::Ordering;
        let n = self.base.len().max(1);
        let first = self.current.load(Ordering::Relaxed);
        let mut last = String::new();
        for i in 0..n {
            let at = (first + i) % n;
            match self
                .http
                .post(format!("{}{path}", self.base[at]))
                .bearer_auth(self.key.expose())
                .json(body)
                .send()
                .await
            {
                Ok(rsp) => {
                    self.current.store(at, Ordering::Relaxed);
                    return Ok(rsp);
                }
                // reqwest's error names the URL (no secret in it); the key is a header.
                Err(e) => last = format!("orchestrator unreachable: {e}"),
            }
        }
        Err(ReportError::Retry(last))
    }

    /// POSTs `body`; the answer's text on success (a 4xx is `Refused`, 5xx, 408 and 429
    /// `Retry`).
    async fn post(&self, path: &str, body: &Value) -> Result<String, ReportError> {
        let rsp = self.send(path, body).await?;
        let status = rsp.status();
        let text = rsp.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(text);
        }
        let why = format!(
            "HTTP {status} from {path}: {}",
            text.chars().take(300).collect::<String>()
        );
        if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            Err(ReportError::Retry(why))
        } else if status.as_u16() == 404 {
            Err(ReportError::Gone(why))
        } else {
            Err(ReportError::Refused(why))
        }
    }

    /// POSTs a protocol request and reads its typed answer.
    async fn call<A: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<A, ReportError> {
        let body = serde_json::to_value(body).map_err(|e| ReportError::Refused(e.to_string()))?;
        let text = self.post(path, &body).await?;
        serde_json::from_str(&text)
            .map_err(|e| ReportError::Retry(format!("unexpected answer from {path}: {e}")))
    }
}

#[async_trait]
impl Reporter for HttpReporter {
    async fn start(&self, job: &Job, run: &RunRef) -> Result<Start, ReportError> {
        match self
            .call::<StartAnswer>(&exec_path(&job.exec_id, "start"), run)
            .await
        {
            Ok(a) if a.run => Ok(Start::Run),
            Ok(a) => Ok(Start::Drop(a.reason.unwrap_or_else(|| "refused".into()))),
            // No such execution (any more): nothing to run.
            Err(ReportError::Gone(why)) => Ok(Start::Drop(why)),
            Err(e) => Err(e),
        }
    }

    async fn heartbeat(
        &self,
        exec_id: &ExecId,
        run: &RunRef,
        log: Option<&LogPiece>,
    ) -> Result<HeartbeatAnswer, ReportError> {
        let req = HeartbeatRequest {
            run: run.clone(),
            log: log.cloned(),
        };
        self.call(&exec_path(exec_id, "heartbeat"), &req).await
    }

    async fn finish(
        &self,
        exec_id: &ExecId,
        run: &RunRef,
        change: StatusChange,
        log: Option<&LogPiece>,
    ) -> Result<(), ReportError> {
        let mut req = FinishRequest::new(run.clone(), change);
        req.log = log.cloned();
        self.call::<FinishAnswer>(&exec_path(exec_id, "finish"), &req)
            .await
            .map(|_| ())
    }

    async fn payload(&self, exec_id: &ExecId, run: &RunRef) -> Result<Option<String>, ReportError> {
        let a: PayloadAnswer = self.call(&exec_path(exec_id, "payload"), run).await?;
        Ok(a.payload)
    }

    async fn alive(&self, info: &WorkerInfo) -> Result<(), ReportError> {
        let body = serde_json::to_value(AliveRequest::new(info))
            .map_err(|e| ReportError::Refused(e.to_string()))?;
        self.post(ALIVE_PATH, &body).await.map(|_| ())
    }
}
