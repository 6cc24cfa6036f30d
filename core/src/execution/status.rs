//! [`Status`]: the status words of the API, and which are terminal or initial.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The status words of the API (ClouDO's vocabulary plus `timeout` and `lost`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting for an approval.
    Pending,
    /// Recorded and queued for a worker.
    Accepted,
    /// A worker started it.
    Running,
    /// Exit code 0.
    Succeeded,
    /// Non-zero exit code or killed by a signal.
    Failed,
    /// It could not be run at all (runbook missing, sandbox failure, ...).
    Error,
    /// An approver said no.
    Rejected,
    /// A filter decided not to run it (recorded with the reason).
    Skipped,
    /// Cancelled by a person.
    Stopped,
    /// An alert matched no runbook: recorded so it is not dropped silently.
    Routed,
    /// Killed at its wall-clock limit.
    Timeout,
    /// Its worker vanished (lease and heartbeats expired).
    Lost,
}

impl Status {
    pub const ALL: [Status; 12] = [
        Status::Pending,
        Status::Accepted,
        Status::Running,
        Status::Succeeded,
        Status::Failed,
        Status::Error,
        Status::Rejected,
        Status::Skipped,
        Status::Stopped,
        Status::Routed,
        Status::Timeout,
        Status::Lost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Accepted => "accepted",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Error => "error",
            Status::Rejected => "rejected",
            Status::Skipped => "skipped",
            Status::Stopped => "stopped",
            Status::Routed => "routed",
            Status::Timeout => "timeout",
            Status::Lost => "lost",
        }
    }

    /// A terminal status never changes again.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Status::Pending | Status::Accepted | Status::Running)
    }

    /// Statuses an execution may be created in.
    pub fn is_initial(self) -> bool {
        matches!(
            self,
            Status::Pending | Status::Accepted | Status::Skipped | Status::Routed | Status::Error
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        // ClouDO's worker said `completed` for a success.
        if lower == "completed" {
            return Ok(Status::Succeeded);
        }
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == lower)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// A status word that is not in the vocabulary.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown status {0:?}")]
pub struct UnknownStatus(pub String);
