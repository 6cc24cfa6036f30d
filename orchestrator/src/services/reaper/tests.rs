#![allow(clippy::unwrap_used)]

use super::*;
use cloudo_core::conformance::new_execution;
use cloudo_sqlite::{Db, Durability, SqliteQueue, SqliteStore};

#[tokio::test]
async fn lost_runs_are_requeued_as_many_times_as_the_schema_asks() {
    let (ex, queue, _dir) = parts();
    let mut e = new_execution("a", Status::Accepted);
    e.retry_on_lost = 1;
    e.env.insert("RESOURCE_NAME".into(), "vm-1".into());
    ex.store().create_execution(&e, None).await.unwrap();
    for round in 0..2 {
        ex.change(&e.exec_id, StatusChange::to(Status::Running))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        sweep(&ex, &queue, &[], bounds(1, 3600)).await.unwrap();
        let now = ex.store().get_execution(&e.exec_id).await.unwrap().unwrap();
        if round == 0 {
            assert_eq!(now.status, Status::Accepted);
            let why = now.transitions.last().and_then(|t| t.reason.clone());
            assert!(
                why.as_deref().unwrap_or("").contains("retry 1 of 1"),
                "{why:?}"
            );
            assert!(now.error.is_none(), "a requeued execution has no error yet");
            let l = queue
                .lease("default", Duration::from_secs(60))
                .await
                .unwrap();
            let job = l.expect("requeued job").job;
            assert_eq!(job.exec_id, e.exec_id);
            assert_eq!(
                job.env.get("RESOURCE_NAME").map(String::as_str),
                Some("vm-1")
            );
        } else {
            assert_eq!(now.status, Status::Lost, "retries used up");
        }
    }
}
use cloudo_core::{Job, Store};

fn bounds(lost_after: u64, queue_timeout: u64) -> Bounds {
    Bounds {
        lost_after: Duration::from_secs(lost_after),
        queue_timeout: Duration::from_secs(queue_timeout),
        dedup_window: Duration::from_secs(600),
    }
}

fn parts() -> (Executions, SqliteQueue, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("t.db"), Durability::Process).unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::new(db.clone()));
    let queue = SqliteQueue::new(db, 2);
    (Executions::new(store, Arc::new(queue.clone())), queue, dir)
}

#[tokio::test]
async fn executions_no_worker_starts_end_after_the_queue_timeout() {
    let (ex, queue, _dir) = parts();
    let mut stale = new_execution("a", Status::Accepted);
    stale.requested_at = time::now() - chrono::Duration::seconds(10);
    let fresh = new_execution("b", Status::Accepted);
    // Requeued after a lost attempt: asked for long ago, but its attempt was recent.
    let mut requeued = new_execution("c", Status::Accepted);
    requeued.requested_at = stale.requested_at;
    for e in [&stale, &fresh, &requeued] {
        ex.store().create_execution(e, None).await.unwrap();
    }
    for to in [Status::Running, Status::Accepted] {
        ex.change(&requeued.exec_id, StatusChange::to(to))
            .await
            .unwrap();
    }
    sweep(&ex, &queue, &[], bounds(60, 5)).await.unwrap();
    let get = |id: &ExecId| {
        let (ex, id) = (ex.clone(), id.clone());
        async move { ex.store().get_execution(&id).await.unwrap().unwrap() }
    };
    let s = get(&stale.exec_id).await;
    assert_eq!(s.status, Status::Error);
    let why = s.error.unwrap_or_default();
    assert!(why.contains("not started within 5 s"), "{why}");
    assert!(why.contains("pool 'default'"), "{why}");
    assert_eq!(get(&fresh.exec_id).await.status, Status::Accepted);
    assert_eq!(get(&requeued.exec_id).await.status, Status::Accepted);
}

#[tokio::test]
async fn silent_workers_and_dead_letters_are_settled() {
    let (ex, queue, _dir) = parts();
    // A running execution whose worker stopped heartbeating.
    let silent = new_execution("a", Status::Accepted);
    ex.store().create_execution(&silent, None).await.unwrap();
    ex.change(&silent.exec_id, StatusChange::to(Status::Running))
        .await
        .unwrap();
    // An accepted execution whose job was delivered twice without a result.
    let poisoned = new_execution("b", Status::Accepted);
    ex.store().create_execution(&poisoned, None).await.unwrap();
    queue
        .enqueue(
            "default",
            &Job::for_execution(&poisoned, Default::default(), None),
        )
        .await
        .unwrap();
    for _ in 0..2 {
        let l = queue
            .lease("default", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        queue.release(&l, Duration::ZERO).await.unwrap();
    }
    assert!(
        queue
            .lease("default", Duration::from_secs(60))
            .await
            .unwrap()
            .is_none()
    );
    // A healthy running one is left alone.
    let healthy = new_execution("c", Status::Accepted);
    ex.store().create_execution(&healthy, None).await.unwrap();
    ex.change(&healthy.exec_id, StatusChange::to(Status::Running))
        .await
        .unwrap();

    tokio::time::sleep(Duration::from_millis(1100)).await;
    ex.store()
        .heartbeat(&healthy.exec_id, time::now())
        .await
        .unwrap();
    sweep(&ex, &queue, &["default".into()], bounds(1, 3600))
        .await
        .unwrap();

    let get = |id: ExecId| {
        let ex = ex.clone();
        async move { ex.store().get_execution(&id).await.unwrap().unwrap() }
    };
    let s = get(silent.exec_id.clone()).await;
    assert_eq!(s.status, Status::Lost);
    assert!(s.error.unwrap().contains("no heartbeat"));
    let p = get(poisoned.exec_id.clone()).await;
    assert_eq!(p.status, Status::Error);
    assert!(p.error.unwrap().contains("2 deliveries"));
    assert_eq!(get(healthy.exec_id.clone()).await.status, Status::Running);
}
