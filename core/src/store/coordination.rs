//! [`Coordination`]: what replicas and workers share to work together: small named
//! documents (settings), the worker registry, and named leases.

use async_trait::async_trait;

use super::StoreResult;
use crate::execution::ExecId;
use crate::time::Timestamp;

/// A worker instance as it last reported itself (`GET /api/workers`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkerInfo {
    /// Unique per process (`host-pid-start`).
    pub id: String,
    /// The pools it serves.
    pub pools: Vec<String>,
    pub version: String,
    /// How many runbooks it runs at once.
    pub capacity: u32,
    /// Executions it is running now.
    pub running: Vec<ExecId>,
    #[serde(with = "crate::time::serde_rfc3339")]
    pub started_at: Timestamp,
    #[serde(with = "crate::time::serde_rfc3339")]
    pub last_seen: Timestamp,
}

/// One page of results.

#[async_trait]
pub trait Coordination: Send + Sync + 'static {
    /// Small named documents (routing rules, notification routes, revoked keys, ...).
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>>;
    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()>;
    /// Stores `value` under `key` unless something is there already; returns what is
    /// stored. Of concurrent callers the first wins and all get its value (how replicas
    /// agree on a generated secret).
    async fn init_setting(&self, key: &str, value: &str) -> StoreResult<String>;

    /// Records a worker's latest report (replacing its previous one).
    async fn put_worker(&self, w: &WorkerInfo) -> StoreResult<()>;
    /// Workers seen since `since`, by id.
    async fn list_workers(&self, since: Timestamp) -> StoreResult<Vec<WorkerInfo>>;

    /// Takes or renews the named lease for `holder` until `now + ttl`: true when `holder`
    /// holds it now. Another holder's lease is taken only once it has expired, and two
    /// contenders never both get true (this is how one of many orchestrators becomes the
    /// reaper).
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
        now: Timestamp,
    ) -> StoreResult<bool>;

    /// Cheap round trip, for readiness.
    async fn ping(&self) -> StoreResult<()>;
}
