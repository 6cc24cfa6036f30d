//! The store ports: durable state, split by what it holds.
//!
//! Each capability is a small trait with its own conformance file
//! (`conformance::<capability>`): [`ExecutionStore`] (executions, their checked
//! transitions, dedup), [`CatalogStore`] (the schema catalog), [`AccessStore`] (API keys,
//! audit), [`Outbox`] (notifications to deliver), [`Coordination`] (settings, the worker
//! registry, named leases), [`LogStore`] (run output as appended chunks), [`ApprovalStore`]
//! (decisions) and [`StateStore`] (compare-and-swap records: limits, schedule ticks). [`Store`] is
//! every one of them, for callers that need all; it is implemented for any type that
//! implements the parts, so an adapter implements each trait in its own file and nothing
//! forwards. A new feature adds a trait here (and to [`Store`]) and a conformance file.
//! [`Intake`] (an execution and its job in one commit: recorded and queued, ended and
//! acknowledged) is outside [`Store`]: only a backend whose store and queue share a database
//! has it.
//!
//! Adapters: `cloudo_sqlite::SqliteStore` (embedded) and `cloudo_azure::AzureStore`. Every
//! state change goes through [`ExecutionStore::transition`], which checks the state machine
//! and writes atomically (compare-and-set), so the orchestrator is the single logical writer
//! even when it runs as several replicas.

mod access;
mod approvals;
mod catalog;
mod coordination;
mod executions;
mod intake;
mod logs;
mod outbox;
mod state;

pub use access::{AccessStore, AuditQuery};
pub use approvals::{ApprovalStore, record_decision};
pub use catalog::{CatalogStore, SchemaEdit};
pub use coordination::{Coordination, WorkerInfo};
pub use executions::{
    Batch, BodyHolder, Created, DedupKey, ExecutionQuery, ExecutionStore, NewExecution,
    check_initial, share_body,
};
pub use intake::{BatchWithJobs, Intake};
pub use logs::{LogRead, LogStore};
pub use outbox::Outbox;
pub use state::{StateStore, Versioned, read_state_as, update_state};

use crate::execution::{ExecId, IllegalTransition};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("execution {0} not found")]
    NotFound(ExecId),
    #[error("execution {exec_id} already exists")]
    Duplicate { exec_id: ExecId },
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error("invalid cursor")]
    BadCursor,
    #[error("{0}")]
    Conflict(String),
    /// A log append at an offset other than the log's end, which is `size`.
    #[error("the log is {size} bytes long; appends must start there")]
    LogOffset { size: u64 },
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Every store capability: what the orchestrator's services hold.
pub trait Store:
    ExecutionStore
    + CatalogStore
    + AccessStore
    + Outbox
    + Coordination
    + LogStore
    + ApprovalStore
    + StateStore
{
}

impl<T> Store for T where
    T: ExecutionStore
        + CatalogStore
        + AccessStore
        + Outbox
        + Coordination
        + LogStore
        + ApprovalStore
        + StateStore
        + ?Sized
{
}

/// The store traits, for `use cloudo_core::store::prelude::*` where a caller calls methods
/// of several of them on a `dyn Store`.
pub mod prelude {
    pub use super::{
        AccessStore, ApprovalStore, CatalogStore, Coordination, ExecutionStore, LogStore, Outbox,
        StateStore, Store,
    };
}

/// One page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// A page from up to `limit + 1` items fetched with their cursors: the one beyond
    /// `limit` only says that a next page exists, which starts after the last item kept.
    pub fn overfetched<C: ToString>(mut items: Vec<(T, C)>, limit: usize) -> Self {
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|(_, c)| c.to_string())
        } else {
            None
        };
        Self {
            items: items.into_iter().map(|(x, _)| x).collect(),
            next,
        }
    }
}
