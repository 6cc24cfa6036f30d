//! What people decide about an execution: cancel it (and, with the approval gate, approve
//! or reject it). Each is a checked change on the hub, so it is published, notified and
//! races with workers and the reaper like any other change.

use cloudo_core::{ExecId, Execution, Status, StatusChange, StoreError};

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
}
