//! [`Outbox`] on SQLite: notifications with their delivery state.

use async_trait::async_trait;
use rusqlite::params;

use crate::store::{SqliteStore, db_err, json_rows};
use cloudo_core::execution::ExecId;
use cloudo_core::notify::Notification;
use cloudo_core::store::{Outbox, StoreError, StoreResult};

fn state_of(n: &Notification) -> String {
    serde_json::to_value(n.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl SqliteStore {
    /// Notifications selected by `clause` (with one parameter `?1`).
    async fn notifications_where(
        &self,
        clause: &'static str,
        arg: String,
    ) -> StoreResult<Vec<Notification>> {
        self.db
            .read(move |c| {
                json_rows(
                    c,
                    &format!("SELECT doc FROM notifications WHERE {clause}"),
                    [arg],
                )
            })
            .await
    }
}

#[async_trait]
impl Outbox for SqliteStore {
    async fn add_notifications(&self, n: &[Notification]) -> StoreResult<()> {
        let rows = n
            .iter()
            .map(|n| {
                serde_json::to_string(n)
                    .map(|doc| (n.id.clone(), n.exec_id.to_string(), state_of(n), doc))
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        self.db
            .write(move |tx| {
                let mut ins = tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO notifications (id, exec_id, state, doc) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(db_err)?;
                for (id, exec, state, doc) in &rows {
                    ins.execute(params![id, exec, state, doc]).map_err(db_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn update_notification(&self, n: &Notification) -> StoreResult<()> {
        self.add_notifications(std::slice::from_ref(n)).await
    }

    async fn open_notifications(&self, limit: usize) -> StoreResult<Vec<Notification>> {
        self.notifications_where(
            "state IN ('held', 'pending') ORDER BY id LIMIT CAST(?1 AS INTEGER)",
            (limit as i64).to_string(),
        )
        .await
    }

    async fn notifications_for(&self, id: &ExecId) -> StoreResult<Vec<Notification>> {
        self.notifications_where("exec_id = ?1 ORDER BY id", id.to_string())
            .await
    }
}
