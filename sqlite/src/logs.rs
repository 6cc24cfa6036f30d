//! [`LogStore`] on SQLite: a row per appended piece, keyed by its offset, and a row per log
//! with its length (checked and advanced in the append's transaction).

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use crate::store::{SqliteStore, db_err};
use cloudo_core::execution::ExecId;
use cloudo_core::store::{LogRead, LogStore, StoreError, StoreResult};

fn end_of(c: &rusqlite::Connection, id: &str) -> StoreResult<(u64, bool)> {
    let end: Option<(i64, bool)> = c
        .prepare_cached("SELECT size, full FROM log_ends WHERE exec_id = ?1")
        .and_then(|mut s| s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(db_err)?;
    let (size, full) = end.unwrap_or((0, false));
    Ok((u64::try_from(size).unwrap_or(0), full))
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl LogStore for SqliteStore {
    async fn append_log(
        &self,
        id: &ExecId,
        offset: u64,
        chunk: &[u8],
        cap: u64,
    ) -> StoreResult<u64> {
        let id = id.to_string();
        let chunk = chunk.to_vec();
        self.db
            .write(move |tx| {
                let (size, full) = end_of(tx, &id)?;
                if offset != size {
                    return Err(StoreError::LogOffset { size });
                }
                if full || chunk.is_empty() {
                    return Ok(size);
                }
                let room = usize::try_from(cap.saturating_sub(size)).unwrap_or(usize::MAX);
                let kept = &chunk[..chunk.len().min(room)];
                let new_size = size + kept.len() as u64;
                if !kept.is_empty() {
                    tx.prepare_cached(
                        "INSERT INTO logs (exec_id, start, data) VALUES (?1, ?2, ?3)",
                    )
                    .and_then(|mut s| s.execute(params![id, int(size), kept]))
                    .map_err(db_err)?;
                }
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO log_ends (exec_id, size, full) VALUES (?1, ?2, ?3)",
                )
                .and_then(|mut s| s.execute(params![id, int(new_size), new_size >= cap]))
                .map_err(db_err)?;
                Ok(new_size)
            })
            .await
    }

    async fn read_log(&self, id: &ExecId, from: u64, limit: usize) -> StoreResult<LogRead> {
        let id = id.to_string();
        self.db
            .read_now(move |c| {
                let (size, full) = end_of(c, &id)?;
                let until = from.saturating_add(limit as u64).min(size);
                let mut data =
                    Vec::with_capacity(usize::try_from(until.saturating_sub(from)).unwrap_or(0));
                if from < until {
                    // The piece holding `from` starts at or before it: the last one that does.
                    let mut stmt = c
                        .prepare_cached(
                            "SELECT start, data FROM logs WHERE exec_id = ?1 AND start < ?3
                               AND start >= COALESCE((SELECT MAX(start) FROM logs
                                 WHERE exec_id = ?1 AND start <= ?2), 0)
                             ORDER BY start",
                        )
                        .map_err(db_err)?;
                    let mut rows = stmt
                        .query(params![id, int(from), int(until)])
                        .map_err(db_err)?;
                    while let Some(r) = rows.next().map_err(db_err)? {
                        let start = u64::try_from(r.get::<_, i64>(0).map_err(db_err)?).unwrap_or(0);
                        let piece: Vec<u8> = r.get(1).map_err(db_err)?;
                        let lo = usize::try_from(from.saturating_sub(start)).unwrap_or(usize::MAX);
                        let hi = usize::try_from(until - start).unwrap_or(usize::MAX);
                        if lo < piece.len() {
                            data.extend_from_slice(&piece[lo..hi.min(piece.len())]);
                        }
                    }
                }
                Ok(LogRead {
                    offset: from.min(size),
                    data,
                    size,
                    full,
                })
            })
            .await
    }
}
