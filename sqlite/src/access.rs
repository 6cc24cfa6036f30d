//! [`AccessStore`] on SQLite: keys and audit records.

use async_trait::async_trait;
use rusqlite::{Row, params};

use crate::store::{SqliteStore, db_err, parse_time, ts};
use cloudo_core::auth::{ApiKey, AuditRecord};
use cloudo_core::store::{AccessStore, AuditQuery, Page, StoreError, StoreResult};
use cloudo_core::time::{self, Timestamp};

#[async_trait]
impl AccessStore for SqliteStore {
    async fn put_key(&self, key: &ApiKey, replace: bool) -> StoreResult<()> {
        let k = key.clone();
        let scope = (!k.scope.is_all())
            .then(|| serde_json::to_string(&k.scope))
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.db
            .write(move |tx| {
                let verb = if replace { "INSERT OR REPLACE" } else { "INSERT OR IGNORE" };
                let n = tx
                    .execute(
                        &format!(
                            "{verb} INTO api_keys (name, role, hash, created_at, expires_at, last_used_at, pool, scope)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                        ),
                        params![
                            k.name,
                            k.role.as_str(),
                            k.hash,
                            time::rfc3339(k.created_at),
                            ts(k.expires_at),
                            ts(k.last_used_at),
                            k.pool,
                            scope,
                        ],
                    )
                    .map_err(db_err)?;
                if n == 0 {
                    return Err(StoreError::Conflict(format!("a key named {:?} exists", k.name)));
                }
                Ok(())
            })
            .await
    }

    async fn list_keys(&self) -> StoreResult<Vec<ApiKey>> {
        self.db
            .read(|c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT name, role, hash, created_at, expires_at, last_used_at, pool, scope FROM api_keys ORDER BY name",
                    )
                    .map_err(db_err)?;
                let mut rows = stmt.query([]).map_err(db_err)?;
                let mut out = Vec::new();
                while let Some(r) = rows.next().map_err(db_err)? {
                    out.push(row_to_key(r)?);
                }
                Ok(out)
            })
            .await
    }

    async fn key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKey>> {
        let hash = hash.to_string();
        self.db
            .read_now(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT name, role, hash, created_at, expires_at, last_used_at, pool, scope FROM api_keys WHERE hash = ?1",
                    )
                    .map_err(db_err)?;
                let mut rows = stmt.query([hash]).map_err(db_err)?;
                match rows.next().map_err(db_err)? {
                    Some(r) => Ok(Some(row_to_key(r)?)),
                    None => Ok(None),
                }
            })
            .await
    }

    async fn delete_key(&self, name: &str) -> StoreResult<bool> {
        let name = name.to_string();
        self.db
            .write(move |tx| {
                let n = tx
                    .execute("DELETE FROM api_keys WHERE name = ?1", [name])
                    .map_err(db_err)?;
                Ok(n == 1)
            })
            .await
    }

    async fn touch_key(&self, name: &str, at: Timestamp) -> StoreResult<()> {
        let name = name.to_string();
        self.db
            .write(move |tx| {
                tx.execute(
                    "UPDATE api_keys SET last_used_at = ?2 WHERE name = ?1",
                    params![name, time::rfc3339(at)],
                )
                .map_err(db_err)?;
                Ok(())
            })
            .await
    }

    async fn append_audit_batch(&self, records: &[AuditRecord]) -> StoreResult<()> {
        let records = records.to_vec();
        self.db
            .write(move |tx| {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO audit (at, actor, role, action, target, source, outcome)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )
                    .map_err(db_err)?;
                for r in &records {
                    stmt.execute(params![
                        time::rfc3339(r.at),
                        r.actor,
                        r.role,
                        r.action,
                        r.target,
                        r.source,
                        r.outcome
                    ])
                    .map_err(db_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn list_audit(&self, q: &AuditQuery) -> StoreResult<Page<AuditRecord>> {
        let before = match &q.cursor {
            None => i64::MAX,
            Some(c) => c.parse::<i64>().map_err(|_| StoreError::BadCursor)?,
        };
        let limit = q.limit.clamp(1, 1000);
        let actor = q.actor.clone();
        let action = q.action.clone().map(|a| format!("{a}%"));
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT seq, at, actor, role, action, target, source, outcome FROM audit
                         WHERE seq < ?1 AND (?2 IS NULL OR actor = ?2) AND (?3 IS NULL OR action LIKE ?3)
                         ORDER BY seq DESC LIMIT ?4",
                    )
                    .map_err(db_err)?;
                let mut rows = stmt
                    .query(params![before, actor, action, (limit + 1) as i64])
                    .map_err(db_err)?;
                let mut items = Vec::new();
                while let Some(r) = rows.next().map_err(db_err)? {
                    let at: String = r.get(1).map_err(db_err)?;
                    items.push((
                        AuditRecord {
                            at: parse_time(Some(at))?.unwrap_or_else(time::now),
                            actor: r.get(2).map_err(db_err)?,
                            role: r.get(3).map_err(db_err)?,
                            action: r.get(4).map_err(db_err)?,
                            target: r.get(5).map_err(db_err)?,
                            source: r.get(6).map_err(db_err)?,
                            outcome: r.get(7).map_err(db_err)?,
                        },
                        r.get::<_, i64>(0).map_err(db_err)?,
                    ));
                }
                Ok(Page::overfetched(items, limit))
            })
            .await
    }
}

fn row_to_key(r: &Row<'_>) -> StoreResult<ApiKey> {
    let role: String = r.get(1).map_err(db_err)?;
    Ok(ApiKey {
        name: r.get(0).map_err(db_err)?,
        role: role.parse().map_err(StoreError::Corrupt)?,
        hash: r.get(2).map_err(db_err)?,
        created_at: parse_time(Some(r.get(3).map_err(db_err)?))?
            .ok_or_else(|| StoreError::Corrupt("key without creation time".into()))?,
        expires_at: parse_time(r.get(4).map_err(db_err)?)?,
        last_used_at: parse_time(r.get(5).map_err(db_err)?)?,
        pool: r.get(6).map_err(db_err)?,
        scope: match r.get::<_, Option<String>>(7).map_err(db_err)? {
            None => Default::default(),
            Some(j) => serde_json::from_str(&j).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        },
    })
}
