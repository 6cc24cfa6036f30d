//! The embedded backend's `Intake`: a delivery's executions and the jobs of the new ones in
//! one commit; a duplicate batch queues nothing; a run's end with its job's acknowledgement.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cloudo_core::conformance::{new_execution, queue::job};
use cloudo_core::store::{Batch, Created, DedupKey, ExecutionStore, Intake, NewExecution};
use cloudo_core::{JobQueue, Status};
use cloudo_sqlite::{Db, Durability, SqliteQueue, SqliteStore};

fn backend() -> (SqliteStore, SqliteQueue) {
    // Leaked on purpose: each test database lives until the test process ends.
    let dir = tempfile::tempdir().expect("temp dir").keep();
    let db = Db::open(&dir.join("cloudo.db"), Durability::Process).expect("open db");
    (SqliteStore::new(db.clone()), SqliteQueue::new(db, 3))
}

/// A batch of one accepted execution, deduplicated by `key`, with its job for pool `p`.
fn batch(key: &str) -> (Batch, Vec<(String, cloudo_core::Job)>) {
    let e = new_execution("s", Status::Accepted);
    let mut j = job("s");
    j.exec_id = e.exec_id.clone();
    let batch = Batch {
        executions: vec![NewExecution {
            execution: e,
            reason: None,
        }],
        dedup: Some(DedupKey {
            key: key.into(),
            window: Duration::from_secs(600),
        }),
    };
    (batch, vec![("p".to_string(), j)])
}

async fn assert_nothing_queued(queue: &SqliteQueue) {
    let lease = queue.lease("p", Duration::from_secs(60)).await.unwrap();
    assert!(lease.is_none(), "{lease:?}");
}

#[tokio::test]
async fn executions_and_their_jobs_are_recorded_together_and_duplicates_queue_nothing() {
    let (store, queue) = backend();
    let (first, second) = (batch("a"), batch("b"));
    let ids = [
        first.0.executions[0].execution.exec_id.clone(),
        second.0.executions[0].execution.exec_id.clone(),
    ];
    let out = queue
        .create_and_enqueue(vec![first, second], Some(r#"{"alert": 1}"#))
        .await
        .unwrap();
    assert_eq!(out.len(), 2);
    assert!(
        out.iter()
            .all(|(c, ids)| *c == Created::New && ids.len() == 1)
    );
    for id in &ids {
        let e = store.get_execution(id).await.unwrap().expect("recorded");
        assert_eq!(e.status, Status::Accepted);
        // The body is stored once and read through either execution.
        assert_eq!(e.request_body.as_deref(), Some(r#"{"alert": 1}"#));
    }
    let mut leased = Vec::new();
    while let Some(l) = queue.lease("p", Duration::from_secs(60)).await.unwrap() {
        leased.push(l.job.exec_id.clone());
    }
    assert_eq!(leased, ids.to_vec());

    // The same key again: a duplicate, nothing recorded, nothing queued.
    let again = batch("a");
    let again_id = again.0.executions[0].execution.exec_id.clone();
    let out = queue.create_and_enqueue(vec![again], None).await.unwrap();
    assert_eq!(
        out,
        vec![(Created::Duplicate(vec![ids[0].clone()]), Vec::new())]
    );
    assert!(store.get_execution(&again_id).await.unwrap().is_none());
    assert_nothing_queued(&queue).await;
}

#[tokio::test]
async fn a_failed_delivery_leaves_neither_executions_nor_jobs() {
    let (store, queue) = backend();
    let (first, mut second) = (batch("a"), batch("b"));
    let kept = first.0.executions[0].execution.exec_id.clone();
    // The same execution twice in one delivery: the store refuses the second.
    second.0.executions[0].execution.exec_id = kept.clone();
    assert!(
        queue
            .create_and_enqueue(vec![first, second], None)
            .await
            .is_err()
    );
    assert!(store.get_execution(&kept).await.unwrap().is_none());
    assert_nothing_queued(&queue).await;
}

/// A run's end and its job's acknowledgement in one commit: the message goes only with a
/// change that was made, and only with the lease that holds it now.
#[tokio::test]
async fn a_final_change_acknowledges_the_job_of_a_current_lease_only() {
    let (store, queue) = backend();
    let b = batch("a");
    let id = b.0.executions[0].execution.exec_id.clone();
    queue.create_and_enqueue(vec![b], None).await.unwrap();
    let lease = queue
        .lease("p", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("queued");
    let running = cloudo_core::StatusChange::to(Status::Running);
    let at = cloudo_core::time::now();

    // A renewal meanwhile: the change is made, the message kept for the renewed lease.
    let renewed = queue.renew(&lease, Duration::from_secs(60)).await.unwrap();
    let (e, acked) = queue
        .transition_and_ack(&id, &running, at, &lease)
        .await
        .unwrap();
    assert_eq!((e.status, acked), (Status::Running, false));

    // A change the state machine refuses (running twice): an error, and the message stays.
    let refused = queue.transition_and_ack(&id, &running, at, &renewed).await;
    assert!(
        matches!(refused, Err(cloudo_core::StoreError::Illegal(_))),
        "{refused:?}"
    );
    assert_eq!(
        store.get_execution(&id).await.unwrap().unwrap().status,
        Status::Running
    );

    // With the current lease: the change and the acknowledgement together.
    let done = cloudo_core::StatusChange::to(Status::Succeeded);
    let (e, acked) = queue
        .transition_and_ack(&id, &done, at, &renewed)
        .await
        .unwrap();
    assert_eq!((e.status, acked), (Status::Succeeded, true));
    assert_eq!(
        store.get_execution(&id).await.unwrap().unwrap().status,
        Status::Succeeded
    );
    // Gone for good: not leased again even once its visibility would have run out.
    assert!(matches!(
        queue.ack(&renewed).await,
        Err(cloudo_core::QueueError::LeaseLost(_))
    ));
    assert_nothing_queued(&queue).await;
}
