//! What the API's handlers may read of the store. Handlers get this view, not the store:
//! every write goes through a service (the execution hub, key access, operator documents),
//! so the rules each write follows live in one place.

use std::sync::Arc;

use cloudo_core::auth::{ApiKey, AuditRecord};
use cloudo_core::notify::Notification;
use cloudo_core::store::{AuditQuery, ExecutionQuery, Page, StoreResult, WorkerInfo};
use cloudo_core::time::Timestamp;
use cloudo_core::{ExecId, Execution, Store};

/// Read-only access to the store.
#[derive(Clone)]
pub struct StoreView(Arc<dyn Store>);

impl std::fmt::Debug for StoreView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreView").finish_non_exhaustive()
    }
}

impl StoreView {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self(store)
    }

    pub async fn get_execution(&self, id: &ExecId) -> StoreResult<Option<Execution>> {
        self.0.get_execution(id).await
    }

    pub async fn list_executions(&self, q: &ExecutionQuery) -> StoreResult<Page<Execution>> {
        self.0.list_executions(q).await
    }

    pub async fn executions_in(
        &self,
        status: cloudo_core::Status,
        limit: usize,
    ) -> StoreResult<Vec<Execution>> {
        self.0.executions_in(status, limit).await
    }

    pub async fn notifications_for(&self, id: &ExecId) -> StoreResult<Vec<Notification>> {
        self.0.notifications_for(id).await
    }

    pub async fn list_keys(&self) -> StoreResult<Vec<ApiKey>> {
        self.0.list_keys().await
    }

    pub async fn key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKey>> {
        self.0.key_by_hash(hash).await
    }

    pub async fn list_audit(&self, q: &AuditQuery) -> StoreResult<Page<AuditRecord>> {
        self.0.list_audit(q).await
    }

    pub async fn list_workers(&self, since: Timestamp) -> StoreResult<Vec<WorkerInfo>> {
        self.0.list_workers(since).await
    }

    /// What the store keeps of schedule `id`'s ticks.
    pub async fn schedule_ticks(
        &self,
        id: &str,
    ) -> StoreResult<Option<cloudo_core::schedule::Ticks>> {
        cloudo_core::store::read_state_as(&*self.0, &cloudo_core::schedule::ticks_key(id)).await
    }

    pub async fn ping(&self) -> StoreResult<()> {
        self.0.ping().await
    }
}
