//! Domain of the runbook engine.
//!
//! What a runbook *is* ([`schema`]), what running one *means* ([`execution`] and its state
//! machine), what travels to a worker ([`job`]) and what a runbook sees ([`env`]), plus the
//! two ports the rest of the system is built around, [`store::Store`] and
//! [`queue::JobQueue`], and (feature `conformance`) the suites every adapter of them must
//! pass. The adapters live in their own crates: `cloudo-sqlite` (embedded) and
//! `cloudo-azure`.
//!
//! This crate knows nothing about HTTP, processes, SQL or Azure, and does no I/O.

pub mod alert;
pub mod approval;
pub mod auth;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod env;
pub mod execution;
pub mod job;
pub mod lifecycle;
pub mod limits;
pub mod notify;
pub mod policy;
pub mod queue;
pub mod routing;
pub mod schedule;
pub mod schema;
pub mod scope;
pub mod store;
pub mod text;
pub mod time;
pub mod verify;

pub use execution::{ExecId, Execution, Status, StatusChange, Transition};
pub use job::Job;
pub use queue::{JobQueue, Lease, OwnedQueue, QueueError};
pub use schema::{Catalog, CatalogError, Schema};
pub use store::{Store, StoreError};
