//! The execution service: the one writer of execution state.
//!
//! Triggers create executions here; workers report here (through the [`Reporter`] port);
//! the reaper settles abandoned ones here. Every change goes through the store's checked
//! transition, and terminal changes wake the requests waiting on that execution (`?wait=`)
//! without polling.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cloudo_core::store::StoreResult;
use cloudo_core::{
    ExecId, Execution, Job, JobQueue, Schema, Status, StatusChange, Store, StoreError, time,
};
use cloudo_worker::{ReportError, Reporter, Start};
use tokio::sync::Notify;

/// Who asked for an execution, and with what.
#[derive(Debug, Clone, Default)]
pub struct TriggerRequest {
    pub initiator: String,
    pub team: Option<String>,
    /// The request body, already checked to be JSON.
    pub body: Option<String>,
    /// Contract variables derived from the request.
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the execution was recorded as error because it could not be queued: {0}")]
    Queue(String),
}

#[derive(Clone)]
pub struct Executions {
    store: Arc<dyn Store>,
    queue: Arc<dyn JobQueue>,
    /// Waiters per execution; an entry lives while someone waits.
    waiters: Arc<Mutex<HashMap<ExecId, Arc<Notify>>>>,
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
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn new_execution(schema: &Schema, req: &TriggerRequest, status: Status) -> Execution {
        Execution::new(
            schema,
            status,
            &req.initiator,
            req.team.clone(),
            req.body.clone(),
        )
    }

    /// Records an execution and queues its job. Returns only once both are committed.
    pub async fn trigger(
        &self,
        schema: &Schema,
        req: TriggerRequest,
    ) -> Result<Execution, TriggerError> {
        let e = Self::new_execution(schema, &req, Status::Accepted);
        self.store.create_execution(&e, None).await?;
        let job = Job::for_execution(&e, req.env);
        if let Err(err) = self.queue.enqueue(&e.worker, &job).await {
            let reason = format!("could not queue the job: {err}");
            tracing::error!(exec_id = %e.exec_id, error = %err, "enqueue failed");
            self.change(&e.exec_id, StatusChange::to(Status::Error).reason(reason))
                .await?;
            return Err(TriggerError::Queue(err.to_string()));
        }
        tracing::info!(exec_id = %e.exec_id, schema_id = %e.schema_id, pool = %e.worker,
            initiator = %e.initiator, "execution accepted");
        self.announce(&e.exec_id, e.status);
        Ok(e)
    }

    /// Records an execution that is terminal at birth (skipped, routed), with its reason.
    pub async fn record_terminal(
        &self,
        schema: &Schema,
        req: TriggerRequest,
        status: Status,
        reason: &str,
    ) -> StoreResult<Execution> {
        let mut e = Self::new_execution(schema, &req, status);
        e.error = Some(reason.to_string());
        self.store.create_execution(&e, Some(reason)).await?;
        tracing::info!(exec_id = %e.exec_id, schema_id = %e.schema_id, status = %status,
            reason, "execution recorded");
        self.announce(&e.exec_id, status);
        Ok(e)
    }

    /// Applies a checked state change and announces it.
    pub async fn change(&self, id: &ExecId, change: StatusChange) -> StoreResult<Execution> {
        let e = self.store.transition(id, &change, time::now()).await?;
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
            let _ = tokio::time::timeout(max, notified).await;
            self.store.get_execution(id).await
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
    async fn start(&self, job: &Job, worker_id: &str) -> Result<Start, ReportError> {
        let mut change = StatusChange::to(Status::Running);
        change.worker_id = Some(worker_id.to_string());
        match self.change(&job.exec_id, change).await {
            Ok(_) => Ok(Start::Run),
            Err(StoreError::Illegal(i)) => Ok(Start::Drop(format!("execution is {}", i.from))),
            Err(StoreError::NotFound(id)) => Ok(Start::Drop(format!("execution {id} not found"))),
            Err(e) => Err(ReportError::Retry(e.to_string())),
        }
    }

    async fn heartbeat(&self, exec_id: &ExecId) -> Result<bool, ReportError> {
        self.store
            .heartbeat(exec_id, time::now())
            .await
            .map_err(report_error)
    }

    async fn finish(&self, exec_id: &ExecId, change: StatusChange) -> Result<(), ReportError> {
        self.change(exec_id, change)
            .await
            .map(|_| ())
            .map_err(report_error)
    }
}
