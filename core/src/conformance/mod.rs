//! Conformance suites for the ports: one set of behaviour every adapter must have.
//!
//! One file per capability, each with a `run_all` that takes a maker of fresh adapters and
//! panics on the first deviation; adapter crates call [`run_all`] (every store capability)
//! and [`queue::run_all`] from their own tests (SQLite in `sqlite/tests`, Azure against
//! Azurite in `azure/tests`), so all adapters are held to the same tests.

pub mod access;
pub mod approvals;
pub mod bodies;
pub mod catalog;
pub mod coordination;
pub mod executions;
mod listing;
pub mod logs;
pub mod outbox;
pub mod queue;
pub mod state;

use crate::execution::{Execution, Status};
use crate::schema::Catalog;
use crate::store::Store;

/// An execution as the orchestrator creates it for a manual trigger of schema `schema_id`.
pub fn new_execution(schema_id: &str, status: Status) -> Execution {
    let catalog = Catalog::parse(&format!(
        r#"[{{"partition_key": "p", "entity": [{{"id": "{schema_id}", "runbook": "r.sh",
            "run_args": "a 'b c'", "oncall": true, "timeout": 30}}]}}]"#
    ))
    .expect("valid test schema");
    let schema = catalog.get(schema_id).expect("test schema");
    Execution::new(
        schema,
        status,
        "manual",
        Some("team-a".into()),
        Some(r#"{"k": "v"}"#.into()),
    )
}

/// Runs every store capability's suite against stores made by `make`.
pub async fn run_all<S: Store, F: Fn() -> Fut, Fut: std::future::Future<Output = S>>(make: F) {
    executions::run_all(&make).await;
    catalog::run_all(&make).await;
    access::run_all(&make).await;
    outbox::run_all(&make).await;
    coordination::run_all(&make).await;
    logs::run_all(&make).await;
    approvals::run_all(&make).await;
    state::run_all(&make).await;
}
