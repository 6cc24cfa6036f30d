//! The execution service: the one writer of execution state.
//!
//! Triggers submit executions here; workers report here (through the [`Reporter`] port);
//! the reaper settles abandoned ones here. Every change goes through the store's checked
//! transition, and terminal changes wake the requests waiting on that execution (`?wait=`)
//! without polling.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cloudo_core::store::{Created, DedupKey, NewExecution, StoreResult};
use cloudo_core::{
    ExecId, Execution, Job, JobQueue, Status, StatusChange, Store, StoreError, time,
};
use cloudo_worker::{ReportError, Reporter, Start};
use tokio::sync::Notify;

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
    /// Waiters per execution; an entry lives while someone waits.
    waiters: Arc<Mutex<HashMap<ExecId, Arc<Notify>>>>,
    /// With a shared store, another orchestrator may record the end: waiters also look
    /// at the store this often.
    poll: Option<Duration>,
    /// Plans on-call notifications for status changes (into the outbox).
    notifier: Option<crate::notify::Notifier>,
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
            waiters: Arc::default(),
            poll: None,
            notifier: None,
        }
    }

    pub fn with_notifier(mut self, n: crate::notify::Notifier) -> Self {
        self.notifier = Some(n);
        self
    }

    /// For a store shared by several orchestrators: `?wait=` also polls every `poll`.
    pub fn shared(mut self, poll: Duration) -> Self {
        self.poll = Some(poll);
        self
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Records executions (atomically, deduplicated by `dedup`) and queues a job for each
    /// accepted one, with `env` as its context. Returns only once all are committed.
    pub async fn submit(
        &self,
        mut batch: Vec<NewExecution>,
        env: &BTreeMap<String, String>,
        dedup: Option<&DedupKey>,
    ) -> Result<Submitted, TriggerError> {
        for n in &mut batch {
            n.execution.env = env.clone();
        }
        if let Created::Duplicate(ids) = self.store.create_executions(&batch, dedup).await? {
            let mut existing = Vec::with_capacity(ids.len());
            for id in &ids {
                if let Some(e) = self.store.get_execution(id).await? {
                    // Still waiting for a worker: the first delivery's orchestrator may have
                    // died between recording and queueing. Queue it again; a second message
                    // for one execution is dropped at start, so it still runs once.
                    if e.status == Status::Accepted {
                        let job = Job::for_execution(&e, e.env.clone());
                        self.queue
                            .enqueue(&e.worker, &job)
                            .await
                            .map_err(|err| TriggerError::Queue(err.to_string()))?;
                    }
                    existing.push(e);
                }
            }
            tracing::info!(
                dedup_key = dedup.map(|d| d.key.as_str()).unwrap_or_default(),
                executions = existing.len(),
                "duplicate delivery; nothing new recorded"
            );
            return Ok(Submitted::Duplicate(existing));
        }
        let mut created = Vec::with_capacity(batch.len());
        let mut queue_error = None;
        for NewExecution {
            mut execution,
            reason,
        } in batch
        {
            if execution.status == Status::Accepted {
                let job = Job::for_execution(&execution, execution.env.clone());
                if let Err(err) = self.queue.enqueue(&execution.worker, &job).await {
                    tracing::error!(exec_id = %execution.exec_id, error = %err, "enqueue failed");
                    let reason = format!("could not queue the job: {err}");
                    execution = self
                        .change(
                            &execution.exec_id,
                            StatusChange::to(Status::Error).reason(reason),
                        )
                        .await?;
                    queue_error = Some(err.to_string());
                }
            }
            tracing::info!(exec_id = %execution.exec_id, schema_id = %execution.schema_id,
                pool = %execution.worker, initiator = %execution.initiator,
                status = %execution.status, reason = reason.as_deref().unwrap_or(""),
                "execution recorded");
            if let Some(n) = &self.notifier {
                n.on_created(&execution).await;
            }
            self.announce(&execution.exec_id, execution.status);
            created.push(execution);
        }
        match queue_error {
            Some(e) => Err(TriggerError::Queue(e)),
            None => Ok(Submitted::New(created)),
        }
    }

    /// A worker asks to run `id`: `Ok(Ok(()))` to run it, `Ok(Err(why))` to drop the job
    /// (it already ran, or runs elsewhere, or ended). The same worker asking again for the
    /// same `delivery` is told to run: its first answer may have been lost with an
    /// orchestrator that died after recording the start.
    pub async fn start_run(
        &self,
        id: &ExecId,
        worker_id: &str,
        delivery: Option<&str>,
    ) -> StoreResult<Result<(), String>> {
        let mut change = StatusChange::to(Status::Running);
        change.worker_id = Some(worker_id.to_string());
        let mark = delivery.map(|d| format!("delivery {d}"));
        change.reason.clone_from(&mark);
        match self.change(id, change).await {
            Ok(_) => Ok(Ok(())),
            Err(StoreError::Illegal(i)) => {
                if i.from == Status::Running
                    && mark.is_some()
                    && let Some(e) = self.store.get_execution(id).await?
                    && e.status == Status::Running
                    && e.worker_id.as_deref() == Some(worker_id)
                    && e.transitions.last().and_then(|t| t.reason.as_ref()) == mark.as_ref()
                {
                    return Ok(Ok(()));
                }
                Ok(Err(format!("execution is {}", i.from)))
            }
            Err(e) => Err(e),
        }
    }

    /// Applies a checked state change and announces it. A final status first writes its
    /// notifications to the outbox, held; they are released once the change is stored
    /// (or marked not sent when it was refused), so none is lost or sent for nothing.
    pub async fn change(&self, id: &ExecId, change: StatusChange) -> StoreResult<Execution> {
        let at = time::now();
        let mut held = Vec::new();
        if let Some(n) = &self.notifier
            && change.to.is_terminal()
            && n.enabled()
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
        let result = self.store.transition(id, &change, at).await;
        if let Some(n) = &self.notifier
            && !held.is_empty()
        {
            n.release(held, result.is_ok()).await;
        }
        let e = result?;
        self.announce(id, e.status);
        Ok(e)
    }

    fn announce(&self, id: &ExecId, status: Status) {
        if !status.is_terminal() {
            return;
        }
        let waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = waiters.get(id) {
            n.notify_waiters();
        }
    }

    /// The execution once it is terminal, or as it is when `max` has passed.
    pub async fn wait_terminal(
        &self,
        id: &ExecId,
        max: Duration,
    ) -> StoreResult<Option<Execution>> {
        let notify = {
            let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            w.entry(id.clone()).or_default().clone()
        };
        let result = async {
            let notified = notify.notified();
            tokio::pin!(notified);
            // Registered before reading, so a change between the read and the wait is seen.
            notified.as_mut().enable();
            match self.store.get_execution(id).await? {
                Some(e) if !e.status.is_terminal() => {}
                other => return Ok(other),
            }
            let deadline = tokio::time::Instant::now() + max;
            loop {
                let step = self.poll.unwrap_or(max);
                let until = deadline.min(tokio::time::Instant::now() + step);
                if tokio::time::timeout_at(until, notified.as_mut())
                    .await
                    .is_ok()
                    || tokio::time::Instant::now() >= deadline
                {
                    return self.store.get_execution(id).await;
                }
                match self.store.get_execution(id).await? {
                    Some(e) if !e.status.is_terminal() => {}
                    other => return Ok(other),
                }
            }
        }
        .await;
        let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        // The map's reference and ours: nobody else waits on this id.
        if Arc::strong_count(&notify) <= 2 {
            w.remove(id);
        }
        result
    }
}

