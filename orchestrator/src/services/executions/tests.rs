//! The hub's own tests: events, followers across replicas, attempts and their logs.

#![allow(clippy::unwrap_used)]

use super::*;
use cloudo_core::conformance::new_execution;
use cloudo_sqlite::{Db, Durability, SqliteQueue, SqliteStore};
use cloudo_worker::RunRef;

fn executions() -> (Executions, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("t.db"), Durability::Process).unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::new(db.clone()));
    (
        Executions::new(store, Arc::new(SqliteQueue::new(db, 2))),
        dir,
    )
}

#[tokio::test]
async fn every_change_is_published_and_wakes_a_waiter() {
    let (ex, _dir) = executions();
    let e = new_execution("a", Status::Accepted);
    ex.store().create_execution(&e, None).await.unwrap();
    let mut events = ex.subscribe();
    let waiter = {
        let (ex, id) = (ex.clone(), e.exec_id.clone());
        tokio::spawn(async move { ex.wait_terminal(&id, Duration::from_secs(30)).await })
    };
    ex.change(&e.exec_id, StatusChange::to(Status::Running))
        .await
        .unwrap();
    ex.change(&e.exec_id, StatusChange::to(Status::Succeeded))
        .await
        .unwrap();
    let got: Vec<Status> = vec![
        events.recv().await.unwrap().status,
        events.recv().await.unwrap().status,
    ];
    assert_eq!(got, [Status::Running, Status::Succeeded]);
    let t = std::time::Instant::now();
    let done = waiter.await.unwrap().unwrap().unwrap();
    assert_eq!(done.status, Status::Succeeded);
    assert!(t.elapsed() < Duration::from_secs(5), "woken, not timed out");
}

