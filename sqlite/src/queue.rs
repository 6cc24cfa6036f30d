//! [`JobQueue`] on SQLite, with Azure Storage Queue semantics (see [`cloudo_core::queue`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::params;
use tokio::sync::Notify;

use crate::messages::{Message, delete_leased, insert_messages, message, now_ms};
use crate::{Db, DbError};
use cloudo_core::job::Job;
use cloudo_core::queue::{
    DeadLetter, JobQueue, Lease, OwnedQueue, QueueDepth, QueueError, QueueResult,
};
use cloudo_core::time;

impl From<DbError> for QueueError {
    fn from(e: DbError) -> Self {
        QueueError::Unavailable(e.0)
    }
}

fn db_err(e: rusqlite::Error) -> QueueError {
    QueueError::Unavailable(e.to_string())
}

/// The embedded queue.
#[derive(Debug, Clone)]
pub struct SqliteQueue {
    db: Db,
    max_deliveries: u32,
    wakers: Arc<Mutex<HashMap<String, Arc<Signal>>>>,
}

/// How a pool's consumers in this process learn of new messages without polling, and
/// without waking for nothing: each message made visible counts once, and a consumer waits
/// only when nothing has counted since the last lease found the pool empty.
#[derive(Debug, Default)]
struct Signal {
    notify: Notify,
    /// Messages made visible now (enqueued, released without delay), ever.
    visible: AtomicU64,
    /// `visible` as seen before the last lease that found the pool empty.
    empty_at: AtomicU64,
}

impl Signal {
    fn ready(&self) {
        self.visible.fetch_add(1, Ordering::AcqRel);
        self.notify.notify_waiters();
    }
}

