//! The job message: what the orchestrator puts on a pool's queue for a worker.
//!
//! It carries everything a worker needs to run the runbook and nothing secret: the
//! alert-derived variables are plain context, and named secrets (a later feature) are
//! resolved on the worker, never sent through the queue.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::execution::{ExecId, Execution};
use crate::time::{self, Timestamp};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub exec_id: ExecId,
    pub schema_id: String,
    pub name: String,
    pub runbook: String,
    /// A git branch, tag or commit to read the runbook at, instead of the current one.
    #[serde(default)]
    pub runbook_ref: Option<String>,
    pub run_args: String,
    #[serde(default)]
    pub runtime: crate::schema::Runtime,
    /// Names of the secrets to resolve on the worker (values never travel in a job).
    #[serde(default)]
    pub secrets: Vec<String>,
    pub worker: String,
    pub oncall: bool,
    pub timeout_secs: u64,
    #[serde(with = "time::serde_rfc3339")]
    pub requested_at: Timestamp,
    /// Contract variables derived from the trigger (`MONITOR_CONDITION`, `RESOURCE_*`,
    /// `AKS_*`, ...). Names are checked by [`crate::env::is_contract_name`] on the worker.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `CLOUDO_PAYLOAD`: the trigger's body as received, if any.
    #[serde(default)]
    pub payload: Option<String>,
}

impl Job {
    /// The job for an execution that was just recorded.
    pub fn for_execution(e: &Execution, env: BTreeMap<String, String>) -> Self {
        Self {
            exec_id: e.exec_id.clone(),
            schema_id: e.schema_id.clone(),
            name: e.name.clone(),
            runbook: e.runbook.clone(),
            runbook_ref: e.runbook_ref.clone(),
            run_args: e.run_args.clone(),
            runtime: e.runtime.clone(),
            secrets: e.secrets.clone(),
            worker: e.worker.clone(),
            oncall: e.oncall,
            timeout_secs: e.timeout_secs,
            requested_at: e.requested_at,
            env,
            payload: e.request_body.clone(),
        }
    }
}
