//! The rows of the embedded queue's table (`queue_messages`) that the queue and
//! [`cloudo_core::store::Intake`] both write: new messages, and a leased one's deletion.

use rusqlite::params;

use cloudo_core::job::Job;
use cloudo_core::queue::QueueError;
use cloudo_core::time;

/// Now, in the milliseconds the table's times are kept in.
pub(crate) fn now_ms() -> i64 {
    time::now().timestamp_millis()
}

/// A message to insert: its id, pool and body (the job as JSON).
pub(crate) type Message = (String, String, String);

/// The message of `job` for `pool`, with a new id.
pub(crate) fn message(pool: &str, job: &Job) -> Result<Message, QueueError> {
    let body = serde_json::to_string(job).map_err(|e| QueueError::Corrupt(e.to_string()))?;
    Ok((uuid::Uuid::now_v7().to_string(), pool.to_string(), body))
}

/// Inserts `rows`, visible now.
pub(crate) fn insert_messages(tx: &rusqlite::Connection, rows: &[Message]) -> rusqlite::Result<()> {
    let now = now_ms();
    let mut ins = tx.prepare_cached(
        "INSERT INTO queue_messages (id, pool, body, inserted_at, visible_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
    )?;
    for (id, pool, body) in rows {
        ins.execute(params![id, pool, body, now])?;
    }
    Ok(())
}

/// Deletes the message `id` if `receipt` is its current lease's: rows deleted (0 or 1).
pub(crate) fn delete_leased(
    tx: &rusqlite::Connection,
    id: &str,
    receipt: &str,
) -> rusqlite::Result<usize> {
    tx.prepare_cached("DELETE FROM queue_messages WHERE id = ?1 AND pop_receipt = ?2")
        .and_then(|mut s| s.execute(params![id, receipt]))
}
