//! [`StatusChange`]: what a state change writes besides the new status, and the guards
//! that make a decision taken on what was read land only on what it was taken for.

use super::{Execution, IllegalTransition, Status, Transition, check_transition};
use crate::time::Timestamp;

/// What a state change writes besides the new status.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub to: Status,
    pub reason: Option<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub output: Option<String>,
    pub output_truncated: bool,
    pub worker_id: Option<String>,
    pub runbook_commit: Option<String>,
    pub sandbox: Option<String>,
    pub oom: bool,
    /// Apply only if the execution is still in this status (a decision taken on what was
    /// read must not land on what changed meanwhile).
    pub only_from: Option<Status>,
    /// Apply only to this attempt of a run: the worker running it and when it started. A
    /// worker's report checked against one attempt must not land on the next one (the run
    /// requeued and started again meanwhile); the adapters check it in the same atomic step
    /// as the status.
    pub only_attempt: Option<(String, Timestamp)>,
}

impl StatusChange {
    pub fn to(status: Status) -> Self {
        Self {
            to: status,
            reason: None,
            exit_code: None,
            signal: None,
            output: None,
            output_truncated: false,
            worker_id: None,
            runbook_commit: None,
            sandbox: None,
            oom: false,
            only_from: None,
            only_attempt: None,
        }
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub fn only_from(mut self, status: Status) -> Self {
        self.only_from = Some(status);
        self
    }

    /// Applies the change to an execution in memory, after [`check_transition`] said yes.
    /// Adapters persist the result, so both adapters set the same fields the same way.
    pub fn apply(&self, e: &mut Execution, at: Timestamp) -> Result<Transition, IllegalTransition> {
        let to = self.to;
        if self.only_from.is_some_and(|f| f != e.status) {
            return Err(IllegalTransition { from: e.status, to });
        }
        if let Some((worker, started)) = &self.only_attempt
            && (e.worker_id.as_deref() != Some(worker.as_str()) || e.started_at != Some(*started))
        {
            return Err(IllegalTransition { from: e.status, to });
        }
        check_transition(e.status, to)?;
        let from = e.status;
        e.status = to;
        if to == Status::Running {
            e.started_at = Some(at);
            e.heartbeat_at = Some(at);
        }
        if to.is_terminal() {
            e.finished_at = Some(at);
        }
        if self.exit_code.is_some() {
            e.exit_code = self.exit_code;
        }
        if self.signal.is_some() {
            e.signal = self.signal;
        }
        if self.output.is_some() {
            e.output.clone_from(&self.output);
            e.output_truncated = self.output_truncated;
        }
        if self.worker_id.is_some() {
            e.worker_id.clone_from(&self.worker_id);
        }
        if self.runbook_commit.is_some() {
            e.runbook_commit.clone_from(&self.runbook_commit);
        }
        if self.sandbox.is_some() {
            e.sandbox.clone_from(&self.sandbox);
        }
        e.oom |= self.oom;
        if to == Status::Accepted {
            // Requeued: whatever went wrong before is history (in the transitions).
            e.error = None;
        } else if self.reason.is_some() && to != Status::Running {
            e.error.clone_from(&self.reason);
        }
        Ok(Transition {
            from: Some(from),
            to,
            at,
            reason: self.reason.clone(),
        })
    }
}
