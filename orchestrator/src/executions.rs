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
use cloudo_core::store::{Batch, Created, DedupKey, NewExecution, StoreResult};
use cloudo_core::{
    ExecId, Execution, Job, JobQueue, Status, StatusChange, Store, StoreError, time,
};
use cloudo_worker::{ReportError, Reporter, RunRef, Start};
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
        let created = self.store.create_batches(&store_batches, body).await?;
        // Every new accepted execution's job, queued in one step.
        let mut jobs = Vec::new();
        for (batch, created) in store_batches.iter().zip(&created) {
            if *created == Created::New {
                for n in &batch.executions {
                    let e = &n.execution;
                    if e.status == Status::Accepted {
                        jobs.push((e.worker.clone(), Job::for_execution(e, e.env.clone(), body)));
                    }
                }
            }
        }
        let mut queued = self.queue.enqueue_many(&jobs).await.into_iter();
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
                        let enqueued = if n.execution.status == Status::Accepted {
                            queued.next()
                        } else {
                            None
                        };
                        let (e, err) = self.recorded(n, enqueued).await?;
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
                if e.status == Status::Accepted {
                    let job = Job::for_execution(&e, e.env.clone(), e.request_body.as_deref());
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
        Ok(existing)
    }

    /// A just-recorded execution, after its job was queued (`enqueued`, for an accepted
    /// one): recorded `error` when the queue refused it (that error is returned beside it);
    /// logged, notified and announced.
    async fn recorded(
        &self,
        n: NewExecution,
        enqueued: Option<cloudo_core::queue::QueueResult<String>>,
    ) -> Result<(Execution, Option<String>), TriggerError> {
        let NewExecution {
            mut execution,
            reason,
        } = n;
        let mut queue_error = None;
        if let Some(Err(err)) = enqueued {
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
        tracing::info!(exec_id = %execution.exec_id, schema_id = %execution.schema_id,
            pool = %execution.worker, initiator = %execution.initiator,
            status = %execution.status, reason = reason.as_deref().unwrap_or(""),
            "execution recorded");
        if let Some(n) = &self.notifier {
            n.on_created(&execution).await;
        }
        self.announce(&execution.exec_id, execution.status);
        Ok((execution, queue_error))
    }

    /// A worker asks to run `id`: `Ok(Ok(()))` to run it, `Ok(Err(why))` to drop the job
    /// (it already ran, or runs elsewhere, or ended). The same worker asking again for the
    /// same delivery is told to run: its first answer may have been lost with an
    /// orchestrator that died after recording the start.
    pub async fn start_run(&self, id: &ExecId, run: &RunRef) -> StoreResult<Result<(), String>> {
        let mut change = StatusChange::to(Status::Running);
        change.worker_id = Some(run.worker_id.clone());
        change.reason = Some(delivery_mark(&run.delivery));
        match self.change(id, change).await {
            Ok(_) => Ok(Ok(())),
            Err(StoreError::Illegal(i)) => {
                if i.from == Status::Running
                    && let Some(e) = self.store.get_execution(id).await?
                    && runs_it(&e, run)
                {
                    return Ok(Ok(()));
                }
                Ok(Err(format!("execution {}", i.from)))
            }
            Err(e) => Err(e),
        }
    }

    /// The execution `run` reports on. `Ok(None)` when it is not (any more) running;
    /// [`Refusal`] when it runs on another worker or for another delivery.
    pub async fn owned(&self, id: &ExecId, run: &RunRef) -> Result<Option<Execution>, Refusal> {
        let e = self
            .store
            .get_execution(id)
            .await?
            .ok_or_else(|| Refusal::NotFound(id.clone()))?;
        if e.status != Status::Running {
            return Ok(None);
        }
        if !runs_it(&e, run) {
            tracing::warn!(exec_id = %id, worker_id = %run.worker_id,
                "a report on a run that this worker and delivery did not start; refused");
            return Err(Refusal::NotOwner(format!(
                "execution {id} was started by another worker or delivery; \
                 only the worker that started a run may report on it"
            )));
        }
        Ok(Some(e))
    }

    /// A heartbeat from the worker running `id`: false when it should stop.
    pub async fn heartbeat_run(
        &self,
        id: &ExecId,
        run: &RunRef,
        output: Option<&str>,
    ) -> Result<bool, Refusal> {
        if self.owned(id, run).await?.is_none() {
            return Ok(false);
        }
        Ok(self.store.heartbeat(id, time::now(), output).await?)
    }

    /// The final report of the worker running `id`.
    pub async fn finish_run(
        &self,
        id: &ExecId,
        run: &RunRef,
        change: StatusChange,
    ) -> Result<Execution, Refusal> {
        self.owned(id, run).await?;
        let mut change = change;
        // Settled only if still running: the run's report never overrules the reaper.
        change.only_from = Some(Status::Running);
        Ok(self.change(id, change).await?)
    }

    /// The request body of the run `run` is running.
    pub async fn payload_for(&self, id: &ExecId, run: &RunRef) -> Result<Option<String>, Refusal> {
        match self.owned(id, run).await? {
            Some(e) => Ok(e.request_body),
            None => Err(Refusal::NotOwner(format!("execution {id} is not running"))),
        }
    }

    /// Applies a checked state change and announces it. A final status first writes its
    /// notifications to the outbox, held; they are released once the change is stored
    /// (or marked not sent when it was refused), so none is lost or sent for nothing.
    pub async fn change(&self, id: &ExecId, change: StatusChange) -> StoreResult<Execution> {
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

/// Why a worker's report is refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("execution {0} not found")]
    NotFound(ExecId),
    /// Another worker or delivery runs it.
    #[error("{0}")]
    NotOwner(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a running execution records of the delivery that started it: a digest, so the
/// execution's answer (transitions are shown to viewers) does not hand out what a forged
/// report would need.
fn delivery_mark(delivery: &str) -> String {
    let digest = cloudo_core::auth::hash_key(delivery);
    format!("delivery {}", &digest[..16])
}

/// Is `e` running on `run`'s worker, for `run`'s delivery?
fn runs_it(e: &Execution, run: &RunRef) -> bool {
    e.worker_id.as_deref() == Some(run.worker_id.as_str())
        && e.transitions
            .iter()
            .rev()
            .find(|t| t.to == Status::Running)
            .and_then(|t| t.reason.as_deref())
            == Some(delivery_mark(&run.delivery).as_str())
}

fn report_error(e: StoreError) -> ReportError {
    match e {
        StoreError::Illegal(i) => ReportError::Refused(i.to_string()),
        StoreError::NotFound(id) => ReportError::Gone(format!("execution {id} not found")),
        other => ReportError::Retry(other.to_string()),
    }
}

fn refusal_error(r: Refusal) -> ReportError {
    match r {
        Refusal::Store(e) => report_error(e),
        other => ReportError::Refused(other.to_string()),
    }
}

/// The in-process worker pool reports straight into the service.
#[async_trait]
impl Reporter for Executions {
    async fn start(&self, job: &Job, run: &RunRef) -> Result<Start, ReportError> {
        match self.start_run(&job.exec_id, run).await {
            Ok(Ok(())) => Ok(Start::Run),
            Ok(Err(why)) => Ok(Start::Drop(why)),
            Err(StoreError::NotFound(id)) => Ok(Start::Drop(format!("execution {id} not found"))),
            Err(e) => Err(ReportError::Retry(e.to_string())),
        }
    }

    async fn heartbeat(
        &self,
        exec_id: &ExecId,
        run: &RunRef,
        output: Option<&str>,
    ) -> Result<bool, ReportError> {
        self.heartbeat_run(exec_id, run, output)
            .await
            .map_err(refusal_error)
    }

    async fn finish(
        &self,
        exec_id: &ExecId,
        run: &RunRef,
        change: StatusChange,
    ) -> Result<(), ReportError> {
        self.finish_run(exec_id, run, change)
            .await
            .map(|_| ())
            .map_err(refusal_error)
    }

    async fn payload(&self, exec_id: &ExecId, run: &RunRef) -> Result<Option<String>, ReportError> {
        self.payload_for(exec_id, run).await.map_err(refusal_error)
    }

    async fn alive(&self, info: &cloudo_core::store::WorkerInfo) -> Result<(), ReportError> {
        self.store.put_worker(info).await.map_err(report_error)
    }
}
