//! [`Intake`]: recording a delivery's executions and queueing their jobs in one commit.

use async_trait::async_trait;

use super::{Batch, Created, StoreResult};
use crate::job::Job;

/// A delivery's batches, each with the jobs (pool, job) of its accepted executions.
pub type BatchWithJobs = (Batch, Vec<(String, Job)>);

/// Recording the executions of one delivery and queueing the jobs of the accepted ones as
/// one step, for a backend whose store and queue commit together (the embedded one: one
/// database, one transaction). Optional: without it (Azure's tables and queues cannot share
/// a transaction), the hub records, then queues, and its recovery requeues what a crash
/// between the two left.
#[async_trait]
pub trait Intake: Send + Sync + 'static {
    /// Creates the batches as [`super::ExecutionStore::create_batches`] does (each
    /// deduplicated by its own key, `body` stored once) and, in the same commit, queues the
    /// jobs of each batch created (a duplicate queues nothing). Per batch, in order: what
    /// became of it, and the ids of the messages queued for it.
    async fn create_and_enqueue(
        &self,
        batches: Vec<BatchWithJobs>,
        body: Option<&str>,
    ) -> StoreResult<Vec<(Created, Vec<String>)>>;
}
