//! The TOML file of `cloudo serve`: the same keys as the long options. The worker's keys
//! (runbooks, sandbox, secrets, backend) are read by the worker crate's [`WorkerFile`]; a key
//! neither knows is refused.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use cloudo_worker::command::config::WorkerFile;
use serde::Deserialize;

use crate::commands::cli::SqliteSync;

#[derive(Debug, Default, Deserialize)]
pub(super) struct FileConfig {
    #[serde(flatten)]
    pub(super) worker: WorkerFile,
    #[serde(flatten)]
    pub(super) serve: ServeFile,
    /// Whatever is left: refused.
    #[serde(flatten)]
    pub(super) other: BTreeMap<String, toml::Value>,
}

/// The orchestrator's own keys.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ServeFile {
    pub(super) listen: Option<SocketAddr>,
    pub(super) catalog: Option<PathBuf>,
    pub(super) lost_after: Option<u64>,
    pub(super) queue_timeout: Option<u64>,
    pub(super) body_limit: Option<usize>,
    pub(super) header_timeout: Option<u64>,
    pub(super) max_client_connections: Option<usize>,
    pub(super) max_alerts: Option<usize>,
    pub(super) public_url: Option<String>,
    pub(super) sqlite_sync: Option<SqliteSync>,
    pub(super) routes: Option<PathBuf>,
    pub(super) dedup_window: Option<u64>,
    pub(super) compat_lowercase_resource: Option<bool>,
    pub(super) ingest_rate: Option<u32>,
    pub(super) entra_tenant: Option<String>,
    pub(super) entra_audience: Option<String>,
    pub(super) entra_jwks_url: Option<String>,
    pub(super) worker_pools: Option<Vec<String>>,
    pub(super) notify_routes: Option<PathBuf>,
    pub(super) opsgenie_api_url: Option<String>,
    pub(super) slack_api_url: Option<String>,
    pub(super) slack_channel: Option<String>,
    pub(super) notify_max_attempts: Option<u32>,
    pub(super) notify_backoff_ms: Option<u64>,
    /// `[guardrails]`: allowed namespaces, resource groups, subscriptions for every schema.
    pub(super) guardrails: Option<cloudo_core::policy::Guardrails>,
    /// `pool_capacity = { default = 4 }`.
    pub(super) pool_capacity: Option<BTreeMap<String, u32>>,
    pub(super) schedules: Option<PathBuf>,
    pub(super) session_ttl: Option<u64>,
    pub(super) oidc_issuer: Option<String>,
    pub(super) oidc_client_id: Option<String>,
    pub(super) oidc_role_claim: Option<String>,
    /// `oidc_roles = { "<group id>" = "admin" }`.
    pub(super) oidc_roles: Option<BTreeMap<String, String>>,
    pub(super) oidc_scopes: Option<String>,
    pub(super) oidc_name: Option<String>,
}
