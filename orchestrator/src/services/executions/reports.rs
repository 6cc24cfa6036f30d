//! What workers report about their runs, checked here: a run is started once (again for
//! the same delivery whose answer was lost), and only the worker and delivery that started
//! it may heartbeat, finish or fetch its payload. Also the in-process [`Reporter`].

use async_trait::async_trait;
use cloudo_core::store::StoreResult;
use cloudo_core::{ExecId, Execution, Job, Lease, Status, StatusChange, StoreError, time};
use cloudo_worker::protocol::{HeartbeatAnswer, LogPiece};
use cloudo_worker::{ReportError, Reporter, RunRef, Start};

use super::Executions;

/// How often a running execution's heartbeat is recorded at most, however often its worker
/// reports (it sends output as it comes).
const HEARTBEAT_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(1);

impl Executions {
    /// A worker asks to run `id`: `Ok(Ok(log_offset))` to run it, its output going to the
    /// log from there; `Ok(Err(why))` to drop the job (it already ran, or runs elsewhere, or
    /// ended). The same worker asking again for the same delivery is told to run: its first
    /// answer may have been lost with an orchestrator that died after recording the start.
    pub async fn start_run(&self, id: &ExecId, run: &RunRef) -> StoreResult<Result<u64, String>> {
        let mut change = StatusChange::to(Status::Running);
        change.worker_id = Some(run.worker_id.clone());
        change.reason = Some(delivery_mark(&run.delivery));
        match self.change(id, change).await {
            Ok(e) => Ok(Ok(self.start_log(&e).await?)),
            Err(StoreError::Illegal(i)) => {
                if i.from == Status::Running
                    && let Some(e) = self.store.get_execution(id).await?
                    && runs_it(&e, run)
                {
                    return Ok(Ok(self.store.read_log(id, 0, 0).await?.size));
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

    /// Whether `id` was cancelled while `run` ran it (its output still goes to the log).
    async fn stopped_run(&self, id: &ExecId, run: &RunRef) -> StoreResult<bool> {
        Ok(self
            .store
            .get_execution(id)
            .await?
            .is_some_and(|e| e.status == Status::Stopped && runs_it(&e, run)))
    }

    /// A heartbeat from the worker running `id`, with output for its log: whether it
    /// should go on, and the log's length.
    pub async fn heartbeat_run(
        &self,
        id: &ExecId,
        run: &RunRef,
        log: Option<&LogPiece>,
    ) -> Result<HeartbeatAnswer, Refusal> {
        let Some(e) = self.owned(id, run).await? else {
            // A cancelled run still logs what it wrote until it stopped.
            let log_size = match log {
                Some(piece) if self.stopped_run(id, run).await? => {
                    Some(self.append_log(id, piece).await?)
                }
                _ => None,
            };
            return Ok(HeartbeatAnswer {
                running: false,
                log_size,
            });
        };
        let log_size = match log {
            Some(piece) => Some(self.append_log(id, piece).await?),
            None => None,
        };
        // Workers send output several times a second while a run writes; the heartbeat
        // itself is recorded at most once per HEARTBEAT_EVERY.
        let now = time::now();
        let fresh = e
            .heartbeat_at
            .is_some_and(|at| now - at < HEARTBEAT_EVERY && at <= now);
        let running = fresh || self.store.heartbeat(id, now).await?;
        Ok(HeartbeatAnswer { running, log_size })
    }

    /// The final report of the worker running `id`, with the end of its log.
    pub async fn finish_run(
        &self,
        id: &ExecId,
        run: &RunRef,
        change: StatusChange,
        log: Option<&LogPiece>,
    ) -> Result<Execution, Refusal> {
        Ok(self.finish_run_acking(id, run, change, log, None).await?.0)
    }

    /// [`Self::finish_run`] of an in-process worker, which acknowledges its job (`ack`) in
    /// the same commit where the backend can: whether it was.
    async fn finish_run_acking(
        &self,
        id: &ExecId,
        run: &RunRef,
        change: StatusChange,
        log: Option<&LogPiece>,
        ack: Option<&Lease>,
    ) -> Result<(Execution, bool), Refusal> {
        // Not running (queued, requeued, ended): nobody may finish it now.
        let Some(e) = self.owned(id, run).await? else {
            if let Some(piece) = log
                && self.stopped_run(id, run).await?
            {
                self.append_log(id, piece).await?;
            }
            return Err(Refusal::NotOwner(format!("execution {id} is not running")));
        };
        if let Some(piece) = log {
            self.append_log(id, piece).await?;
        }
        let mut change = change;
        // Settled only if this attempt is still running: the run's report never overrules
        // the reaper, nor lands on a later attempt started meanwhile.
        change.only_from = Some(Status::Running);
        change.only_attempt = e.started_at.map(|t| (run.worker_id.clone(), t));
        Ok(self.change_acking(id, change, ack).await?)
    }

    /// The request body of the run `run` is running.
    pub async fn payload_for(&self, id: &ExecId, run: &RunRef) -> Result<Option<String>, Refusal> {
        match self.owned(id, run).await? {
            Some(e) => Ok(e.request_body),
            None => Err(Refusal::NotOwner(format!("execution {id} is not running"))),
        }
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
            Ok(Ok(log_offset)) => Ok(Start::Run { log_offset }),
            Ok(Err(why)) => Ok(Start::Drop(why)),
            Err(StoreError::NotFound(id)) => Ok(Start::Drop(format!("execution {id} not found"))),
            Err(e) => Err(ReportError::Retry(e.to_string())),
        }
    }

    async fn heartbeat(
        &self,
        exec_id: &ExecId,
        run: &RunRef,
        log: Option<&LogPiece>,
    ) -> Result<HeartbeatAnswer, ReportError> {
        self.heartbeat_run(exec_id, run, log)
            .await
            .map_err(refusal_error)
    }

    async fn finish(
        &self,
        exec_id: &ExecId,
        run: &RunRef,
        change: StatusChange,
        log: Option<&LogPiece>,
    ) -> Result<(), ReportError> {
        self.finish_run(exec_id, run, change, log)
            .await
            .map(|_| ())
            .map_err(refusal_error)
    }

    async fn finish_and_ack(
        &self,
        exec_id: &ExecId,
        run: &RunRef,
        change: StatusChange,
        log: Option<&LogPiece>,
        lease: &Lease,
    ) -> Result<bool, ReportError> {
        self.finish_run_acking(exec_id, run, change, log, Some(lease))
            .await
            .map(|(_, acked)| acked)
            .map_err(refusal_error)
    }

    async fn payload(&self, exec_id: &ExecId, run: &RunRef) -> Result<Option<String>, ReportError> {
        self.payload_for(exec_id, run).await.map_err(refusal_error)
    }

    async fn alive(&self, info: &cloudo_core::store::WorkerInfo) -> Result<(), ReportError> {
        self.store.put_worker(info).await.map_err(report_error)
    }
}
