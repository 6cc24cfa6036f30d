//! The `Reporter` port: how a worker tells the orchestrator what happened.
//!
//! The orchestrator is the only writer of execution state; a worker only reports. In the
//! embedded engine the reporter is the orchestrator's execution service called in process;
//! a standalone worker reports the same things over HTTP.

pub use crate::protocol::{HeartbeatAnswer, LogPiece, RunRef};
use async_trait::async_trait;
use cloudo_core::store::WorkerInfo;
use cloudo_core::{ExecId, Job, Lease, StatusChange};

/// The orchestrator's answer to "may I start this job?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The execution is now `running`, on this worker; its output goes to the execution's
    /// log from `log_offset`.
    Run { log_offset: u64 },
    /// Do not run it (already ran, cancelled, lost...): acknowledge the message and move on.
    Drop(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Try again later (the orchestrator or its store is unavailable).
    #[error("report failed, will retry: {0}")]
    Retry(String),
    /// The orchestrator refused the report for good (e.g. the execution already ended).
    #[error("report refused: {0}")]
    Refused(String),
    /// The execution does not exist (any more): nothing to report on.
    #[error("execution gone: {0}")]
    Gone(String),
}

#[async_trait]
pub trait Reporter: Send + Sync + 'static {
    /// Asking again for the same delivery, after an answer that was lost, gets `Run` again.
    async fn start(&self, job: &Job, run: &RunRef) -> Result<Start, ReportError>;
    /// "Still running", with output the orchestrator does not have yet. The answer says
    /// whether the execution should go on running and how long its log now is.
    async fn heartbeat(
        &self,
        exec_id: &ExecId,
        run: &RunRef,
        log: Option<&LogPiece>,
    ) -> Result<HeartbeatAnswer, ReportError>;
    /// The final change, with the end of the output the log does not have yet.
    async fn finish(
        &self,
        exec_id: &ExecId,
        run: &RunRef,
        change: StatusChange,
        log: Option<&LogPiece>,
    ) -> Result<(), ReportError>;
    /// [`Self::finish`], and the job's message `lease` holds acknowledged in the same commit
    /// where this reporter can (the orchestrator's own, on the embedded backend): whether it
    /// was. When it was not, the caller acknowledges it.
    async fn finish_and_ack(
        &self,
        exec_id: &ExecId,
        run: &RunRef,
        change: StatusChange,
        log: Option<&LogPiece>,
        _lease: &Lease,
    ) -> Result<bool, ReportError> {
        self.finish(exec_id, run, change, log).await.map(|()| false)
    }
    /// The request body of a running execution, for a job whose payload was too large to
    /// travel in the message (`Job::payload_bytes`).
    async fn payload(&self, exec_id: &ExecId, run: &RunRef) -> Result<Option<String>, ReportError>;
    /// "This worker is alive, serves these pools, runs these executions" (every few seconds;
    /// what `GET /api/workers` shows).
    async fn alive(&self, info: &WorkerInfo) -> Result<(), ReportError>;
}
