//! Executions: one request to run one runbook, and the state machine it moves through.
//!
//! ```text
//!  (created) ─▶ pending ─▶ accepted ─▶ running ─▶ succeeded | failed | timeout | error | stopped | lost
//!      │           └─▶ rejected | stopped | error    │
//!      ├─▶ accepted                                 ├─▶ (accepted ─▶ error | stopped | lost | skipped)
//!      │                                            └─▶ accepted (requeued after a lost worker: retry_on_lost)
//!      └─▶ skipped | routed | error   (terminal at birth)
//! ```
//! Every change goes through [`check_transition`]; adapters call it inside the same atomic
//! update that writes the new state, so no writer can move an execution backwards.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::time::{self, Timestamp};

mod change;
mod status;
pub use change::StatusChange;
pub use status::{Status, UnknownStatus};

/// An execution id: a UUIDv7 string, so ids sort by creation time.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct ExecId(String);

impl ExecId {
    /// A fresh, time-ordered id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// Wraps an id that came from outside (a URL, a queue message). Only UUID-shaped ids
    /// are accepted, so an id can be put in a key or a path without further escaping.
    pub fn parse(s: &str) -> Option<Self> {
        uuid::Uuid::parse_str(s)
            .ok()
            .map(|u| Self(u.hyphenated().to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExecId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A refused state change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("execution cannot go from {from} to {to}")]
pub struct IllegalTransition {
    pub from: Status,
    pub to: Status,
}

/// The state machine: is `from -> to` allowed?
pub fn check_transition(from: Status, to: Status) -> Result<(), IllegalTransition> {
    use Status::*;
    let ok = match from {
        Pending => matches!(to, Accepted | Rejected | Stopped | Error),
        // Accepted -> Skipped: refused by a limit when it was to be queued.
        Accepted => matches!(to, Running | Error | Stopped | Lost | Skipped),
        // Running -> Accepted: requeued by the reaper after its worker was lost.
        Running => matches!(
            to,
            Succeeded | Failed | Timeout | Error | Stopped | Lost | Accepted
        ),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(IllegalTransition { from, to })
    }
}

/// One entry of an execution's append-only history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transition {
    /// `None` for the creating entry.
    pub from: Option<Status>,
    pub to: Status,
    #[serde(with = "time::serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One execution, as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Execution {
    pub exec_id: ExecId,
    /// ClouDO's `YYYYMMDD` log partition (UTC date of `requested_at`).
    pub partition_key: String,
    pub schema_id: String,
    pub name: String,
    pub status: Status,
    /// Who asked: `manual`, `alert`, `schedule`, or a key name once auth exists.
    pub initiator: String,
    pub runbook: String,
    /// The git ref the schema pins its runbook to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook_ref: Option<String>,
    /// The commit the runbook was read from (git sources), once resolved.
    #[serde(default)]
    pub runbook_commit: Option<String>,
    pub run_args: String,
    /// How the schema asked to run it.
    #[serde(default)]
    pub runtime: crate::schema::Runtime,
    /// Names (never values) of the secrets the runbook gets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// The sandbox it ran in (`process`, `bwrap`, `docker`), once it ran.
    #[serde(default)]
    pub sandbox: Option<String>,
    /// Killed for reaching its memory limit.
    #[serde(default)]
    pub oom: bool,
    /// The worker pool (ClouDO's `worker` capability, and its name on the wire).
    #[serde(rename = "worker")]
    pub pool: String,
    pub oncall: bool,
    /// The team of `/api/Trigger/{team}`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    pub timeout_secs: u64,
    #[serde(with = "time::serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub requested_at: Timestamp,
    #[serde(with = "time::serde_rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Timestamp>,
    #[serde(with = "time::serde_rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
    pub exit_code: Option<i32>,
    /// The signal that ended the runbook, if one did.
    pub signal: Option<i32>,
    /// Why it ended the way it did (set for every non-success outcome).
    pub error: Option<String>,
    pub output: Option<String>,
    pub output_truncated: bool,
    /// The worker instance that ran it.
    pub worker_id: Option<String>,
    #[serde(with = "time::serde_rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub heartbeat_at: Option<Timestamp>,
    /// The request body exactly as received (always JSON when present). Stored once per
    /// delivery: see [`Execution::body_of`].
    pub request_body: Option<String>,
    /// The execution that stores this one's request body: the executions of one delivery
    /// (an Alertmanager group, an alert that runs several schemas) share one stored copy.
    /// `get_execution` fills `request_body` from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_of: Option<ExecId>,
    /// The runbook's context (`RESOURCE_*`, `MONITOR_CONDITION`, ...) as queued, so a retry
    /// runs with the same. Never secrets: those are added on the worker.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env: std::collections::BTreeMap<String, String>,
    /// How many times the reaper requeues it when its worker is lost (the schema's
    /// `retry_on_lost`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retry_on_lost: u32,
    /// The approval request of a schema with `require_approval`: fixed when it was made,
    /// with every decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<crate::approval::Approval>,
    /// A simulation: the runbook runs with `CLOUDO_DRY_RUN=1` and nobody is paged.
    #[serde(default)]
    pub dry_run: bool,
    /// Its schema's concurrency and rate limits, as they were when it was recorded.
    #[serde(default, skip_serializing_if = "crate::policy::RunLimits::is_empty")]
    pub limits: crate::policy::RunLimits,
    /// The schema's verification runbook, run after a success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<crate::verify::Verify>,
    /// For a verification run: the execution it verifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_of: Option<ExecId>,
    /// The outcome of this execution's verification run, once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<crate::verify::Verification>,
    /// Not to start before this (a verification's delay).
    #[serde(
        default,
        with = "time::serde_rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub not_before: Option<Timestamp>,
    /// Filled by `Store::get_execution`; empty in listings.
    #[serde(default)]
    pub transitions: Vec<Transition>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Execution {
    /// A new execution of `schema`, requested now, born in `status` (an initial status).
    pub fn new(
        schema: &crate::schema::Schema,
        status: Status,
        initiator: &str,
        team: Option<String>,
        request_body: Option<String>,
    ) -> Self {
        let now = time::now();
        Self {
            exec_id: ExecId::generate(),
            partition_key: time::partition_key(now),
            schema_id: schema.id.clone(),
            name: schema.name.clone(),
            status,
            initiator: initiator.to_string(),
            runbook: schema.runbook.clone(),
            runbook_ref: schema.git_ref.clone(),
            runbook_commit: None,
            run_args: schema.run_args.clone(),
            runtime: schema.runtime.clone(),
            secrets: schema.secrets.clone(),
            sandbox: None,
            oom: false,
            pool: schema.pool.clone(),
            oncall: schema.oncall,
            team,
            timeout_secs: schema.timeout_secs,
            requested_at: now,
            started_at: None,
            finished_at: status.is_terminal().then_some(now),
            exit_code: None,
            signal: None,
            error: None,
            output: None,
            output_truncated: false,
            worker_id: None,
            heartbeat_at: None,
            request_body,
            body_of: None,
            env: Default::default(),
            retry_on_lost: schema.retry_on_lost,
            approval: None,
            dry_run: schema.policy.dry_run,
            limits: schema.policy.limits.clone(),
            verify: schema.verify.clone(),
            verify_of: None,
            verification: None,
            not_before: None,
            transitions: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_only_from_one_status_refuses_any_other() {
        let mut e = crate::conformance::new_execution("a", Status::Accepted);
        let late = StatusChange::to(Status::Error).only_from(Status::Accepted);
        let mut started = e.clone();
        assert!(
            StatusChange::to(Status::Running)
                .apply(&mut started, crate::time::now())
                .is_ok()
        );
        // Running -> Error is a legal move, but not the one decided on.
        let refused = late.apply(&mut started, crate::time::now());
        assert_eq!(
            refused.map(|_| ()),
            Err(IllegalTransition {
                from: Status::Running,
                to: Status::Error
            })
        );
        assert_eq!(started.status, Status::Running);
        assert!(late.apply(&mut e, crate::time::now()).is_ok());
        assert_eq!(e.status, Status::Error);
    }

    #[test]
    fn terminal_states_never_move() {
        for from in Status::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in Status::ALL {
                assert!(check_transition(from, to).is_err(), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn the_happy_path_and_its_exits() {
        assert!(check_transition(Status::Accepted, Status::Running).is_ok());
        for end in [
            Status::Succeeded,
            Status::Failed,
            Status::Timeout,
            Status::Error,
            Status::Stopped,
            Status::Lost,
        ] {
            assert!(check_transition(Status::Running, end).is_ok());
        }
        assert!(check_transition(Status::Running, Status::Pending).is_err());
        assert!(check_transition(Status::Accepted, Status::Succeeded).is_err());
    }

    #[test]
    fn status_words_round_trip_and_accept_cloudo_completed() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().ok(), Some(s));
        }
        assert_eq!("completed".parse::<Status>().ok(), Some(Status::Succeeded));
        assert!("finished".parse::<Status>().is_err());
    }

    #[test]
    fn exec_ids_are_uuid_shaped_only() {
        let id = ExecId::generate();
        assert_eq!(ExecId::parse(id.as_str()), Some(id));
        assert!(ExecId::parse("../etc/passwd").is_none());
        assert!(ExecId::parse("x' or 1 eq 1").is_none());
    }
}