fn report_error(e: StoreError) -> ReportError {
    match e {
        StoreError::Illegal(i) => ReportError::Refused(i.to_string()),
        StoreError::NotFound(id) => ReportError::Refused(format!("execution {id} not found")),
        other => ReportError::Retry(other.to_string()),
    }
}

/// The in-process worker pool reports straight into the service.
#[async_trait]
impl Reporter for Executions {
    async fn start(
        &self,
        job: &Job,
        worker_id: &str,
        delivery: &str,
    ) -> Result<Start, ReportError> {
        match self
            .start_run(&job.exec_id, worker_id, Some(delivery))
            .await
        {
            Ok(Ok(())) => Ok(Start::Run),
            Ok(Err(why)) => Ok(Start::Drop(why)),
            Err(StoreError::NotFound(id)) => Ok(Start::Drop(format!("execution {id} not found"))),
            Err(e) => Err(ReportError::Retry(e.to_string())),
        }
    }

    async fn heartbeat(&self, exec_id: &ExecId, output: Option<&str>) -> Result<bool, ReportError> {
        self.store
            .heartbeat(exec_id, time::now(), output)
            .await
            .map_err(report_error)
    }

    async fn finish(&self, exec_id: &ExecId, change: StatusChange) -> Result<(), ReportError> {
        self.change(exec_id, change)
            .await
            .map(|_| ())
            .map_err(report_error)
    }

    async fn alive(&self, info: &cloudo_core::store::WorkerInfo) -> Result<(), ReportError> {
        self.store.put_worker(info).await.map_err(report_error)
    }
}
