//! [`ApprovalStore`] on SQLite: the decision is checked and written in the one writer's
//! transaction, so concurrent decisions land one after the other.

use async_trait::async_trait;
use rusqlite::params;

use crate::rows::{approval_column, load};
use crate::store::{SqliteStore, db_err};
use cloudo_core::approval::Decision;
use cloudo_core::execution::{ExecId, Execution};
use cloudo_core::store::{ApprovalStore, StoreError, StoreResult, record_decision};

#[async_trait]
impl ApprovalStore for SqliteStore {
    async fn add_decision(&self, id: &ExecId, decision: &Decision) -> StoreResult<Execution> {
        let (id, decision) = (id.clone(), decision.clone());
        self.db
            .write(move |tx| {
                let mut e =
                    load(tx, id.as_str())?.ok_or_else(|| StoreError::NotFound(id.clone()))?;
                record_decision(&mut e, &decision)?;
                tx.execute(
                    "UPDATE executions SET approval = ?2 WHERE exec_id = ?1 AND status = 'pending'",
                    params![id.as_str(), approval_column(&e)?],
                )
                .map_err(db_err)?;
                Ok(e)
            })
            .await
    }
}
