//! The execution service: the one writer of execution state.
//!
//! Triggers submit executions here; workers report here (`reports.rs`, the in-process
//! `Reporter`); the reaper settles abandoned ones here. Every job is made by
//! [`Executions::enqueue`] (or the batch path of `submit`); every change goes through the
//! store's checked transition and is published on one event stream
//! ([`Executions::subscribe`]), which `?wait=` follows instead of polling. On a shared
//! store, changes made by other orchestrators reach it for the executions followed here
//! (`watch.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cloudo_core::queue::QueueResult;
use cloudo_core::store::{Batch, Created, DedupKey, NewExecution, StoreResult};
use cloudo_core::{
    ExecId, Execution, Job, JobQueue, Status, StatusChange, Store, StoreError, time,
};

mod control;
mod events;
mod gates;
mod intake;
mod logs;
mod observe;
mod reports;
mod verify;
mod watch;
pub use control::{CancelError, DecideError};
pub use events::{ExecutionEvent, Followed};
pub use reports::Refusal;
pub use watch::Watch;

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the execution was recorded as error because it could not be queued: {0}")]
    Queue(String),
}

/// What [`Executions::submit`] did.
#[derive(Debug, Clone)]
pub enum Submitted {
    /// Created (accepted ones queued), in batch order.
    New(Vec<Execution>),
    /// Seen within the dedup window: the executions of the first delivery, as they are now.
    Duplicate(Vec<Execution>),
}

#[derive(Clone)]
pub struct Executions {
    store: Arc<dyn Store>,
    queue: Arc<dyn JobQueue>,
    /// Every status change and log append made here, and status changes made by other
    /// orchestrators to watched executions, for whoever follows executions (`?wait=`, the
    /// live output stream).
    events: events::Channels,
    /// Executions followed here, re-read from a shared store by `watch::follow_store`.
    watches: Arc<watch::Watches>,
    /// With a shared store: how often watched executions are re-read.
    follow_every: Option<Duration>,
    /// Plans on-call notifications for status changes (into the outbox).
    notifier: Option<crate::services::notify::Notifier>,
    /// Bytes of output kept in an execution's log.
    log_cap: u64,
    /// The runs of this process's own worker pool, to stop a cancelled one at once.
    local_runs: Option<cloudo_worker::pool::Running>,
    /// Pools whose running runbooks are capped, across all their workers.
    pool_capacity: Arc<BTreeMap<String, u32>>,
    /// Records and queues in one commit (the embedded backend).
    intake: Option<Arc<dyn cloudo_core::store::Intake>>,
}

impl std::fmt::Debug for Executions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executions").finish_non_exhaustive()
    }
}

impl Executions {
    pub fn new(store: Arc<dyn Store>, queue: Arc<dyn JobQueue>) -> Self {
        Self {
            store,
            queue,
            events: events::Channels::default(),
            watches: Arc::default(),
            follow_every: None,
            notifier: None,
            log_cap: 1 << 20,
            local_runs: None,
            pool_capacity: Arc::default(),
            intake: None,
        }
    }

    /// Caps the running runbooks of these pools, across all their workers.
    pub fn with_pool_capacity(mut self, caps: BTreeMap<String, u32>) -> Self {
        self.pool_capacity = Arc::new(caps);
        self
    }

    pub fn with_notifier(mut self, n: crate::services::notify::Notifier) -> Self {
        self.notifier = Some(n);
        self
    }

    /// Keeps at most `cap` bytes of each execution's log (the output cap).
    pub fn with_log_cap(mut self, cap: usize) -> Self {
        self.log_cap = cap as u64;
        self
    }

    /// The runs of the in-process worker pool (the embedded engine).
    pub fn with_local_runs(mut self, runs: cloudo_worker::pool::Running) -> Self {
        self.local_runs = Some(runs);
        self
    }

    /// For a store shared by several orchestrators: watched executions are re-read every
    /// `every` (by the task [`Executions::follow_store`] starts).
    pub fn shared(mut self, every: Duration) -> Self {
        self.follow_every = Some(every);
        self
    }

