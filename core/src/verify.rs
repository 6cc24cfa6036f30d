//! Verification runbooks: after a successful run, a schema's `verify` runbook runs with the
//! same variables (plus `CLOUDO_VERIFY_OF`) after a delay, as its own execution; its
//! outcome is recorded on the original as `verification: passed|failed` (seed 003's
//! verification loop). A failed verification of an on-call schema pages like a failure (it
//! is an on-call execution of its own, with the original's alert).

use serde::{Deserialize, Serialize};

use crate::execution::{ExecId, Execution, Status};
use crate::time::{self, Timestamp};

/// Longest delay before a verification (it waits queued; the queue timeout must exceed it).
pub const MAX_DELAY_SECS: u64 = 3600;

/// A schema's `verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    pub runbook: String,
    #[serde(default)]
    pub run_args: String,
    /// Seconds after the success before it runs.
    #[serde(default = "default_delay")]
    pub delay_secs: u64,
    /// Its wall-clock limit, in seconds.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

fn default_delay() -> u64 {
    60
}

fn default_timeout() -> u64 {
    300
}

impl Verify {
    /// Checks it; `Err` says what is wrong.
    pub fn check(&self) -> Result<(), String> {
        if self.runbook.trim().is_empty() {
            return Err("runbook must not be empty".into());
        }
        if crate::schema::split_args(&self.run_args).is_none() {
            return Err("run_args cannot be split into arguments (an unclosed quote?)".into());
        }
        if self.delay_secs > MAX_DELAY_SECS {
            return Err(format!("delay_secs must be at most {MAX_DELAY_SECS}"));
        }
        if self.timeout == 0 || self.timeout > crate::schema::MAX_TIMEOUT_SECS {
            return Err(format!(
                "timeout must be between 1 and {} seconds",
                crate::schema::MAX_TIMEOUT_SECS
            ));
        }
        Ok(())
    }
}

/// Where a verification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pending,
    Passed,
    Failed,
}

/// What the original execution records of its verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Verification {
    pub status: Outcome,
    /// The verification's own execution.
    pub exec_id: ExecId,
}

/// The verification's outcome once it ended in `status`.
pub fn outcome(status: Status) -> Outcome {
    match status {
        Status::Succeeded => Outcome::Passed,
        s if s.is_terminal() => Outcome::Failed,
        _ => Outcome::Pending,
    }
}

/// The verification execution of `original` (which succeeded): its schema, team, on-call
/// flag and variables, the verify runbook, `CLOUDO_VERIFY_OF`; accepted, to run after the
/// delay. `None` when the original has no `verify` or is a verification itself.
pub fn verification_of(original: &Execution, now: Timestamp) -> Option<Execution> {
    let v = original
        .verify
        .as_ref()
        .filter(|_| original.verify_of.is_none())?;
    let mut e = original.clone();
    e.exec_id = ExecId::generate();
    e.partition_key = time::partition_key(now);
    e.name = format!("{} (verify)", original.name);
    e.status = Status::Accepted;
    e.initiator = format!("verify:{}", original.exec_id);
    e.runbook.clone_from(&v.runbook);
    e.run_args.clone_from(&v.run_args);
    e.timeout_secs = v.timeout;
    e.requested_at = now;
    e.not_before = Some(now + chrono::Duration::seconds(v.delay_secs as i64));
    (e.started_at, e.finished_at, e.heartbeat_at) = (None, None, None);
    (e.exit_code, e.signal, e.error, e.output) = (None, None, None, None);
    (e.output_truncated, e.oom) = (false, false);
    (e.worker_id, e.sandbox, e.runbook_commit) = (None, None, None);
    (e.request_body, e.body_of) = (None, None);
    e.approval = None;
    e.verify = None;
    e.verification = None;
    e.verify_of = Some(original.exec_id.clone());
    e.transitions.clear();
    e.env
        .insert("CLOUDO_VERIFY_OF".into(), original.exec_id.to_string());
    Some(e)
}
