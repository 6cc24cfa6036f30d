//! The worker pool: lease jobs from the pools' queues and run them, `concurrency` at a time.
//!
//! One dispatcher task per pool name shares one semaphore. A job's lease is renewed and its
//! execution heartbeated while it runs; the message is acknowledged only after the outcome
//! was reported, so a worker that dies mid-run leaves a message that comes back and an
//! execution the reaper can settle.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use cloudo_core::store::WorkerInfo;
use cloudo_core::{
    ExecId, Job, JobQueue, Lease, Status, StatusChange, env, schema::split_args, time,
};
use tokio::sync::{Mutex, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::output::{LOG_PIECE_MAX, LiveOutput};
use crate::reporter::{LogPiece, ReportError, Reporter, RunRef, Start};
use crate::runbooks::RunbookSource;
use crate::sandbox::limits::resolve_limits;
use crate::sandbox::{RunOutcome, RunSpec, Sandboxes};
use crate::secrets::MaskSet;
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

/// Executions this worker is running now.
pub type Running = Arc<std::sync::Mutex<BTreeSet<ExecId>>>;

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
            .map(|r| r.iter().cloned().collect())
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
    match started {
        Ok(Start::Run) => {}
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
    }

    if let Ok(mut r) = parts.running.lock() {
        r.insert(exec_id.clone());
    }
    let lease = Arc::new(Mutex::new(lease));
    let live = LiveOutput::new(config.output_cap);
    // Cancelled when the orchestrator answers a heartbeat with "stop".
    let cancel = CancellationToken::new();
    let (stop_keepalive, keepalive_stopped) = watch::channel(false);
    let keepalive = tokio::spawn(keep_alive(
        lease.clone(),
        parts.clone(),
        (job.clone(), run.clone(), live.clone(), cancel.clone()),
        (config.lease, config.heartbeat_every),
        keepalive_stopped,
    ));

    let change = execute(&job, &run, config, parts, (live.clone(), cancel)).await;
    let status = change.to;
    flush_log(&*parts.reporter, &job.exec_id, &run, &live).await;
    let last = live
        .piece(LOG_PIECE_MAX)
        .map(|(offset, data)| LogPiece { offset, data });
    report_finish(&*parts.reporter, &job, &run, change, last).await;

    let _ = stop_keepalive.send(true);
    let _ = keepalive.await;
    let lease = lease.lock().await.clone();
    ack(&*parts.queue, &lease).await;
    if let Ok(mut r) = parts.running.lock() {
        r.remove(&exec_id);
    }
    tracing::info!(exec_id = %exec_id, status = %status, "job finished");
}

