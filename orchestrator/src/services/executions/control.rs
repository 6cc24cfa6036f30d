//! What people decide about an execution: cancel it (and, with the approval gate, approve
//! or reject it). Each is a checked change on the hub, so it is published, notified and
//! races with workers and the reaper like any other change.

use cloudo_core::approval::{Decision, Verdict};
use cloudo_core::{ExecId, Execution, Status, StatusChange, StoreError, time};

use super::Executions;

/// Why a cancel did nothing.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("no execution {0}")]
    NotFound(ExecId),
    #[error("execution {id} already ended: it is {status}")]
    Ended { id: ExecId, status: Status },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a decision was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("no execution {0}")]
    NotFound(ExecId),
    /// Not pending, self-approval, decided twice, expired: the reason.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for DecideError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => DecideError::NotFound(id),
            StoreError::Conflict(why) => DecideError::Refused(why),
            other => DecideError::Store(other),
        }
    }
}

/// Attempts before giving up on an execution that keeps changing under a cancel.
const CANCEL_TRIES: usize = 5;

impl Executions {
    /// Cancels `id` for `by`: a pending or queued execution never runs, a running one ends
    /// `stopped` and its runbook is stopped (at once when it runs in this process; at its
    /// worker's next heartbeat otherwise).
    pub async fn cancel(&self, id: &ExecId, by: &str) -> Result<Execution, CancelError> {
        for _ in 0..CANCEL_TRIES {
            let e = self
                .store
                .get_execution(id)
                .await?
                .ok_or_else(|| CancelError::NotFound(id.clone()))?;
            if e.status.is_terminal() {
                return Err(CancelError::Ended {
                    id: id.clone(),
                    status: e.status,
                });
            }
            let change = StatusChange::to(Status::Stopped)
                .reason(format!("cancelled by {by}"))
                .only_from(e.status);
            match self.change(id, change).await {
                Ok(stopped) => {
                    if e.status == Status::Running {
                        self.stop_local_run(id);
                    }
                    tracing::info!(exec_id = %id, by, was = %e.status, "cancelled");
                    return Ok(stopped);
                }
                // It moved on meanwhile (started, ended): look again.
                Err(StoreError::Illegal(_)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(StoreError::Unavailable(format!(
            "execution {id} kept changing while being cancelled"
        ))
        .into())
    }

    /// Stops the runbook of `id` if it runs in this process's pool.
    fn stop_local_run(&self, id: &ExecId) {
        let token = self
            .local_runs
            .as_ref()
            .and_then(|runs| runs.lock().ok().and_then(|r| r.get(id).cloned()));
        if let Some(token) = token {
            token.cancel();
        }
    }

    /// Records a decision on the pending execution `id` and moves it on when the request
    /// is decided (one rejection rejects it; enough distinct approvals queue it).
    pub async fn decide(&self, id: &ExecId, decision: Decision) -> Result<Execution, DecideError> {
        let e = self.store.add_decision(id, &decision).await?;
        tracing::info!(exec_id = %id, by = %decision.by, via = %decision.via,
            decision = decision.decision.as_str(), "decision recorded");
        Ok(self.settle_approval(e).await?)
    }

    /// Rejects `e` as expired if its request ran out (the reaper's sweep).
    pub async fn expire(&self, e: &Execution) -> Result<Option<Execution>, StoreError> {
        let now = time::now();
        match &e.approval {
            Some(a) if e.status == Status::Pending && a.expires_at <= now => {}
            _ => return Ok(None),
        }
        let expiry = Decision {
            by: "cloudo".into(),
            via: "expiry".into(),
            decision: Verdict::Reject,
            at: now,
            comment: None,
        };
        match self.store.add_decision(&e.exec_id, &expiry).await {
            Ok(x) => self.settle_approval(x).await.map(Some),
            // Decided meanwhile.
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Moves a pending execution on once its request is decided: a rejection (or the
    /// expiry) ends it `rejected`, enough approvals queue it. Whoever gets there first does
    /// it; the others find it done.
    pub async fn settle_approval(&self, e: Execution) -> Result<Execution, StoreError> {
        let id = e.exec_id.clone();
        let Some(a) = e.approval.as_ref().filter(|_| e.status == Status::Pending) else {
            return Ok(e);
        };
        let change = if let Some(r) = a.rejected() {
            let reason = if r.via == "expiry" {
                format!("expired: not approved by {}", time::rfc3339(a.expires_at))
            } else {
                let comment = r
                    .comment
                    .as_deref()
                    .map(|c| format!(": {c}"))
                    .unwrap_or_default();
                format!("rejected by {} ({}){comment}", r.by, r.via)
            };
            StatusChange::to(Status::Rejected).reason(reason)
        } else if a.granted() {
            let by: Vec<&str> = a
                .approvals
                .iter()
                .filter(|d| d.decision == Verdict::Approve)
                .map(|d| d.by.as_str())
                .collect();
            StatusChange::to(Status::Accepted).reason(format!("approved by {}", by.join(", ")))
        } else {
            return Ok(e);
        };
        let moved = match self.change(&id, change.only_from(Status::Pending)).await {
            Ok(moved) => moved,
            // Settled meanwhile (by another decider, replica or the reaper).
            Err(StoreError::Illegal(_)) => {
                return self
                    .store
                    .get_execution(&id)
                    .await?
                    .ok_or(StoreError::NotFound(id));
            }
            Err(other) => return Err(other),
        };
        if let Some(n) = &self.notifier {
            n.on_decided(&moved).await;
        }
        if moved.status != Status::Accepted {
            return Ok(moved);
        }
        // Read again: the body may be stored on another execution of the same delivery.
        let moved = self.store.get_execution(&id).await?.unwrap_or(moved);
        // Through its limits, like a new run: it may wait, be skipped, or go.
        match self.dispatch(moved).await {
            Ok(e) => Ok(e),
            Err(super::TriggerError::Store(err)) => Err(err),
            // Recorded `error` with the reason by the dispatch.
            Err(super::TriggerError::Queue(_)) => self
                .store
                .get_execution(&id)
                .await?
                .ok_or(StoreError::NotFound(id)),
        }
    }
}
