//! [`JobQueue`] conformance: Azure Storage Queue semantics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use crate::execution::ExecId;
use crate::job::Job;
use crate::queue::{JobQueue, QueueError};
use crate::time;

/// A job of schema `name` for pool `p`, with its own execution id.
pub fn job(name: &str) -> Job {
    Job {
        exec_id: ExecId::generate(),
        schema_id: name.into(),
        name: name.into(),
        runbook: "r.sh".into(),
        runbook_ref: None,
        run_args: String::new(),
        runtime: Default::default(),
        secrets: Vec::new(),
        pool: "p".into(),
        oncall: false,
        timeout_secs: 5,
        requested_at: time::now(),
        env: BTreeMap::new(),
        payload: None,
        payload_bytes: 0,
        dry_run: false,
        not_before: None,
    }
}

const LONG: Duration = Duration::from_secs(60);

/// Runs every queue test against queues made by `make` (one fresh queue per test), whose
/// `max_deliveries` must be 3. `tick` is the shortest lease the adapter honours (Azure
/// counts visibility timeouts in whole seconds).
pub async fn run_all<Q: JobQueue, F: Fn() -> Fut, Fut: std::future::Future<Output = Q>>(
    make: F,
    tick: Duration,
) {
    fifo_and_lease_hides(make().await).await;
    ack_needs_latest_receipt(make().await).await;
    expired_lease_redelivers_and_counts(make().await, tick).await;
    release_and_renew(make().await, tick).await;
    dead_letter_after_max_deliveries(make().await).await;
    pools_are_separate(make().await).await;
    depth_counts_messages_and_ages_the_oldest(make().await).await;
}

async fn depth_counts_messages_and_ages_the_oldest(q: impl JobQueue) {
    let empty = q.depth("d").await.unwrap();
    assert_eq!(empty, crate::queue::QueueDepth::default(), "an empty pool");
    q.enqueue("d", &job("a")).await.unwrap();
    q.enqueue("d", &job("b")).await.unwrap();
    q.enqueue("other", &job("c")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let d = q.depth("d").await.unwrap();
    assert_eq!(d.messages, 2, "this pool's messages only");
    let age = d.oldest_waiting.expect("a waiting message has an age");
    assert!(age >= Duration::from_millis(900), "{age:?}");
    let l1 = q.lease("d", LONG).await.unwrap().expect("a");
    let l2 = q.lease("d", LONG).await.unwrap().expect("b");
    let leased = q.depth("d").await.unwrap();
    assert_eq!(leased.messages, 2, "leased messages are still held");
    assert_eq!(leased.oldest_waiting, None, "nothing waits for a worker");
    q.ack(&l1).await.unwrap();
    q.ack(&l2).await.unwrap();
    assert_eq!(q.depth("d").await.unwrap().messages, 0);
}

async fn fifo_and_lease_hides(q: impl JobQueue) {
    let (a, b) = (job("a"), job("b"));
    q.enqueue("p", &a).await.unwrap();
    q.enqueue("p", &b).await.unwrap();
    let l1 = q.lease("p", LONG).await.unwrap().expect("first message");
    assert_eq!(l1.job, a);
    assert_eq!(l1.dequeue_count, 1);
    let l2 = q.lease("p", LONG).await.unwrap().expect("second message");
    assert_eq!(l2.job, b);
    assert!(
        q.lease("p", LONG).await.unwrap().is_none(),
        "leased messages are hidden"
    );
    q.ack(&l1).await.unwrap();
    q.ack(&l2).await.unwrap();
    assert!(q.lease("p", Duration::ZERO).await.unwrap().is_none());
}

async fn ack_needs_latest_receipt(q: impl JobQueue) {
    q.enqueue("p", &job("a")).await.unwrap();
    let l = q.lease("p", LONG).await.unwrap().unwrap();
    let renewed = q.renew(&l, LONG).await.unwrap();
    assert_ne!(renewed.pop_receipt, l.pop_receipt);
    assert!(matches!(q.ack(&l).await, Err(QueueError::LeaseLost(_))));
    q.ack(&renewed).await.unwrap();
    assert!(
        matches!(q.ack(&renewed).await, Err(QueueError::LeaseLost(_))),
        "acked twice"
    );
}

async fn expired_lease_redelivers_and_counts(q: impl JobQueue, tick: Duration) {
    q.enqueue("p", &job("a")).await.unwrap();
    let first = q.lease("p", tick).await.unwrap().unwrap();
    tokio::time::sleep(tick * 2).await;
    let second = q
        .lease("p", LONG)
        .await
        .unwrap()
        .expect("redelivered after expiry");
    assert_eq!(second.message_id, first.message_id);
    assert_eq!(second.dequeue_count, 2);
    assert!(
        matches!(q.ack(&first).await, Err(QueueError::LeaseLost(_))),
        "the first holder's receipt is void"
    );
    q.ack(&second).await.unwrap();
}

async fn release_and_renew(q: impl JobQueue, tick: Duration) {
    q.enqueue("p", &job("a")).await.unwrap();
    let l = q.lease("p", tick).await.unwrap().unwrap();
    let l = q.renew(&l, LONG).await.unwrap();
    tokio::time::sleep(tick * 2).await;
    assert!(
        q.lease("p", LONG).await.unwrap().is_none(),
        "renewal keeps it hidden"
    );
    q.release(&l, Duration::ZERO).await.unwrap();
    let again = q
        .lease("p", LONG)
        .await
        .unwrap()
        .expect("released message is visible");
    assert_eq!(again.message_id, l.message_id);
    q.ack(&again).await.unwrap();
}

async fn dead_letter_after_max_deliveries(q: impl JobQueue) {
    let j = job("poison");
    q.enqueue("p", &j).await.unwrap();
    for n in 1..=3 {
        let l = q.lease("p", LONG).await.unwrap().expect("delivered");
        assert_eq!(l.dequeue_count, n);
        q.release(&l, Duration::ZERO).await.unwrap();
    }
    assert!(
        q.lease("p", LONG).await.unwrap().is_none(),
        "a 4th delivery is refused"
    );
    let dead = q.dead_letters("p", 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].job.as_ref(), Some(&j));
    assert_eq!(dead[0].dequeue_count, 3);
}

async fn pools_are_separate(q: impl JobQueue) {
    q.enqueue("one", &job("a")).await.unwrap();
    assert!(q.lease("two", LONG).await.unwrap().is_none());
    let l = q.lease("one", LONG).await.unwrap().unwrap();
    q.ack(&l).await.unwrap();
}
