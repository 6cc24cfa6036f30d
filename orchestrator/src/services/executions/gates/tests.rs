//! Slots are freed however their run ends, and the reaper's sweep repairs what a crash
//! between the end and the release left.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cloudo_core::conformance::new_execution;
use cloudo_core::store::{Batch, NewExecution};
use cloudo_core::{OwnedQueue, Status, StatusChange, Store, time};
use cloudo_sqlite::{Db, Durability, SqliteQueue, SqliteStore};

use super::Executions;

fn parts() -> (Executions, SqliteQueue, Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("t.db"), Durability::Process).unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::new(db.clone()));
    let queue = SqliteQueue::new(db, 2);
    let ex = Executions::new(store.clone(), Arc::new(queue.clone()));
    (ex, queue, store, dir)
}

/// Two runs of one schema with max_concurrency 1 and the same (empty) key: the first holds
/// the slot and is queued, the second waits.
async fn holder_and_waiter(ex: &Executions) -> (cloudo_core::ExecId, cloudo_core::ExecId) {
    let mut ids = Vec::new();
    let mut batches = Vec::new();
    for _ in 0..2 {
        let mut e = new_execution("serial", Status::Accepted);
        e.limits.max_concurrency = Some(1);
        ids.push(e.exec_id.clone());
        batches.push((
            Batch {
                executions: vec![NewExecution {
                    execution: e,
                    reason: None,
                }],
                dedup: None,
            },
            BTreeMap::new(),
        ));
    }
    ex.submit(batches, None).await.unwrap();
    (ids[0].clone(), ids[1].clone())
}

async fn queued(q: &SqliteQueue, id: &cloudo_core::ExecId) -> bool {
    q.queued_exec_ids().await.unwrap().contains(id.as_str())
}

async fn until_queued(q: &SqliteQueue, id: &cloudo_core::ExecId) {
    for _ in 0..100 {
        if queued(q, id).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{id} was never queued");
}

#[tokio::test]
async fn a_lost_holder_hands_its_slot_to_the_next_in_line() {
    let (ex, q, _store, _dir) = parts();
    let (a, b) = holder_and_waiter(&ex).await;
    assert!(queued(&q, &a).await && !queued(&q, &b).await);
    ex.change(&a, StatusChange::to(Status::Running))
        .await
        .unwrap();
    // The reaper's verdict on a silent worker.
    ex.change(&a, StatusChange::to(Status::Lost).reason("no heartbeat"))
        .await
        .unwrap();
    until_queued(&q, &b).await;
}

#[tokio::test]
async fn the_sweep_frees_slots_of_runs_that_ended_behind_its_back() {
    let (ex, q, store, _dir) = parts();
    let (a, b) = holder_and_waiter(&ex).await;
    // Ended without the hub (an orchestrator killed between the end and the release).
    store
        .transition(&a, &StatusChange::to(Status::Error), time::now())
        .await
        .unwrap();
    assert!(!queued(&q, &b).await);
    ex.sweep_limits().await.unwrap();
    until_queued(&q, &b).await;
    ex.change(&b, StatusChange::to(Status::Stopped))
        .await
        .unwrap();
    ex.sweep_limits().await.unwrap();
    assert!(
        store.list_state("limit/").await.unwrap().is_empty(),
        "idle records are deleted"
    );
}
