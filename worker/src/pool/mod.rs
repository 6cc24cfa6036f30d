//! The worker pool: lease jobs from the pools' queues and run them, `concurrency` at a time.
//!
//! One dispatcher task per pool name shares one semaphore. A job's lease is renewed and its
//! execution heartbeated while it runs; the message is acknowledged only once the outcome
//! is recorded (in the same commit, where the reporter and the backend can), so a worker
//! that dies mid-run leaves a message that comes back and an execution the reaper can
//! settle.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use cloudo_core::store::WorkerInfo;
use cloudo_core::{ExecId, JobQueue, Lease, time};
use tokio::sync::{Mutex, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

mod execute;
mod reports;

use execute::execute;
pub use execute::outcome_change;
use reports::{flush_log, keep_alive, report_finish};

use crate::output::{LOG_PIECE_MAX, LiveOutput};
use crate::reporter::{LogPiece, ReportError, Reporter, RunRef, Start};
use crate::runbooks::RunbookSource;
use crate::sandbox::Sandboxes;
use crate::secrets::Secret;

/// How a pool behaves.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Queue names to consume.
    pub pools: Vec<String>,
    pub concurrency: usize,
    /// This worker's identity on executions and in logs.
    pub worker_id: String,
    /// Visibility timeout of a lease; renewed every third of it while the job runs.
    pub lease: Duration,
    pub output_cap: usize,
    /// Upper bound of an idle dispatcher's wait for new messages.
    pub idle_poll: Duration,
    /// How often the worker reports itself alive (`Reporter::alive`).
    pub alive_every: Duration,
    /// How often a running job's execution is heartbeated (the orchestrator's `lost-after`
    /// must be well above it).
    pub heartbeat_every: Duration,
}

impl PoolConfig {
    /// The settings every pool uses but for what differs per process: 60 s leases (renewed
    /// every 20 s), heartbeats every 3 s, an alive report every 5 s, idle polls of 1 s.
    pub fn new(
        pools: Vec<String>,
        concurrency: usize,
        worker_id: String,
        output_cap: usize,
    ) -> Self {
        Self {
            pools,
            concurrency,
            worker_id,
            lease: Duration::from_secs(60),
            output_cap,
            idle_poll: Duration::from_secs(1),
            alive_every: Duration::from_secs(5),
            heartbeat_every: Duration::from_secs(3),
        }
    }
}

/// Executions this worker is running now, each with the token that stops it (a cancel
/// made in this process stops its run at once; others arrive with a heartbeat's answer).
pub type Running = Arc<std::sync::Mutex<BTreeMap<ExecId, CancellationToken>>>;

/// The moving parts a pool drives.
#[derive(Clone)]
pub struct PoolParts {
    pub queue: Arc<dyn JobQueue>,
    pub runbooks: Arc<dyn RunbookSource>,
    pub sandboxes: Arc<Sandboxes>,
    /// Secrets this worker can give to runbooks that name them.
    pub secrets: Arc<HashMap<String, Secret>>,
    pub reporter: Arc<dyn Reporter>,
    pub running: Running,
    /// The runbooks' token endpoint (schemas with `azure: true`); `None` if it could not
    /// start (such runs then end `error`).
    pub tokens: Option<crate::access::TokenBroker>,
}

impl std::fmt::Debug for PoolParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolParts")
            .field("sandboxes", &self.sandboxes)
            .finish_non_exhaustive()
    }
}

/// Runs the pool until `shutdown` turns true, then waits for running jobs to finish.
pub async fn run(config: PoolConfig, parts: PoolParts, shutdown: watch::Receiver<bool>) {
    let config = Arc::new(config);
    let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut dispatchers = JoinSet::new();
    tracing::info!(
        worker_id = %config.worker_id,
        pools = ?config.pools,
        concurrency = config.concurrency,
        sandbox = parts.sandboxes.default_name(),
        "worker pool started"
    );
    for pool in &config.pools {
        dispatchers.spawn(dispatch(
            pool.clone(),
            config.clone(),
            parts.clone(),
            slots.clone(),
            shutdown.clone(),
        ));
    }
    let alive = tokio::spawn(report_alive(
        config.clone(),
        parts.clone(),
        shutdown.clone(),
    ));
    while dispatchers.join_next().await.is_some() {}
    // Draining: every slot back means every job has reported.
    let _all = slots.acquire_many(config.concurrency.max(1) as u32).await;
    alive.abort();
    tracing::info!(worker_id = %config.worker_id, "worker pool drained");
}

/// Reports the worker alive every `alive_every` (and once at start) until shutdown.
async fn report_alive(
    config: Arc<PoolConfig>,
    parts: PoolParts,
    mut shutdown: watch::Receiver<bool>,
) {
    let started_at = time::now();
    loop {
        let running: Vec<ExecId> = parts
            .running
            .lock()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default();
        let info = WorkerInfo {
            id: config.worker_id.clone(),
            pools: config.pools.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            capacity: u32::try_from(config.concurrency).unwrap_or(u32::MAX),
            running,
            started_at,
            last_seen: time::now(),
        };
        if let Err(e) = parts.reporter.alive(&info).await {
            tracing::warn!(error = %e, "cannot report this worker alive");
        }
        tokio::select! {
            _ = tokio::time::sleep(config.alive_every) => {}
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    return;
                }
            }
        }
    }
}

