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
    for e in &accepted {
        if !queued.contains(e.exec_id.as_str()) {
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
        queued = accepted.len() - orphans - expired,
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
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use cloudo_core::conformance::new_execution;
    use cloudo_sqlite::{Db, Durability, SqliteQueue, SqliteStore};

    #[tokio::test]
    async fn lost_runs_are_requeued_as_many_times_as_the_schema_asks() {
        let (ex, queue, _dir) = parts();
        let mut e = new_execution("a", Status::Accepted);
        e.retry_on_lost = 1;
        e.env.insert("RESOURCE_NAME".into(), "vm-1".into());
        ex.store().create_execution(&e, None).await.unwrap();
        for round in 0..2 {
            ex.change(&e.exec_id, StatusChange::to(Status::Running))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(1100)).await;
            sweep(&ex, &queue, &[], bounds(1, 3600)).await.unwrap();
            let now = ex.store().get_execution(&e.exec_id).await.unwrap().unwrap();
            if round == 0 {
                assert_eq!(now.status, Status::Accepted);
                let why = now.transitions.last().and_then(|t| t.reason.clone());
                assert!(
                    why.as_deref().unwrap_or("").contains("retry 1 of 1"),
                    "{why:?}"
                );
                assert!(now.error.is_none(), "a requeued execution has no error yet");
                let l = queue
                    .lease("default", Duration::from_secs(60))
                    .await
                    .unwrap();
                let job = l.expect("requeued job").job;
                assert_eq!(job.exec_id, e.exec_id);
                assert_eq!(
                    job.env.get("RESOURCE_NAME").map(String::as_str),
                    Some("vm-1")
                );
            } else {
                assert_eq!(now.status, Status::Lost, "retries used up");
            }
        }
    }
    use cloudo_core::{Job, Store};

    fn bounds(lost_after: u64, queue_timeout: u64) -> Bounds {
        Bounds {
            lost_after: Duration::from_secs(lost_after),
            queue_timeout: Duration::from_secs(queue_timeout),
            dedup_window: Duration::from_secs(600),
        }
    }

    fn parts() -> (Executions, SqliteQueue, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), Durability::Process).unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::new(db.clone()));
        let queue = SqliteQueue::new(db, 2);
        (Executions::new(store, Arc::new(queue.clone())), queue, dir)
    }

    #[tokio::test]
    async fn executions_no_worker_starts_end_after_the_queue_timeout() {
        let (ex, queue, _dir) = parts();
        let mut stale = new_execution("a", Status::Accepted);
        stale.requested_at = time::now() - chrono::Duration::seconds(10);
        let fresh = new_execution("b", Status::Accepted);
        // Requeued after a lost attempt: asked for long ago, but its attempt was recent.
        let mut requeued = new_execution("c", Status::Accepted);
        requeued.requested_at = stale.requested_at;
        for e in [&stale, &fresh, &requeued] {
            ex.store().create_execution(e, None).await.unwrap();
        }
        for to in [Status::Running, Status::Accepted] {
            ex.change(&requeued.exec_id, StatusChange::to(to))
                .await
                .unwrap();
        }
        sweep(&ex, &queue, &[], bounds(60, 5)).await.unwrap();
        let get = |id: &ExecId| {
            let (ex, id) = (ex.clone(), id.clone());
            async move { ex.store().get_execution(&id).await.unwrap().unwrap() }
        };
        let s = get(&stale.exec_id).await;
        assert_eq!(s.status, Status::Error);
        let why = s.error.unwrap_or_default();
        assert!(why.contains("not started within 5 s"), "{why}");
        assert!(why.contains("pool 'default'"), "{why}");
        assert_eq!(get(&fresh.exec_id).await.status, Status::Accepted);
        assert_eq!(get(&requeued.exec_id).await.status, Status::Accepted);
    }

    #[tokio::test]
    async fn silent_workers_and_dead_letters_are_settled() {
        let (ex, queue, _dir) = parts();
        // A running execution whose worker stopped heartbeating.
        let silent = new_execution("a", Status::Accepted);
        ex.store().create_execution(&silent, None).await.unwrap();
        ex.change(&silent.exec_id, StatusChange::to(Status::Running))
            .await
            .unwrap();
        // An accepted execution whose job was delivered twice without a result.
        let poisoned = new_execution("b", Status::Accepted);
        ex.store().create_execution(&poisoned, None).await.unwrap();
        queue
            .enqueue(
                "default",
                &Job::for_execution(&poisoned, Default::default(), None),
            )
            .await
            .unwrap();
        for _ in 0..2 {
            let l = queue
                .lease("default", Duration::from_secs(60))
                .await
                .unwrap()
                .unwrap();
            queue.release(&l, Duration::ZERO).await.unwrap();
        }
        assert!(
            queue
                .lease("default", Duration::from_secs(60))
                .await
                .unwrap()
                .is_none()
        );
        // A healthy running one is left alone.
        let healthy = new_execution("c", Status::Accepted);
        ex.store().create_execution(&healthy, None).await.unwrap();
        ex.change(&healthy.exec_id, StatusChange::to(Status::Running))
            .await
            .unwrap();

        tokio::time::sleep(Duration::from_millis(1100)).await;
        ex.store()
            .heartbeat(&healthy.exec_id, time::now())
            .await
            .unwrap();
        sweep(&ex, &queue, &["default".into()], bounds(1, 3600))
            .await
            .unwrap();

        let get = |id: ExecId| {
            let ex = ex.clone();
            async move { ex.store().get_execution(&id).await.unwrap().unwrap() }
        };
        let s = get(silent.exec_id.clone()).await;
        assert_eq!(s.status, Status::Lost);
        assert!(s.error.unwrap().contains("no heartbeat"));
        let p = get(poisoned.exec_id.clone()).await;
        assert_eq!(p.status, Status::Error);
        assert!(p.error.unwrap().contains("2 deliveries"));
        assert_eq!(get(healthy.exec_id.clone()).await.status, Status::Running);
    }
}
