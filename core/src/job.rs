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
    /// The worker pool (`worker` on the wire, as in ClouDO).
    #[serde(rename = "worker")]
    pub pool: String,
    pub oncall: bool,
    pub timeout_secs: u64,
    #[serde(with = "time::serde_rfc3339")]
    pub requested_at: Timestamp,
    /// Contract variables derived from the trigger (`MONITOR_CONDITION`, `RESOURCE_*`,
    /// `AKS_*`, ...). Names are checked by [`crate::env::is_contract_name`] on the worker.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The trigger's body as received, when it is small enough to travel in the message
    /// ([`INLINE_PAYLOAD_BYTES`]); a larger one stays in the store and `payload_bytes` says
    /// the worker must fetch it.
    #[serde(default)]
    pub payload: Option<String>,
    /// Size of a payload left in the store (0: none, or it is inline).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub payload_bytes: u64,
    /// Run as a simulation (`CLOUDO_DRY_RUN=1`).
    #[serde(default)]
    pub dry_run: bool,
    /// Not to start before this (a verification's delay): a worker that leases it earlier
    /// gives it back until then.
    #[serde(
        default,
        with = "time::serde_rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before: Option<Timestamp>,
}

/// Largest payload carried in a job message (an Azure queue message holds 64 KiB, base64).
pub const INLINE_PAYLOAD_BYTES: usize = 16 * 1024;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Job {
    /// The job for an execution that was just recorded, whose request body is `body`.
    pub fn for_execution(e: &Execution, env: BTreeMap<String, String>, body: Option<&str>) -> Self {
        let (payload, payload_bytes) = match body {
            Some(b) if b.len() <= INLINE_PAYLOAD_BYTES => (Some(b.to_string()), 0),
            Some(b) => (None, b.len() as u64),
            None => (None, 0),
        };
        Self {
            exec_id: e.exec_id.clone(),
            schema_id: e.schema_id.clone(),
            name: e.name.clone(),
            runbook: e.runbook.clone(),
            runbook_ref: e.runbook_ref.clone(),
            run_args: e.run_args.clone(),
            runtime: e.runtime.clone(),
            secrets: e.secrets.clone(),
            pool: e.pool.clone(),
            oncall: e.oncall,
            timeout_secs: e.timeout_secs,
            requested_at: e.requested_at,
            env,
            payload,
            payload_bytes,
            dry_run: e.dry_run,
            not_before: e.not_before,
        }
    }
}
