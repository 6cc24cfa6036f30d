//! The `Reporter` port: how a worker tells the orchestrator what happened.
//!
//! The orchestrator is the only writer of execution state; a worker only reports. In the
//! embedded engine the reporter is the orchestrator's execution service called in process;
//! a standalone worker reports the same things over HTTP.

use async_trait::async_trait;
use cloudo_core::store::WorkerInfo;
use cloudo_core::{ExecId, Job, StatusChange};

/// The orchestrator's answer to "may I start this job?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The execution is now `running`, on this worker.
    Run,
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
}

#[async_trait]
pub trait Reporter: Send + Sync + 'static {
    /// `delivery` names this delivery of the job (message id and count): asking again for
    /// the same delivery, after an answer that was lost, gets `Run` again.
    async fn start(&self, job: &Job, worker_id: &str, delivery: &str)
    -> Result<Start, ReportError>;
    /// "Still running", with the output so far when it changed. Returns false when the
    /// execution should no longer run.
    async fn heartbeat(&self, exec_id: &ExecId, output: Option<&str>) -> Result<bool, ReportError>;
    async fn finish(&self, exec_id: &ExecId, change: StatusChange) -> Result<(), ReportError>;
    /// "This worker is alive, serves these pools, runs these executions" (every few seconds;
    /// what `GET /api/workers` shows).
    async fn alive(&self, info: &WorkerInfo) -> Result<(), ReportError>;
}
