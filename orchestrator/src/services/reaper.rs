//! Settling executions nobody will finish: at start-up (the previous process is gone) and
//! periodically (a worker stopped heartbeating, a job was given up after its deliveries).
//! This is what guarantees that no execution stays `accepted` or `running` forever.

use std::sync::Arc;
use std::time::Duration;

use cloudo_core::{
    ExecId, JobQueue, OwnedQueue, Status, StatusChange, StoreError, lifecycle, time,
};
use tokio::sync::watch;

use crate::services::executions::Executions;

const BATCH: usize = 500;

/// Ends `id` with `status` unless it already ended; a lost race is not an error.
async fn settle(ex: &Executions, id: &ExecId, status: Status, reason: &str) {
    settle_with(ex, id, StatusChange::to(status).reason(reason)).await;
}

async fn settle_with(ex: &Executions, id: &ExecId, change: StatusChange) {
    let (status, reason) = (change.to, change.reason.clone().unwrap_or_default());
    match ex.change(id, change).await {
        Ok(_) => tracing::warn!(exec_id = %id, status = %status, reason, "execution settled"),
        Err(StoreError::Illegal(_)) => {}
        Err(e) => tracing::error!(exec_id = %id, error = %e, "cannot settle execution"),
    }
}

/// Start-up of the embedded engine, which owns its database alone: whatever was running
/// belonged to the previous process and is lost (and what is left of its processes is
/// killed); leases it held are void; executions recorded without a job (a crash between
/// the two writes) are errors, and so are those that waited past `queue_timeout` while the
/// engine was down (before any worker can start them, so none of those runs late).
pub async fn recover_embedded(
    ex: &Executions,
    queue: &dyn OwnedQueue,
    queue_timeout: Duration,
) -> anyhow::Result<()> {
    loop {
        let running = ex.store().executions_in(Status::Running, BATCH).await?;
        if running.is_empty() {
            break;
        }
        for e in &running {
            settle(
                ex,
                &e.exec_id,
                Status::Lost,
                "the engine stopped while this execution was running (found at start-up)",
            )
            .await;
            let killed = cloudo_worker::sandbox::supervisor::kill_strays(e.exec_id.as_str());
            if killed > 0 {
                tracing::warn!(exec_id = %e.exec_id, processes = killed,
                    "killed processes left over from the interrupted run");
            }
        }
    }
    let released = queue.release_all_leases().await?;
    let mut orphans = 0;
    let accepted = ex
        .store()
        .executions_in(Status::Accepted, 10_000_000)
        .await?;
    let queued = queue.queued_exec_ids().await?;
    let now = time::now();
    let mut expired = 0;
    let mut waiting = 0;
    for e in &accepted {
        if !queued.contains(e.exec_id.as_str()) && ex.has_limits(e) {
            // Waiting for a slot, or given one just before the stop: through its limits
            // again (it waits on, or is queued now).
            waiting += 1;
            let e = ex
                .store()
                .get_execution(&e.exec_id)
                .await?
                .unwrap_or(e.clone());
            if let Err(err) = ex.dispatch(e).await {
                tracing::error!(error = %err, "cannot dispatch a waiting execution at start-up");
            }
        } else if !queued.contains(e.exec_id.as_str()) {
            orphans += 1;
            settle(
                ex,
                &e.exec_id,
                Status::Error,
                "the engine stopped before this execution's job was queued",
            )
            .await;
        } else if let Some(change) = lifecycle::queue_expiry(e, now, queue_timeout) {
            expired += 1;
            settle_with(ex, &e.exec_id, change).await;
        }
    }
    tracing::info!(
        released_leases = released,
        queued = accepted.len() - orphans - expired - waiting,
        waiting,
        expired,
        "recovery done"
    );
    Ok(())
}

/// How long things may take before the reaper steps in.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// A running execution without a heartbeat for this long is lost.
    pub lost_after: Duration,
    /// An accepted execution no worker started for this long ends `error`.
    pub queue_timeout: Duration,
    /// Dedup keys older than this are purged.
    pub dedup_window: Duration,
}

