//! [`Coordination`] on SQLite: settings (routing documents, Opsgenie alias state, revoked
//! keys), the worker registry and named leases.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use crate::store::{SqliteStore, db_err, json_rows};
use cloudo_core::store::{Coordination, StoreError, StoreResult, WorkerInfo};
use cloudo_core::time::{self, Timestamp};

#[async_trait]
impl Coordination for SqliteStore {
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_string();
        self.db
            .read_now(move |c| {
                c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(db_err)
            })
            .await
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
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

    async fn init_setting(&self, key: &str, value: &str) -> StoreResult<String> {
        let (key, value) = (key.to_string(), value.to_string());
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT OR IGNORE INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)",
                    params![key, value, time::rfc3339(time::now())],
                )
                .map_err(db_err)?;
                tx.query_row("SELECT value FROM settings WHERE key = ?1", [&key], |r| {
                    r.get(0)
                })
                .map_err(db_err)
            })
            .await
    }

    async fn put_worker(&self, w: &WorkerInfo) -> StoreResult<()> {
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

    async fn list_workers(&self, since: Timestamp) -> StoreResult<Vec<WorkerInfo>> {
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

    async fn try_lease(
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

    async fn ping(&self) -> StoreResult<()> {
        self.db
            .read_now(|c| {
                c.query_row("SELECT 1", [], |_| Ok(()))
                    .optional()
                    .map_err(db_err)?;
                Ok(())
            })
            .await
    }
}