    /// On a shared store, starts the task that brings other orchestrators' changes of
    /// watched executions onto the event stream (until `stop`).
    pub fn follow_store(
        &self,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let every = self.follow_every?;
        Some(tokio::spawn(watch::follow_store(self.clone(), every, stop)))
    }

    /// Follows one execution's changes, wherever they are made, while the guard lives.
    pub fn watch(&self, id: &ExecId) -> Watch {
        Watch::new(self.watches.clone(), id)
    }

    /// The store, for the services; handlers get [`Executions::view`].
    pub(in crate::services) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// What handlers may read of the store.
    pub fn view(&self) -> crate::services::view::StoreView {
        crate::services::view::StoreView::new(self.store.clone())
    }

    /// Records a worker's report of itself (`POST /api/worker/alive`).
    pub async fn worker_alive(&self, info: &cloudo_core::store::WorkerInfo) -> StoreResult<()> {
        self.store.put_worker(info).await
    }

    /// Records the batches of one delivery (each deduplicated by its own key, the body
    /// stored once) and queues a job for each accepted execution, with its batch's `env`
    /// as its context. Returns only once all are committed, one answer per batch.
    pub async fn submit(
        &self,
        batches: Vec<(Batch, BTreeMap<String, String>)>,
        body: Option<&str>,
    ) -> Result<Vec<Submitted>, TriggerError> {
        let mut store_batches = Vec::with_capacity(batches.len());
        for (mut b, env) in batches {
            for n in &mut b.executions {
                n.execution.env = env.clone();
                n.execution.request_body = None;
            }
            store_batches.push(b);
        }
        let (created, mut gates, queued) = self.record_and_queue(&store_batches, body).await?;
        let mut queued = queued.into_iter();
        let mut out = Vec::with_capacity(created.len());
        let mut queue_error = None;
        for (batch, created) in store_batches.into_iter().zip(created) {
            match created {
                Created::Duplicate(ids) => out.push(Submitted::Duplicate(
                    self.duplicate(&ids, batch.dedup.as_ref()).await?,
                )),
                Created::New => {
                    let mut executions = Vec::with_capacity(batch.executions.len());
                    for n in batch.executions {
                        let gated = if n.execution.status == Status::Accepted {
                            let gate = gates.pop_front().unwrap_or(gates::Gate::Go);
                            let enqueued = match gate {
                                gates::Gate::Go => queued.next(),
                                _ => None,
                            };
                            Some((gate, enqueued))
                        } else {
                            None
                        };
                        let (e, err) = self.recorded(n, gated).await?;
                        queue_error = queue_error.or(err);
                        executions.push(e);
                    }
                    out.push(Submitted::New(executions));
                }
            }
        }
        match queue_error {
            Some(e) => Err(TriggerError::Queue(e)),
            None => Ok(out),
        }
    }

