//! [`StateStore`] on SQLite: one row per record, its version a counter.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use crate::store::{SqliteStore, db_err};
use cloudo_core::store::{StateStore, StoreResult, Versioned};

#[async_trait]
impl StateStore for SqliteStore {
    async fn read_state(&self, key: &str) -> StoreResult<Option<Versioned>> {
        let key = key.to_string();
        self.db
            .read_now(move |c| {
                c.query_row(
                    "SELECT value, version FROM state WHERE key = ?1",
                    [key],
                    |r| {
                        Ok(Versioned {
                            value: r.get(0)?,
                            version: r.get::<_, i64>(1)?.to_string(),
                        })
                    },
                )
                .optional()
                .map_err(db_err)
            })
            .await
    }

    async fn write_state(
        &self,
        key: &str,
        value: &str,
        expected: Option<&str>,
    ) -> StoreResult<bool> {
        let (key, value) = (key.to_string(), value.to_string());
        // A version that is not ours cannot match.
        let expected = match expected.map(str::parse::<i64>) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(_)) => return Ok(false),
        };
        self.db
            .write(move |tx| {
                let n = match expected {
                    None => tx.execute(
                        "INSERT OR IGNORE INTO state (key, value, version) VALUES (?1, ?2, 1)",
                        params![key, value],
                    ),
                    Some(v) => tx.execute(
                        "UPDATE state SET value = ?2, version = version + 1
                         WHERE key = ?1 AND version = ?3",
                        params![key, value, v],
                    ),
                }
                .map_err(db_err)?;
                Ok(n == 1)
            })
            .await
    }

    async fn delete_state(&self, key: &str, expected: &str) -> StoreResult<bool> {
        let key = key.to_string();
        let Ok(v) = expected.parse::<i64>() else {
            return Ok(false);
        };
        self.db
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM state WHERE key = ?1 AND version = ?2",
                    params![key, v],
                )
                .map(|n| n == 1)
                .map_err(db_err)
            })
            .await
    }

    async fn list_state(&self, prefix: &str) -> StoreResult<Vec<(String, Versioned)>> {
        let prefix = prefix.to_string();
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare(
                        "SELECT key, value, version FROM state
                         WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
                    )
                    .map_err(db_err)?;
                let rows = stmt
                    .query_map([prefix], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            Versioned {
                                value: r.get(1)?,
                                version: r.get::<_, i64>(2)?.to_string(),
                            },
                        ))
                    })
                    .map_err(db_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
            })
            .await
    }
}
