//! [`Intake`]: an execution's job in the same commit as the execution: queued when the
//! execution is recorded, acknowledged when its end is.

use async_trait::async_trait;

use super::{Batch, Created, StoreResult};
use crate::execution::{ExecId, Execution, StatusChange};
use crate::job::Job;
use crate::queue::Lease;
use crate::time::Timestamp;

/// A delivery's batches, each with the jobs (pool, job) of its accepted executions.
pub type BatchWithJobs = (Batch, Vec<(String, Job)>);

/// Recording the executions of one delivery and queueing the jobs of the accepted ones as
/// one step, and a run's end with its job's acknowledgement, for a backend whose store and
/// queue commit together (the embedded one: one database, one transaction). Optional:
/// without it (Azure's tables and queues cannot share a transaction), the hub records, then
/// queues, and its recovery requeues what a crash between the two left; a worker
/// acknowledges its job after its end was recorded.
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

    /// Applies `change` to `id` at `at` as [`super::ExecutionStore::transition`] does and,
    /// in the same commit, deletes the message `lease` holds if the lease is still current.
    /// Returns the execution as changed, and whether the message was deleted (`false`: the
    /// lease was renewed or lost meanwhile, and the caller acknowledges as usual). A change
    /// refused leaves the message as it was.
    async fn transition_and_ack(
        &self,
        id: &ExecId,
        change: &StatusChange,
        at: Timestamp,
        lease: &Lease,
    ) -> StoreResult<(Execution, bool)>;
}