    /// The executions of a duplicate delivery, as they are now.
    async fn duplicate(
        &self,
        ids: &[ExecId],
        dedup: Option<&DedupKey>,
    ) -> Result<Vec<Execution>, TriggerError> {
        let mut existing = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(e) = self.store.get_execution(id).await? {
                // Still waiting for a worker: the first delivery's orchestrator may have
                // died between recording and queueing. Queue it again; a second message
                // for one execution is dropped at start, so it still runs once.
                let e = if e.status == Status::Accepted {
                    self.dispatch(e).await?
                } else {
                    e
                };
                existing.push(e);
            }
        }
        tracing::info!(
            dedup_key = dedup.map(|d| d.key.as_str()).unwrap_or_default(),
            executions = existing.len(),
            "duplicate delivery; nothing new recorded"
        );
        Ok(existing)
    }

    /// A just-recorded execution, after its limits and its job (`gated`, for an accepted
    /// one): recorded `skipped` or `error` when a limit or the queue refused it (a queue
    /// error is returned beside it); logged, notified and announced.
    async fn recorded(
        &self,
        n: NewExecution,
        gated: Option<(gates::Gate, Option<QueueResult<String>>)>,
    ) -> Result<(Execution, Option<String>), TriggerError> {
        let NewExecution {
            mut execution,
            reason,
        } = n;
        let mut queue_error = None;
        if let Some((gate, enqueued)) = gated {
            (execution, queue_error) = self.after_gate(execution, gate, enqueued).await?;
        }
        tracing::info!(exec_id = %execution.exec_id, schema_id = %execution.schema_id,
            pool = %execution.pool, initiator = %execution.initiator,
            status = %execution.status, reason = reason.as_deref().unwrap_or(""),
            "execution recorded");
        if let Some(n) = &self.notifier {
            n.on_created(&execution).await;
        }
        observe::observe(&execution);
        self.announce(&execution.exec_id, execution.status);
        Ok((execution, queue_error))
    }

    /// Applies a checked state change and announces it. A final status first writes its
    /// notifications to the outbox, held; they are released once the change is stored
    /// (or marked not sent when it was refused), so none is lost or sent for nothing.
    pub async fn change(&self, id: &ExecId, change: StatusChange) -> StoreResult<Execution> {
        Ok(self.change_acking(id, change, None).await?.0)
    }

    /// [`Self::change`]; with `ack`, the job's message that lease holds is acknowledged in
    /// the same commit where the backend can (its [`cloudo_core::store::Intake`]): whether
    /// it was.
    async fn change_acking(
        &self,
        id: &ExecId,
        change: StatusChange,
        ack: Option<&cloudo_core::Lease>,
    ) -> StoreResult<(Execution, bool)> {
        let at = time::now();
        let mut held = Vec::new();
        // Planned when a channel exists, and for every failure (an on-call one that pages
        // nobody records why).
        if let Some(n) = &self.notifier
            && change.to.is_terminal()
            && (n.enabled() || cloudo_core::notify::FAILURES.contains(&change.to))
            && let Some(mut post) = self.store.get_execution(id).await?
            && change.apply(&mut post, at).is_ok()
        {
            held = n.plan(&post).await;
            // Notifications never hold up an execution: if the outbox cannot be written,
            // the change goes ahead without them (and the failure is logged).
            if !held.is_empty()
                && let Err(e) = self.store.add_notifications(&held).await
            {
                tracing::error!(exec_id = %id, error = %e, "cannot write notifications to the outbox");
                held.clear();
            }
        }
        let result = match (ack, &self.intake) {
            (Some(lease), Some(intake)) => {
                crate::services::metered::timed(
                    "transition_and_ack",
                    intake.transition_and_ack(id, &change, at, lease),
                )
                .await
            }
            _ => self
                .store
                .transition(id, &change, at)
                .await
                .map(|e| (e, false)),
        };
        if let Some(n) = &self.notifier
            && !held.is_empty()
        {
            n.release(held, result.is_ok()).await;
        }
        let (e, acked) = result?;
        observe::observe(&e);
        self.announce(id, e.status);
        if e.status.is_terminal() && self.gated(&e) {
            self.release_slots(&e).await;
        }
        if e.status.is_terminal() && (e.verify.is_some() || e.verify_of.is_some()) {
            self.after_end(&e).await;
        }
        Ok((e, acked))
    }

    /// Queues the job of an accepted execution, whose request body is `body`. The one
    /// place jobs are made (new executions, duplicates still waiting, requeues).
    pub async fn enqueue(&self, e: &Execution, body: Option<&str>) -> QueueResult<String> {
        let (pool, job) = job_of(e, body);
        self.queue.enqueue(&pool, &job).await
    }
}

/// The job of an accepted execution and the pool it goes to.
fn job_of(e: &Execution, body: Option<&str>) -> (String, Job) {
    (e.pool.clone(), Job::for_execution(e, e.env.clone(), body))
}

#[cfg(test)]
mod tests;
