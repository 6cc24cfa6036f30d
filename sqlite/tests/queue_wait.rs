//! The embedded queue's `wait`: it wakes for a message made visible since the pool was last
//! found empty (never missed between a lease and its wait), and not otherwise, so an idle
//! consumer makes no empty leases for nothing.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use cloudo_core::conformance::queue::job;
use cloudo_core::queue::JobQueue;
use cloudo_sqlite::{Db, Durability, SqliteQueue};

fn queue() -> SqliteQueue {
    // Leaked on purpose: each test database lives until the test process ends.
    let dir = tempfile::tempdir().expect("temp dir").keep();
    SqliteQueue::new(
        Db::open(&dir.join("cloudo.db"), Durability::Process).expect("open db"),
        3,
    )
}

const LEASE: Duration = Duration::from_secs(60);

/// How long `wait` took, with `max` as its limit.
async fn timed_wait(q: &SqliteQueue, max: Duration) -> Duration {
    let t = Instant::now();
    q.wait("p", max).await;
    t.elapsed()
}

#[tokio::test]
async fn a_message_queued_between_an_empty_lease_and_the_wait_is_not_missed() {
    let q = queue();
    assert!(q.lease("p", LEASE).await.unwrap().is_none());
    q.enqueue("p", &job("1")).await.unwrap();
    assert!(timed_wait(&q, Duration::from_secs(30)).await < Duration::from_secs(10));
    assert!(q.lease("p", LEASE).await.unwrap().is_some());
}

#[tokio::test]
async fn a_wait_wakes_when_a_message_is_queued_or_released() {
    let q = queue();
    assert!(q.lease("p", LEASE).await.unwrap().is_none());
    let producer = q.clone();
    let t = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        producer.enqueue("p", &job("1")).await.unwrap();
    });
    let waited = timed_wait(&q, Duration::from_secs(30)).await;
    assert!(waited >= Duration::from_millis(150), "{waited:?}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    t.await.unwrap();

    let lease = q.lease("p", LEASE).await.unwrap().expect("the message");
    assert!(q.lease("p", LEASE).await.unwrap().is_none());
    let producer = q.clone();
    let t = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        producer.release(&lease, Duration::ZERO).await.unwrap();
    });
    assert!(timed_wait(&q, Duration::from_secs(30)).await < Duration::from_secs(10));
    t.await.unwrap();
    assert!(q.lease("p", LEASE).await.unwrap().is_some());
}

/// The consumer's loop after taking the last message: one more lease finds the pool empty,
/// and its wait then sleeps (it used to wake at once for the message it had just taken,
/// and lease again for nothing).
#[tokio::test]
async fn a_wait_after_the_pool_was_found_empty_sleeps() {
    let q = queue();
    assert!(q.lease("p", LEASE).await.unwrap().is_none());
    q.enqueue("p", &job("1")).await.unwrap();
    q.enqueue_many(&[("p".to_string(), job("2"))]).await;
    assert!(timed_wait(&q, Duration::from_secs(30)).await < Duration::from_secs(10));
    assert!(q.lease("p", LEASE).await.unwrap().is_some());
    assert!(q.lease("p", LEASE).await.unwrap().is_some());
    assert!(q.lease("p", LEASE).await.unwrap().is_none());
    let max = Duration::from_millis(300);
    assert!(timed_wait(&q, max).await >= max);
    // Another pool's messages do not wake it either.
    q.enqueue("other", &job("3")).await.unwrap();
    assert!(timed_wait(&q, max).await >= max);
}

/// A pool found empty is looked at again with a read first: a message whose time came (a
/// delayed release) is still leased.
#[tokio::test]
async fn a_message_visible_again_by_time_is_leased_after_the_pool_was_found_empty() {
    let q = queue();
    q.enqueue("p", &job("1")).await.unwrap();
    let lease = q.lease("p", LEASE).await.unwrap().expect("the message");
    assert!(q.lease("p", LEASE).await.unwrap().is_none());
    q.release(&lease, Duration::from_millis(300)).await.unwrap();
    assert!(q.lease("p", LEASE).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let again = q.lease("p", LEASE).await.unwrap().expect("visible again");
    assert_eq!(again.message_id, lease.message_id);
    assert_eq!(again.dequeue_count, 2);
}
