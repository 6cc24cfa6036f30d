//! What several parts of the system share through [`SqliteStore`]: settings (routing
//! documents, Opsgenie alias state), the notification outbox, the worker registry and named
//! leases (the `Store` impl delegates here).

use rusqlite::{OptionalExtension, params};

use crate::store::{SqliteStore, db_err, json_rows};
use cloudo_core::execution::ExecId;
use cloudo_core::notify::Notification;
use cloudo_core::store::{StoreError, StoreResult, WorkerInfo};
use cloudo_core::time::{self, Timestamp};

fn state_of(n: &Notification) -> String {
    serde_json::to_value(n.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl SqliteStore {
    /// Notifications selected by `clause` (with one parameter `?1`).
    pub(super) async fn notifications_where(
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

impl SqliteStore {
    pub(super) async fn get_setting_inner(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_string();
        self.db
            .read(move |c| {
                c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(db_err)
            })
            .await
    }

    pub(super) async fn put_setting_inner(&self, key: &str, value: &str) -> StoreResult<()> {
        let (key, value) = (key.to_string(), value.to_string());
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT OR REPLACE INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)",
                    params![key, value, time::rfc3339(time::now())],
                )
                .map_err(db_err)?;
                Ok(())
            })
            .await
    }

    pub(super) async fn add_notifications_inner(&self, n: &[Notification]) -> StoreResult<()> {
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

    pub(super) async fn update_notification_inner(&self, n: &Notification) -> StoreResult<()> {
        self.add_notifications_inner(std::slice::from_ref(n)).await
    }

    pub(super) async fn open_notifications_inner(
        &self,
        limit: usize,
    ) -> StoreResult<Vec<Notification>> {
        self.notifications_where(
            "state IN ('held', 'pending') ORDER BY id LIMIT CAST(?1 AS INTEGER)",
            (limit as i64).to_string(),
        )
        .await
    }

    pub(super) async fn notifications_for_inner(
        &self,
        id: &ExecId,
    ) -> StoreResult<Vec<Notification>> {
        self.notifications_where("exec_id = ?1 ORDER BY id", id.to_string())
            .await
    }

    pub(super) async fn put_worker_inner(&self, w: &WorkerInfo) -> StoreResult<()> {
        let body = serde_json::to_string(w).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let (id, pool, seen) = (
            w.id.clone(),
            w.pools.join(","),
            w.last_seen.timestamp_millis(),
        );
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT OR REPLACE INTO workers (id, pool, last_seen, body) VALUES (?1, ?2, ?3, ?4)",
                    params![id, pool, seen, body],
                )
                .map_err(db_err)?;
                Ok(())
            })
            .await
    }

    pub(super) async fn list_workers_inner(
        &self,
        since: Timestamp,
    ) -> StoreResult<Vec<WorkerInfo>> {
        let since = since.timestamp_millis();
        self.db
            .read(move |c| {
                json_rows(
                    c,
                    "SELECT body FROM workers WHERE last_seen >= ?1 ORDER BY id",
                    [since],
                )
            })
            .await
    }

    pub(super) async fn try_lease_inner(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (name, holder) = (name.to_string(), holder.to_string());
        let now_ms = now.timestamp_millis();
        let until = now_ms.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2));
        self.db
            .write(move |tx| {
                let n = tx
                    .execute(
                        "INSERT INTO leases (name, holder, expires_ms) VALUES (?1, ?2, ?3)
                         ON CONFLICT (name) DO UPDATE SET holder = ?2, expires_ms = ?3
                         WHERE leases.holder = ?2 OR leases.expires_ms < ?4",
                        params![name, holder, until, now_ms],
                    )
                    .map_err(db_err)?;
                Ok(n == 1)
            })
            .await
    }
}