/// Two orchestrators on one store: a waiter on one sees the end the other records,
/// through the store, and only watched executions are re-read.
#[tokio::test]
async fn a_change_made_by_another_replica_reaches_this_ones_waiter() {
    let (other, dir) = executions();
    let db = Db::open(&dir.path().join("t.db"), Durability::Process).unwrap();
    let here = Executions::new(
        Arc::new(SqliteStore::new(db.clone())),
        Arc::new(SqliteQueue::new(db, 2)),
    )
    .shared(Duration::from_millis(50));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let follower = here.follow_store(stopped).expect("shared: a follower");
    let (followed, unwatched) = (
        new_execution("a", Status::Accepted),
        new_execution("a", Status::Accepted),
    );
    for e in [&followed, &unwatched] {
        other.store().create_execution(e, None).await.unwrap();
    }
    let mut events = here.subscribe();
    let waiter = {
        let (here, id) = (here.clone(), followed.exec_id.clone());
        tokio::spawn(async move { here.wait_terminal(&id, Duration::from_secs(30)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    for e in [&unwatched, &followed] {
        for to in [Status::Running, Status::Succeeded] {
            other
                .change(&e.exec_id, StatusChange::to(to))
                .await
                .unwrap();
        }
    }
    let t = std::time::Instant::now();
    let done = waiter.await.unwrap().unwrap().unwrap();
    assert_eq!(done.status, Status::Succeeded);
    assert!(t.elapsed() < Duration::from_secs(5), "woken, not timed out");
    // The end (and `running`, if a tick fell between the two), of the followed one only.
    loop {
        let ev = events.recv().await.unwrap();
        assert_eq!(ev.exec_id, followed.exec_id);
        if ev.status == Status::Succeeded {
            break;
        }
        assert_eq!(ev.status, Status::Running);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        events.try_recv().is_err(),
        "nobody watches the other execution: it is not re-read nor announced"
    );
    assert!(
        here.watches.snapshot().is_empty(),
        "the waiter's watch ended"
    );
    stop.send(true).unwrap();
    follower.await.unwrap();
}

#[test]
fn a_store_read_older_than_an_announcement_brings_nothing_back() {
    let watches = Arc::new(watch::Watches::default());
    let id = ExecId::generate();
    let w = Watch::new(watches.clone(), &id);
    w.saw(Status::Accepted);
    let (_, read_at) = watches.snapshot()[0].clone();
    // Announced here while a store read (which saw `running`) was in flight.
    assert!(watches.update(&id, Status::Succeeded, None));
    assert!(!watches.update(&id, Status::Running, Some(read_at)));
    // A fresh read that agrees is no news; one that differs is.
    let (_, now) = watches.snapshot()[0].clone();
    assert!(!watches.update(&id, Status::Succeeded, Some(now)));
    drop(w);
    assert!(watches.snapshot().is_empty());
}

/// A run requeued after its worker was lost: the next attempt's output follows the
/// first one's in the log (after a line saying so), and a late report of the first
/// attempt lands on nothing.
#[tokio::test]
async fn a_second_attempt_logs_after_the_first_and_the_first_cannot_finish_it() {
    use cloudo_worker::protocol::LogPiece;
    let (ex, _dir) = executions();
    let e = new_execution("a", Status::Accepted);
    ex.store().create_execution(&e, None).await.unwrap();
    let id = &e.exec_id;
    let first = RunRef {
        worker_id: "w1".into(),
        delivery: "m:1".into(),
    };
    assert_eq!(ex.start_run(id, &first).await.unwrap(), Ok(0));
    let piece = LogPiece {
        offset: 0,
        data: "attempt one\n".into(),
    };
    let hb = ex.heartbeat_run(id, &first, Some(&piece)).await.unwrap();
    assert_eq!(hb.log_size, Some(12));
    // The reaper requeues it; another worker starts it a little later.
    ex.change(
        id,
        StatusChange::to(Status::Accepted).only_from(Status::Running),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = RunRef {
        worker_id: "w2".into(),
        delivery: "m:2".into(),
    };
    let offset = ex.start_run(id, &second).await.unwrap().unwrap();
    let log = ex.read_log(id, 0, 1000).await.unwrap();
    let text = String::from_utf8(log.data).unwrap();
    assert_eq!(
        text,
        "attempt one\n\n[cloudo: a new attempt starts on worker w2]\n"
    );
    assert_eq!(offset, log.size, "the second attempt logs after all that");
    // The first worker's late final report is refused, not applied to the second run.
    let late = ex
        .finish_run(id, &first, StatusChange::to(Status::Succeeded), None)
        .await;
    assert!(matches!(late, Err(Refusal::NotOwner(_))), "{late:?}");
    let mut stale = StatusChange::to(Status::Succeeded).only_from(Status::Running);
    stale.only_attempt = Some(("w1".into(), e.requested_at));
    assert!(
        matches!(ex.change(id, stale).await, Err(StoreError::Illegal(_))),
        "a change for another attempt is refused in the store's own step"
    );
    let now = ex.store().get_execution(id).await.unwrap().unwrap();
    assert_eq!(
        (now.status, now.worker_id.as_deref()),
        (Status::Running, Some("w2"))
    );
}

/// The in-process worker's final report acknowledges its job in the same commit on the
/// embedded backend (`Intake`), and leaves it to the worker without one.
#[tokio::test]
async fn the_in_process_final_report_acknowledges_the_job_where_the_backend_can() {
    use cloudo_core::JobQueue;
    use cloudo_worker::Reporter;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("t.db"), Durability::Process).unwrap();
    let queue = Arc::new(SqliteQueue::new(db.clone(), 2));
    let plain = Executions::new(Arc::new(SqliteStore::new(db)), queue.clone());
    let joint = plain.clone().with_intake(queue.clone());
    for (ex, acks) in [(&plain, false), (&joint, true)] {
        let e = new_execution("a", Status::Accepted);
        ex.store().create_execution(&e, None).await.unwrap();
        ex.enqueue(&e, None).await.unwrap();
        let lease = queue
            .lease(&e.pool, Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        let run = RunRef {
            worker_id: "w".into(),
            delivery: format!("{}:{}", lease.message_id, lease.dequeue_count),
        };
        ex.start_run(&e.exec_id, &run).await.unwrap().unwrap();
        let job = lease.job.clone();
        let done = StatusChange::to(Status::Succeeded);
        let acked = ex
            .finish_and_ack(&job.exec_id, &run, done, None, &lease)
            .await
            .unwrap();
        assert_eq!(acked, acks);
        let e = ex.store().get_execution(&e.exec_id).await.unwrap().unwrap();
        assert_eq!(e.status, Status::Succeeded);
        // Acknowledged with the report: the lease no longer holds anything.
        assert_eq!(queue.ack(&lease).await.is_err(), acks);
    }
}
