//! The `JobQueue` port: at-least-once delivery of jobs to worker pools.
//!
//! The semantics are Azure Storage Queue's, so an Azure adapter fits the same trait: a
//! leased message is invisible for a visibility timeout and comes back if the lease is not
//! renewed or acknowledged; each lease has a pop receipt that the next lease invalidates;
//! every delivery counts, and a message delivered more than `max_deliveries` times goes to
//! a dead-letter ("poison") queue instead of to a worker.

use std::time::Duration;

use async_trait::async_trait;

use crate::job::Job;
use crate::time::Timestamp;

#[derive(Debug, Clone, thiserror::Error)]
pub enum QueueError {
    /// The lease was lost: it expired and someone else holds the message now, or the
    /// message is gone. The holder must not act on it any more.
    #[error("lease lost for message {0}")]
    LeaseLost(String),
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("message is corrupt: {0}")]
    Corrupt(String),
}

pub type QueueResult<T> = Result<T, QueueError>;

/// A leased message.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub pool: String,
    pub message_id: String,
    /// Changes with every lease and renewal; only the latest one is valid.
    pub pop_receipt: String,
    /// How many times the message has been delivered, this delivery included.
    pub dequeue_count: u32,
    pub job: Job,
}

/// A message that was given up on.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub pool: String,
    pub message_id: String,
    pub dequeue_count: u32,
    pub job: Option<Job>,
    pub body: String,
    pub dead_at: Timestamp,
}

/// How full a pool's queue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    /// Messages waiting or leased (Azure's count is approximate).
    pub messages: u64,
    /// How long the oldest message still waiting for a worker has waited.
    pub oldest_waiting: Option<Duration>,
}

#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    async fn enqueue(&self, pool: &str, job: &Job) -> QueueResult<String>;
    /// Enqueues several jobs (pool, job), in one step where the adapter can; one result per
    /// job, in order.
    async fn enqueue_many(&self, jobs: &[(String, Job)]) -> Vec<QueueResult<String>> {
        let mut out = Vec::with_capacity(jobs.len());
        for (pool, job) in jobs {
            out.push(self.enqueue(pool, job).await);
        }
        out
    }
    /// Leases the oldest visible message of `pool`, hiding it for `visibility`.
    async fn lease(&self, pool: &str, visibility: Duration) -> QueueResult<Option<Lease>>;
    /// Extends a lease; the returned lease carries the new pop receipt.
    async fn renew(&self, lease: &Lease, visibility: Duration) -> QueueResult<Lease>;
    /// Deletes a message that was handled.
    async fn ack(&self, lease: &Lease) -> QueueResult<()>;
    /// Gives a message back, visible again after `delay`.
    async fn release(&self, lease: &Lease, delay: Duration) -> QueueResult<()>;
    /// Messages moved to the dead-letter queue of `pool`, oldest first.
    async fn dead_letters(&self, pool: &str, limit: usize) -> QueueResult<Vec<DeadLetter>>;
    /// Waits until a message may be available in `pool`, or `max` passed. Adapters that
    /// cannot be told (Azure) simply sleep; the embedded one wakes on enqueue.
    async fn wait(&self, pool: &str, max: Duration);
    async fn ping(&self) -> QueueResult<()>;
    /// How many messages `pool` holds and the age of its oldest waiting one (metrics).
    async fn depth(&self, pool: &str) -> QueueResult<QueueDepth>;
}

/// What a queue owned by one process alone (the embedded engine) offers its start-up
/// recovery: no other process can hold a lease, so the previous process's leases are void,
/// and the jobs it holds say which recorded executions never got one.
#[async_trait]
pub trait OwnedQueue: JobQueue {
    /// Makes every leased message visible again; returns how many there were.
    async fn release_all_leases(&self) -> QueueResult<usize>;
    /// Execution ids of every job still queued, leased or dead-lettered, in any pool.
    async fn queued_exec_ids(&self) -> QueueResult<std::collections::HashSet<String>>;
}
