//! [`SqliteStore`], the embedded store: every store capability on one SQLite database,
//! one file per capability (`executions.rs`, `catalog.rs`, `access.rs`, `outbox.rs`,
//! `coordination.rs`, `logs.rs`), and the helpers they share.

use cloudo_core::store::{StoreError, StoreResult};
use cloudo_core::time::{self, Timestamp};

use crate::{Db, DbError};

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        StoreError::Unavailable(e.0)
    }
}

pub(super) fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// The embedded store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) db: Db,
}

impl SqliteStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

pub(super) fn parse_time(s: Option<String>) -> Result<Option<Timestamp>, StoreError> {
    s.map(|s| time::parse_rfc3339(&s).ok_or_else(|| StoreError::Corrupt(format!("bad time {s:?}"))))
        .transpose()
}

/// The rows of a query selecting one JSON column, deserialised.
pub(super) fn json_rows<T: serde::de::DeserializeOwned>(
    c: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<T>> {
    let mut stmt = c.prepare_cached(sql).map_err(db_err)?;
    let docs = stmt
        .query_map(params, |r| r.get::<_, String>(0))
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    docs.iter()
        .map(|d| serde_json::from_str(d).map_err(|e| StoreError::Corrupt(e.to_string())))
        .collect()
}

pub(super) fn ts(t: Option<Timestamp>) -> Option<String> {
    t.map(time::rfc3339)
}