/// The periodic reaper. With several orchestrators on one store, only the holder of the
/// store's `reaper` lease sweeps (`holder` names this process); the lease outlives three
/// sweep periods, so a dead holder is replaced within that.
pub async fn run(
    ex: Executions,
    queue: Arc<dyn JobQueue>,
    pools: Vec<String>,
    bounds: Bounds,
    holder: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let every = (bounds.lost_after / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
    let mut leading = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        match ex
            .store()
            .try_lease("reaper", &holder, every * 3, time::now())
            .await
        {
            Ok(now_leading) => {
                if now_leading != leading {
                    tracing::info!(holder = %holder, leading = now_leading, "reaper lease changed hands");
                    leading = now_leading;
                }
                if !now_leading {
                    continue;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot take the reaper lease");
                continue;
            }
        }
        if let Err(e) = sweep(&ex, &*queue, &pools, bounds).await {
            tracing::error!(error = %e, "reaper sweep failed");
        }
        // Dedup keys older than the window can never match again.
        if let Ok(window) = chrono::Duration::from_std(bounds.dedup_window)
            && let Err(e) = ex.store().purge_dedup(time::now() - window).await
        {
            tracing::error!(error = %e, "dedup purge failed");
        }
    }
}

async fn sweep(
    ex: &Executions,
    queue: &dyn JobQueue,
    pools: &[String],
    bounds: Bounds,
) -> anyhow::Result<()> {
    let now = time::now();
    for e in ex.store().executions_in(Status::Running, BATCH).await? {
        if let Some(lost) = lifecycle::lost_reason(&e, now, bounds.lost_after) {
            after_lost(ex, &e.exec_id, &lost).await?;
        }
    }
    expire_queued(ex, bounds.queue_timeout).await?;
    settle_pending(ex).await?;
    ex.sweep_limits().await?;
    crate::services::sessions::sweep(&**ex.store(), now).await?;
    for pool in pools {
        for dead in queue.dead_letters(pool, BATCH).await? {
            let Some(job) = dead.job else { continue };
            let Some(e) = ex.store().get_execution(&job.exec_id).await? else {
                continue;
            };
            if let Some(change) = lifecycle::after_dead_letter(&e, dead.dequeue_count) {
                settle_with(ex, &e.exec_id, change).await;
            }
        }
    }
    Ok(())
}

/// Ends `error` the accepted executions no worker started within `queue_timeout`: a pool
/// nobody serves, or a job lost between recording and queueing (an orchestrator killed
/// there), would otherwise wait forever; and a remediation hours after its alert is more
/// likely harm than help. Their jobs, if they ever reach a worker, are dropped at start.
/// The oldest batch per sweep, like the running ones.
async fn expire_queued(ex: &Executions, queue_timeout: Duration) -> anyhow::Result<()> {
    let now = time::now();
    for e in ex.store().executions_in(Status::Accepted, BATCH).await? {
        if let Some(change) = lifecycle::queue_expiry(&e, now, queue_timeout) {
            settle_with(ex, &e.exec_id, change).await;
        }
    }
    Ok(())
}

/// Rejects the approval requests that ran out, and moves on requests already decided whose
/// decider stopped before doing so (an orchestrator killed between the two steps).
async fn settle_pending(ex: &Executions) -> anyhow::Result<()> {
    for e in ex.store().executions_in(Status::Pending, BATCH).await? {
        if ex.expire(&e).await?.is_some() {
            tracing::info!(exec_id = %e.exec_id, "approval request expired");
        } else if e
            .approval
            .as_ref()
            .is_some_and(|a| a.granted() || a.rejected().is_some())
        {
            ex.settle_approval(e).await?;
        }
    }
    Ok(())
}

/// Settles a running execution whose worker was lost: requeued when its schema asked for
/// retries and some are left (back to `accepted`, a new job with the same context; the
/// old message, if it comes back, finds it started or done and is dropped), else `lost`.
async fn after_lost(ex: &Executions, id: &ExecId, lost: &str) -> anyhow::Result<()> {
    let Some(e) = ex.store().get_execution(id).await? else {
        return Ok(());
    };
    let change = lifecycle::after_lost(&e, lost);
    if change.to != Status::Accepted {
        settle_with(ex, id, change).await;
        return Ok(());
    }
    let reason = change.reason.clone().unwrap_or_default();
    let e = match ex.change(id, change).await {
        Ok(e) => e,
        // It ended meanwhile.
        Err(StoreError::Illegal(_)) => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    // The body may be stored on another execution of the same delivery.
    let body = match &e.request_body {
        Some(b) => Some(b.clone()),
        None => ex
            .store()
            .get_execution(id)
            .await?
            .and_then(|x| x.request_body),
    };
    if let Err(err) = ex.enqueue(&e, body.as_deref()).await {
        settle(
            ex,
            id,
            Status::Error,
            &format!("{reason}; could not queue: {err}"),
        )
        .await;
    } else {
        tracing::warn!(exec_id = %id, reason, "execution requeued after its worker was lost");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