impl SqliteQueue {
    /// `max_deliveries`: a message delivered this many times goes to the dead-letter queue
    /// the next time it would be delivered.
    pub fn new(db: Db, max_deliveries: u32) -> Self {
        Self {
            db,
            max_deliveries: max_deliveries.max(1),
            wakers: Arc::default(),
        }
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// Wakes the consumers of `pools` (sorted and deduplicated here) for a new message each.
    pub(crate) fn ready(&self, pools: &mut Vec<String>) {
        pools.sort();
        pools.dedup();
        for p in pools.iter() {
            self.waker(p).ready();
        }
    }

    fn waker(&self, pool: &str) -> Arc<Signal> {
        let mut w = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
        w.entry(pool.to_string()).or_default().clone()
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

/// Whether `pool` (?1) has a message visible at ?2 (ms).
const VISIBLE: &str = "SELECT 1 FROM queue_messages WHERE pool = ?1 AND visible_at <= ?2 LIMIT 1";

fn new_receipt() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[async_trait]
impl JobQueue for SqliteQueue {
    async fn enqueue(&self, pool: &str, job: &Job) -> QueueResult<String> {
        let row = message(pool, job)?;
        let id = row.0.clone();
        self.db
            .write(move |tx| insert_messages(tx, &[row]).map_err(db_err))
            .await?;
        self.waker(pool).ready();
        Ok(id)
    }

    /// One transaction for all.
    async fn enqueue_many(&self, jobs: &[(String, Job)]) -> Vec<QueueResult<String>> {
        let rows: Result<Vec<Message>, QueueError> =
            jobs.iter().map(|(pool, job)| message(pool, job)).collect();
        let rows = match rows {
            Ok(r) => r,
            Err(e) => return jobs.iter().map(|_| Err(e.clone())).collect(),
        };
        let ids: Vec<String> = rows.iter().map(|(id, _, _)| id.clone()).collect();
        let mut pools: Vec<String> = rows.iter().map(|(_, p, _)| p.clone()).collect();
        let written: QueueResult<()> = self
            .db
            .write(move |tx| insert_messages(tx, &rows).map_err(db_err))
            .await;
        match written {
            Ok(()) => {
                self.ready(&mut pools);
                ids.into_iter().map(Ok).collect()
            }
            Err(e) => ids.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    async fn lease(&self, pool: &str, visibility: Duration) -> QueueResult<Option<Lease>> {
        let signal = self.waker(pool);
        // Seen before the look: a message counted later may have been missed by it.
        let seen = signal.visible.load(Ordering::Acquire);
        let pool = pool.to_string();
        // Found empty last time and nothing counted since: only a message whose time came
        // (a delayed release, an expired lease) can be there; a read says, without taking
        // the write lock.
        if seen == signal.empty_at.load(Ordering::Acquire) {
            let p = pool.clone();
            let any: bool = self
                .db
                .read_now(move |c| {
                    c.prepare_cached(VISIBLE)
                        .and_then(|mut s| s.exists(params![p, now_ms()]))
                        .map_err(db_err)
                })
                .await?;
            if !any {
                return Ok(None);
            }
        }
        let max = self.max_deliveries;
        let leased = self
            .db
            .write(move |tx| -> QueueResult<Option<(Lease, bool)>> {
                loop {
                    let now = now_ms();
                    let head = tx
                        .prepare_cached(
                            "SELECT seq, id, body, dequeue_count FROM queue_messages
                             WHERE pool = ?1 AND visible_at <= ?2 ORDER BY visible_at, seq LIMIT 1",
                        )
                        .and_then(|mut s| {
                            let mut rows = s.query(params![pool, now])?;
                            match rows.next()? {
                                Some(r) => Ok(Some((
                                    r.get::<_, i64>(0)?,
                                    r.get::<_, String>(1)?,
                                    r.get::<_, String>(2)?,
                                    r.get::<_, u32>(3)?,
                                ))),
                                None => Ok(None),
                            }
                        })
                        .map_err(db_err)?;
                    let Some((seq, id, body, count)) = head else {
                        return Ok(None);
                    };
                    let job = serde_json::from_str::<Job>(&body);
                    if count >= max || job.is_err() {
                        tx.execute(
                            "INSERT OR REPLACE INTO queue_dead (id, pool, body, dequeue_count, dead_at)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                            params![id, pool, body, count, time::rfc3339(time::now())],
                        )
                        .map_err(db_err)?;
                        tx.execute("DELETE FROM queue_messages WHERE seq = ?1", [seq])
                            .map_err(db_err)?;
                        tracing::warn!(pool = %pool, message_id = %id, deliveries = count,
                            "message moved to the dead-letter queue");
                        continue;
                    }
                    let receipt = new_receipt();
                    tx.prepare_cached(
                        "UPDATE queue_messages SET dequeue_count = dequeue_count + 1,
                           visible_at = ?2, pop_receipt = ?3 WHERE seq = ?1",
                    )
                    .and_then(|mut s| s.execute(params![seq, now + ms(visibility), receipt]))
                    .map_err(db_err)?;
                    let job = job.map_err(|e| QueueError::Corrupt(e.to_string()))?;
                    let more = tx
                        .prepare_cached(VISIBLE)
                        .and_then(|mut s| s.exists(params![pool, now]))
                        .map_err(db_err)?;
                    let lease = Lease {
                        pool: pool.clone(),
                        message_id: id,
                        pop_receipt: receipt,
                        dequeue_count: count + 1,
                        job,
                    };
                    return Ok(Some((lease, more)));
                }
            })
            .await?;
        // This look left the pool empty: the next one reads first, and a wait sleeps.
        if !leased.as_ref().is_some_and(|(_, more)| *more) {
            signal.empty_at.store(seen, Ordering::Release);
        }
        Ok(leased.map(|(lease, _)| lease))
    }

    async fn renew(&self, lease: &Lease, visibility: Duration) -> QueueResult<Lease> {
        let mut renewed = lease.clone();
        renewed.pop_receipt = new_receipt();
        let (id, old, new) = (
            lease.message_id.clone(),
            lease.pop_receipt.clone(),
            renewed.pop_receipt.clone(),
        );
        let n = self
            .db
            .write(move |tx| {
                tx.prepare_cached(
                    "UPDATE queue_messages SET visible_at = ?3, pop_receipt = ?4
                     WHERE id = ?1 AND pop_receipt = ?2",
                )
                .and_then(|mut s| s.execute(params![id, old, now_ms() + ms(visibility), new]))
                .map_err(db_err)
            })
            .await?;
        if n == 1 {
            Ok(renewed)
        } else {
            Err(QueueError::LeaseLost(lease.message_id.clone()))
        }
    }

    async fn ack(&self, lease: &Lease) -> QueueResult<()> {
        let (id, receipt) = (lease.message_id.clone(), lease.pop_receipt.clone());
        let n = self
            .db
            .write(move |tx| delete_leased(tx, &id, &receipt).map_err(db_err))
            .await?;
        if n == 1 {
            Ok(())
        } else {
            Err(QueueError::LeaseLost(lease.message_id.clone()))
        }
    }

    async fn release(&self, lease: &Lease, delay: Duration) -> QueueResult<()> {
        let (id, receipt) = (lease.message_id.clone(), lease.pop_receipt.clone());
        let n = self
            .db
            .write(move |tx| {
                tx.prepare_cached(
                    "UPDATE queue_messages SET visible_at = ?3, pop_receipt = NULL
                     WHERE id = ?1 AND pop_receipt = ?2",
                )
                .and_then(|mut s| s.execute(params![id, receipt, now_ms() + ms(delay)]))
                .map_err(db_err)
            })
            .await?;
        if n != 1 {
            return Err(QueueError::LeaseLost(lease.message_id.clone()));
        }
        if delay.is_zero() {
            self.waker(&lease.pool).ready();
        }
        Ok(())
    }

    async fn dead_letters(&self, pool: &str, limit: usize) -> QueueResult<Vec<DeadLetter>> {
        let pool = pool.to_string();
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT id, body, dequeue_count, dead_at FROM queue_dead
                         WHERE pool = ?1 ORDER BY dead_at LIMIT ?2",
                    )
                    .map_err(db_err)?;
                let rows = stmt
                    .query_map(params![pool, limit as i64], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, u32>(2)?,
                            r.get::<_, String>(3)?,
                        ))
                    })
                    .map_err(db_err)?;
                let mut out = Vec::new();
                for row in rows {
                    let (message_id, body, dequeue_count, dead_at) = row.map_err(db_err)?;
                    out.push(DeadLetter {
                        pool: pool.clone(),
                        message_id,
                        dequeue_count,
                        job: serde_json::from_str(&body).ok(),
                        body,
                        dead_at: time::parse_rfc3339(&dead_at)
                            .ok_or_else(|| QueueError::Corrupt(format!("bad time {dead_at:?}")))?,
                    });
                }
                Ok(out)
            })
            .await
    }

    async fn wait(&self, pool: &str, max: Duration) {
        let signal = self.waker(pool);
        let notified = signal.notify.notified();
        tokio::pin!(notified);
        // Registered before the check: a message counted after it wakes this wait.
        notified.as_mut().enable();
        if signal.visible.load(Ordering::Acquire) != signal.empty_at.load(Ordering::Acquire) {
            return;
        }
        let _ = tokio::time::timeout(max, notified).await;
    }

    async fn ping(&self) -> QueueResult<()> {
        self.db
            .read_now(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(db_err))
            .await
    }

    async fn depth(&self, pool: &str) -> QueueResult<QueueDepth> {
        let pool = pool.to_string();
        self.db
            .read(move |c| {
                let now = now_ms();
                c.query_row(
                    "SELECT COUNT(*), MIN(CASE WHEN visible_at <= ?2 THEN inserted_at END)
                     FROM queue_messages WHERE pool = ?1",
                    params![pool, now],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?)),
                )
                .map(|(n, oldest)| QueueDepth {
                    messages: n.max(0) as u64,
                    oldest_waiting: oldest
                        .map(|t| Duration::from_millis(now.saturating_sub(t).max(0) as u64)),
                })
                .map_err(db_err)
            })
            .await
    }
}

/// The embedded engine owns its database alone.
#[async_trait]
impl OwnedQueue for SqliteQueue {
    async fn release_all_leases(&self) -> QueueResult<usize> {
        let n = self
            .db
            .write(|tx| {
                tx.execute(
                    "UPDATE queue_messages SET visible_at = 0, pop_receipt = NULL WHERE pop_receipt IS NOT NULL",
                    [],
                )
                .map_err(db_err)
            })
            .await?;
        Ok(n)
    }

    async fn queued_exec_ids(&self) -> QueueResult<std::collections::HashSet<String>> {
        self.db
            .read(|c| {
                let mut stmt = c
                    .prepare(
                        "SELECT json_extract(body, '$.exec_id') FROM queue_messages
                         UNION SELECT json_extract(body, '$.exec_id') FROM queue_dead",
                    )
                    .map_err(db_err)?;
                let ids = stmt
                    .query_map([], |r| r.get::<_, Option<String>>(0))
                    .map_err(db_err)?
                    .filter_map(|r| r.ok().flatten())
                    .collect();
                Ok(ids)
            })
            .await
    }
}