async fn dispatch(
    pool: String,
    config: Arc<PoolConfig>,
    parts: PoolParts,
    slots: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = shutdown.changed() => return,
        };
        match parts.queue.lease(&pool, config.lease).await {
            Ok(Some(lease)) => {
                backoff = Duration::from_millis(100);
                let (config, parts) = (config.clone(), parts.clone());
                tokio::spawn(async move {
                    run_job(lease, &config, &parts).await;
                    drop(permit);
                });
            }
            Ok(None) => {
                drop(permit);
                tokio::select! {
                    _ = parts.queue.wait(&pool, config.idle_poll) => {}
                    _ = shutdown.changed() => return,
                }
            }
            Err(e) => {
                drop(permit);
                tracing::warn!(pool = %pool, error = %e, "cannot lease from the queue; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn run_job(lease: Lease, config: &PoolConfig, parts: &PoolParts) {
    let job = lease.job.clone();
    let exec_id = job.exec_id.clone();
    // Too early (a verification's delay): back to the queue until its time.
    if let Some(wait) = job
        .not_before
        .and_then(|t| (t - cloudo_core::time::now()).to_std().ok())
        .filter(|w| !w.is_zero())
    {
        tracing::debug!(exec_id = %exec_id, wait_ms = wait.as_millis() as u64, "job not due yet");
        if let Err(e) = parts.queue.release(&lease, wait).await {
            tracing::warn!(exec_id = %exec_id, error = %e, "cannot give back a job not due yet");
        }
        return;
    }

    // The answer to "start" can be lost (an orchestrator killed after recording it): ask
    // again for the same delivery, holding the lease, before giving the job back.
    let run = RunRef {
        worker_id: config.worker_id.clone(),
        delivery: format!("{}:{}", lease.message_id, lease.dequeue_count),
    };
    let mut delay = Duration::from_millis(200);
    let mut started = parts.reporter.start(&job, &run).await;
    for _ in 0..5 {
        if !matches!(started, Err(ReportError::Retry(_))) {
            break;
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
        started = parts.reporter.start(&job, &run).await;
    }
    let log_offset = match started {
        Ok(Start::Run { log_offset }) => log_offset,
        Ok(Start::Drop(why)) => {
            tracing::info!(exec_id = %exec_id, reason = %why, "job dropped");
            ack(&*parts.queue, &lease).await;
            return;
        }
        Err(e) => {
            tracing::warn!(exec_id = %exec_id, error = %e, "cannot start job; giving it back");
            let _ = parts.queue.release(&lease, Duration::from_secs(1)).await;
            return;
        }
    };

    // Cancelled when the orchestrator answers a heartbeat with "stop", or at once by a
    // cancel made in this process.
    let cancel = CancellationToken::new();
    if let Ok(mut r) = parts.running.lock() {
        r.insert(exec_id.clone(), cancel.clone());
    }
    let lease = Arc::new(Mutex::new(lease));
    let live = LiveOutput::new(config.output_cap, log_offset);
    let (stop_keepalive, keepalive_stopped) = watch::channel(false);
    let keepalive = tokio::spawn(keep_alive(
        lease.clone(),
        parts.clone(),
        (job.clone(), run.clone(), live.clone(), cancel.clone()),
        (config.lease, config.heartbeat_every),
        keepalive_stopped,
    ));

    let pool = lease.lock().await.pool.clone();
    let running = metrics::gauge!(crate::metrics::WORKER_RUNNING, "pool" => pool.clone());
    running.increment(1.0);
    let change = execute(&job, &run, config, parts, (live.clone(), cancel)).await;
    running.decrement(1.0);
    let status = change.to;
    metrics::counter!(crate::metrics::WORKER_RUNS, "pool" => pool, "status" => status.as_str())
        .increment(1);
    flush_log(&*parts.reporter, &job.exec_id, &run, &live).await;
    let last = live
        .piece(LOG_PIECE_MAX)
        .map(|(offset, data)| LogPiece { offset, data });
    // The lease as it is now: a renewal meanwhile only means the job is acknowledged below
    // instead of with the report.
    let current = lease.lock().await.clone();
    let acked = report_finish(&*parts.reporter, &job, &run, change, last, &current).await;

    let _ = stop_keepalive.send(true);
    let _ = keepalive.await;
    if !acked {
        let lease = lease.lock().await.clone();
        ack(&*parts.queue, &lease).await;
    }
    if let Ok(mut r) = parts.running.lock() {
        r.remove(&exec_id);
    }
    tracing::info!(exec_id = %exec_id, status = %status, "job finished");
}

/// Acknowledgements tried while the queue is unavailable (a full disk, a storage restart):
/// about 16 s in all, backing off from 200 ms to 5 s.
const ACK_TRIES: u32 = 8;

async fn ack(queue: &dyn JobQueue, lease: &Lease) {
    let mut wait = Duration::from_millis(200);
    for attempt in 1..=ACK_TRIES {
        match queue.ack(lease).await {
            Ok(()) => return,
            Err(cloudo_core::QueueError::Unavailable(e)) if attempt < ACK_TRIES => {
                tracing::debug!(message_id = %lease.message_id, error = %e, "acknowledging again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                // The execution's state is already recorded; a redelivered message is
                // dropped by the orchestrator's start check.
                tracing::warn!(message_id = %lease.message_id, error = %e, "cannot acknowledge message");
                return;
            }
        }
    }
}