/// The trigger's body: in the job, or fetched from the orchestrator when it was too large
/// to travel in the message.
async fn payload(job: &Job, run: &RunRef, parts: &PoolParts) -> Result<Option<String>, String> {
    if job.payload.is_some() || job.payload_bytes == 0 {
        return Ok(job.payload.clone());
    }
    let mut delay = Duration::from_millis(100);
    for _ in 0..6 {
        match parts.reporter.payload(&job.exec_id, run).await {
            Ok(p) => return Ok(p),
            Err(ReportError::Refused(why) | ReportError::Gone(why)) => return Err(why),
            Err(ReportError::Retry(why)) => {
                tracing::warn!(exec_id = %job.exec_id, reason = %why, "cannot fetch the payload yet");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    Err("the orchestrator did not answer".into())
}

/// Resolves and runs the runbook; always returns the final state change.
async fn execute(
    job: &Job,
    run: &RunRef,
    config: &PoolConfig,
    parts: &PoolParts,
    (live, cancel): (LiveOutput, CancellationToken),
) -> StatusChange {
    let runbook = match parts
        .runbooks
        .resolve(&job.runbook, job.runbook_ref.as_deref())
        .await
    {
        Ok(r) => r,
        Err(e) => return StatusChange::to(Status::Error).reason(e.0),
    };
    let Some(args) = split_args(&job.run_args) else {
        return StatusChange::to(Status::Error).reason("run_args cannot be split into arguments");
    };
    let sandbox = match parts.sandboxes.pick(job.runtime.sandbox.as_deref()) {
        Ok(s) => s,
        Err(why) => {
            let mut change = StatusChange::to(Status::Error).reason(why);
            change.runbook_commit.clone_from(&runbook.commit);
            return change;
        }
    };
    let limits = resolve_limits(&job.runtime.limits, &parts.sandboxes.defaults);
    let payload = match payload(job, run, parts).await {
        Ok(p) => p,
        Err(why) => {
            let mut change = StatusChange::to(Status::Error)
                .reason(format!("cannot fetch the trigger's payload: {why}"));
            change.runbook_commit.clone_from(&runbook.commit);
            return change;
        }
    };
    let mut run_env = env::runbook_env(job, payload.as_deref());
    for name in &job.secrets {
        match parts.secrets.get(name) {
            Some(v) => {
                run_env.insert(name.clone(), v.expose().to_string());
            }
            None => {
                let mut change = StatusChange::to(Status::Error).reason(format!(
                    "secret {name} is not available on this worker (set CLOUDO_SECRET_{name} or put it in the secrets file)"
                ));
                change.runbook_commit.clone_from(&runbook.commit);
                return change;
            }
        }
    }
    let spec = RunSpec {
        exec_id: job.exec_id.to_string(),
        runbook: runbook.path.clone(),
        args,
        env: run_env,
        timeout: Duration::from_secs(job.timeout_secs.max(1)),
        output_cap: config.output_cap,
        network: job.runtime.network,
        limits,
        image: job.runtime.image.clone(),
        live: Some(live),
        cancel,
        payload,
        secrets: MaskSet::new(
            job.secrets
                .iter()
                .filter_map(|n| parts.secrets.get(n).map(Secret::expose)),
        ),
    };
    let mut change = match sandbox.run(spec).await {
        Ok(outcome) => outcome_change(job, outcome, limits.memory_mb),
        Err(e) => StatusChange::to(Status::Error).reason(e.0),
    };
    change.sandbox = Some(sandbox.name().to_string());
    change.runbook_commit.clone_from(&runbook.commit);
    // `runbook` (and its private copy) lives until here.
    drop(runbook);
    change
}

/// Maps a run's outcome to the execution's final state. The reason names the cause:
/// timeout, memory limit (oom), exit code, signal (152 / SIGXCPU: the CPU-time limit).
pub fn outcome_change(job: &Job, o: RunOutcome, memory_mb: u64) -> StatusChange {
    let (status, reason) = if o.cancelled {
        (
            Status::Stopped,
            Some("stopped: the orchestrator asked this run to stop".to_string()),
        )
    } else if o.timed_out {
        (
            Status::Timeout,
            Some(format!("killed after the {} s timeout", job.timeout_secs)),
        )
    } else if o.oom {
        (
            Status::Failed,
            Some(format!(
                "killed: out of memory (the {memory_mb} MiB limit; oom)"
            )),
        )
    } else if o.exit_code == Some(152) || o.signal == Some(libc::SIGXCPU) {
        (
            Status::Failed,
            Some("killed: CPU-time limit reached (SIGXCPU)".to_string()),
        )
    } else if o.exit_code == Some(0) {
        (Status::Succeeded, None)
    } else if let Some(code) = o.exit_code {
        (Status::Failed, Some(format!("exit code {code}")))
    } else if let Some(sig) = o.signal {
        (Status::Failed, Some(format!("killed by signal {sig}")))
    } else {
        (
            Status::Error,
            Some("ended without an exit status".to_string()),
        )
    };
    let mut reason = reason;
    if o.output_truncated {
        let note = format!("output truncated ({} bytes written)", o.output_bytes);
        reason = Some(match reason {
            Some(r) => format!("{r}; {note}"),
            None => note,
        });
    }
    StatusChange {
        to: status,
        reason,
        exit_code: o.exit_code,
        signal: o.signal,
        output: Some(o.output),
        output_truncated: o.output_truncated,
        worker_id: None,
        runbook_commit: None,
        sandbox: None,
        oom: o.oom,
        only_from: None,
    }
}

/// Reports the final state, retrying while the orchestrator is unavailable.
async fn report_finish(
    reporter: &dyn Reporter,
    job: &Job,
    run: &RunRef,
    change: StatusChange,
    log: Option<LogPiece>,
) {
    let mut delay = Duration::from_millis(100);
    for attempt in 1.. {
        match reporter
            .finish(&job.exec_id, run, change.clone(), log.as_ref())
            .await
        {
            Ok(()) => return,
            Err(ReportError::Refused(why) | ReportError::Gone(why)) => {
                tracing::warn!(exec_id = %job.exec_id, reason = %why, "final status refused");
                return;
            }
            Err(ReportError::Retry(why)) => {
                tracing::warn!(exec_id = %job.exec_id, attempt, reason = %why,
                    "cannot report final status yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Heartbeats the execution every `heartbeat` and renews the lease every third of its
/// `visibility`, until told to stop.
async fn keep_alive(
    lease: Arc<Mutex<Lease>>,
    parts: PoolParts,
    (job, run, live, cancel): (Job, RunRef, LiveOutput, CancellationToken),
    (visibility, heartbeat): (Duration, Duration),
    mut stop: watch::Receiver<bool>,
) {
    let exec_id = job.exec_id.clone();
    let renew_every = (visibility / 3).max(Duration::from_millis(100));
    let every = heartbeat.min(renew_every).max(Duration::from_millis(100));
    let mut renewed_at = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        if renewed_at.elapsed() + every > renew_every {
            let mut held = lease.lock().await;
            match parts.queue.renew(&held, visibility).await {
                Ok(renewed) => {
                    *held = renewed;
                    renewed_at = tokio::time::Instant::now();
                }
                Err(e) => tracing::warn!(exec_id = %exec_id, error = %e, "cannot renew lease"),
            }
        }
        match send_log(&*parts.reporter, &exec_id, &run, &live).await {
            Ok(true) => {}
            // Ended elsewhere (cancelled, or settled as lost): stop the runbook.
            Ok(false) => {
                tracing::info!(exec_id = %exec_id, "the orchestrator says stop; stopping the run");
                cancel.cancel();
            }
            Err(e) => tracing::warn!(exec_id = %exec_id, error = %e, "heartbeat failed"),
        }
    }
}

/// A heartbeat carrying the output the orchestrator does not have yet (already masked: the
/// sandbox masks each stream before anything is shown). Returns whether the run should go on.
async fn send_log(
    reporter: &dyn Reporter,
    exec_id: &ExecId,
    run: &RunRef,
    live: &LiveOutput,
) -> Result<bool, ReportError> {
    let log = live
        .piece(LOG_PIECE_MAX)
        .map(|(offset, data)| LogPiece { offset, data });
    let answer = reporter.heartbeat(exec_id, run, log.as_ref()).await?;
    if let Some(size) = answer.log_size {
        live.ack(size);
    }
    Ok(answer.running)
}

/// Sends what is left of the run's output, beyond the last piece the final report carries,
/// before that report (a few tries: the final report has the output's head and tail anyway).
async fn flush_log(reporter: &dyn Reporter, exec_id: &ExecId, run: &RunRef, live: &LiveOutput) {
    let mut failures = 0;
    while live.pending() > LOG_PIECE_MAX {
        match send_log(reporter, exec_id, run, live).await {
            Ok(true) => {}
            Ok(false) | Err(ReportError::Refused(_) | ReportError::Gone(_)) => return,
            Err(ReportError::Retry(why)) => {
                failures += 1;
                if failures > 4 {
                    tracing::warn!(exec_id = %exec_id, reason = %why, "cannot send the end of the output");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200 << failures)).await;
            }
        }
    }
}

async fn ack(queue: &dyn JobQueue, lease: &Lease) {
    if let Err(e) = queue.ack(lease).await {
        // The execution's state is already recorded; a redelivered message is dropped by
        // the orchestrator's start check.
        tracing::warn!(message_id = %lease.message_id, error = %e, "cannot acknowledge message");
    }
}
