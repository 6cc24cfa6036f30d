//! The worker protocol: what a standalone worker sends to the orchestrator's
//! `/api/worker/...` routes and what it gets back, as types both ends use (the HTTP
//! handlers deserialize the requests and serialize the answers; the worker's HTTP client
//! does the reverse). Nothing on either end matches strings in bodies.

use cloudo_core::store::WorkerInfo;
use cloudo_core::time::{self, Timestamp};
use cloudo_core::{ExecId, Status, StatusChange};
use serde::{Deserialize, Serialize};

/// Which worker runs an execution, for which delivery of its job (queue message id and
/// delivery count). Every report about a run carries it: only the worker and delivery that
/// started a run may report on it (others are refused), and the delivery, known only to the
/// worker that leased the message, is what a forger lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunRef {
    pub worker_id: String,
    pub delivery: String,
}

/// The path of a report on execution `id`: `start`, `heartbeat`, `finish` or `payload`.
pub fn exec_path(id: &ExecId, what: &str) -> String {
    format!("/api/worker/executions/{id}/{what}")
}

/// `POST .../alive`.
pub const ALIVE_PATH: &str = "/api/worker/alive";

/// `POST .../start` is a [`RunRef`]; the answer:
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StartAnswer {
    /// Run it (the execution is now `running` on this worker and delivery).
    pub run: bool,
    /// Why not, when `run` is false (already ran, runs elsewhere, ended...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where this attempt's output starts in the execution's log (after an earlier
    /// attempt's, when a lost run was requeued).
    #[serde(default)]
    pub log_offset: u64,
}

/// `POST .../heartbeat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    #[serde(flatten)]
    pub run: RunRef,
    /// Output not acknowledged yet, appended to the execution's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogPiece>,
}

/// A piece of a run's output and the offset it starts at in the run's log (bytes of text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogPiece {
    pub offset: u64,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeartbeatAnswer {
    /// False: the execution should no longer run.
    pub running: bool,
    /// The length of the execution's log now (what the worker need not send again), when a
    /// piece was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_size: Option<u64>,
}

/// `POST .../finish`: the final state change of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FinishRequest {
    #[serde(flatten)]
    pub run: RunRef,
    pub status: Status,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub signal: Option<i32>,
    #[serde(default)]
    pub output: Option<String>,
    #[serde(default)]
    pub output_truncated: bool,
    #[serde(default)]
    pub runbook_commit: Option<String>,
    #[serde(default)]
    pub sandbox: Option<String>,
    #[serde(default)]
    pub oom: bool,
    /// The end of the output the log does not have yet (appended before the change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogPiece>,
}

impl FinishRequest {
    pub fn new(run: RunRef, c: StatusChange) -> Self {
        Self {
            run,
            status: c.to,
            reason: c.reason,
            exit_code: c.exit_code,
            signal: c.signal,
            output: c.output,
            output_truncated: c.output_truncated,
            runbook_commit: c.runbook_commit,
            sandbox: c.sandbox,
            oom: c.oom,
            log: None,
        }
    }

    /// The reporting run, the change it reports and the end of its log.
    pub fn into_parts(self) -> (RunRef, StatusChange, Option<LogPiece>) {
        let mut c = StatusChange::to(self.status);
        c.reason = self.reason;
        c.exit_code = self.exit_code;
        c.signal = self.signal;
        c.output = self.output;
        c.output_truncated = self.output_truncated;
        c.runbook_commit = self.runbook_commit;
        c.sandbox = self.sandbox;
        c.oom = self.oom;
        (self.run, c, self.log)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FinishAnswer {
    pub exec_id: ExecId,
    pub status: Status,
}

/// `POST .../payload` is a [`RunRef`]; the answer: the running execution's request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PayloadAnswer {
    pub payload: Option<String>,
}

/// `POST /api/worker/alive`: the worker as it reports itself (the orchestrator stamps
/// `last_seen` with its own clock). Answered 204.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AliveRequest {
    pub id: String,
    pub pools: Vec<String>,
    pub version: String,
    pub capacity: u32,
    #[serde(default)]
    pub running: Vec<ExecId>,
    #[serde(with = "time::serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
}

impl AliveRequest {
    pub fn new(w: &WorkerInfo) -> Self {
        Self {
            id: w.id.clone(),
            pools: w.pools.clone(),
            version: w.version.clone(),
            capacity: w.capacity,
            running: w.running.clone(),
            started_at: w.started_at,
        }
    }

    /// The worker as the orchestrator records it, seen at `now`.
    pub fn into_info(self, now: Timestamp) -> WorkerInfo {
        WorkerInfo {
            id: self.id,
            pools: self.pools,
            version: self.version,
            capacity: self.capacity,
            running: self.running,
            started_at: self.started_at,
            last_seen: now,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_finish_round_trips_through_json() {
        let run = RunRef {
            worker_id: "w".into(),
            delivery: "m:1".into(),
        };
        let mut c = StatusChange::to(Status::Failed).reason("exit code 2");
        c.exit_code = Some(2);
        c.output = Some("boom\n".into());
        let req = FinishRequest::new(run.clone(), c.clone());
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(json["worker_id"], "w", "the run is flattened: {json}");
        let back: FinishRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back.into_parts(), (run, c, None));
    }
}
