//! [`AccessStore`]: API keys and the audit trail.

use async_trait::async_trait;

use super::{Page, StoreResult};
use crate::auth::{ApiKey, AuditRecord};
use crate::time::Timestamp;

/// Filters and paging for [`AccessStore::list_audit`]; newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    pub actor: Option<String>,
    /// Matches the start of the action, e.g. `POST` or `DELETE /api/keys`.
    pub action: Option<String>,
    pub limit: usize,
    pub cursor: Option<String>,
}

#[async_trait]
pub trait AccessStore: Send + Sync + 'static {
    /// Stores a key; `replace` overwrites one of the same name, else a name in use is a
    /// [`super::StoreError::Conflict`].
    async fn put_key(&self, key: &ApiKey, replace: bool) -> StoreResult<()>;
    async fn list_keys(&self) -> StoreResult<Vec<ApiKey>>;
    async fn key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKey>>;
    /// Revokes (deletes) a key; false if there was none of that name.
    async fn delete_key(&self, name: &str) -> StoreResult<bool>;
    async fn touch_key(&self, name: &str, at: Timestamp) -> StoreResult<()>;

    async fn append_audit(&self, record: &AuditRecord) -> StoreResult<()> {
        self.append_audit_batch(std::slice::from_ref(record)).await
    }
    /// Several records at once (one transaction where the adapter can).
    async fn append_audit_batch(&self, records: &[AuditRecord]) -> StoreResult<()>;
    async fn list_audit(&self, q: &AuditQuery) -> StoreResult<Page<AuditRecord>>;
}
