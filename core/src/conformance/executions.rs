//! [`ExecutionStore`] conformance: records, the checked state machine, dedup, paging.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::new_execution;
use crate::execution::{ExecId, Status, StatusChange};
use crate::store::{Created, DedupKey, ExecutionStore, NewExecution, StoreError};
use crate::time;

/// Runs every `ExecutionStore` test against stores made by `make` (one fresh store per test).
pub async fn run_all<S: ExecutionStore, F: Fn() -> Fut, Fut: std::future::Future<Output = S>>(
    make: F,
) {
    round_trip(make().await).await;
    state_machine_is_enforced(make().await).await;
    super::listing::pages_and_filters(make().await).await;
    super::listing::by_initiator_and_time(make().await).await;
    heartbeat_only_while_running(make().await).await;
    a_change_for_another_attempt_is_refused(make().await).await;
    dedup_creates_once_within_the_window(make().await).await;
    big_output_and_body_round_trip(make().await).await;
    super::bodies::one_body_per_delivery(make().await).await;
}

async fn round_trip(s: impl ExecutionStore) {
    let mut e = new_execution("a", Status::Accepted);
    e.dry_run = true;
    e.limits.max_concurrency = Some(2);
    e.limits.concurrency_key = Some("AKS_NAMESPACE".into());
    e.verify_of = Some(ExecId::generate());
    e.not_before = Some(crate::time::now());
    e.verify = Some(crate::verify::Verify {
        runbook: "check.sh".into(),
        run_args: "-v".into(),
        delay_secs: 5,
        timeout: 60,
    });
    s.create_execution(&e, None).await.unwrap();
    assert!(matches!(
        s.create_execution(&e, None).await,
        Err(StoreError::Duplicate { .. })
    ));
    let got = s.get_execution(&e.exec_id).await.unwrap().expect("stored");
    assert_eq!(got.transitions.len(), 1);
    assert_eq!(got.transitions[0].from, None);
    let mut expected = e.clone();
    expected.transitions = got.transitions.clone();
    assert_eq!(got, expected);
    let listed = s
        .list_executions(&crate::store::ExecutionQuery {
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        listed
            .items
            .iter()
            .any(|x| x.exec_id == e.exec_id && x.dry_run)
    );
    assert!(
        s.get_execution(&ExecId::generate())
            .await
            .unwrap()
            .is_none()
    );
}

async fn state_machine_is_enforced(s: impl ExecutionStore) {
    let e = new_execution("a", Status::Accepted);
    s.create_execution(&e, None).await.unwrap();
    let t = time::now();
    let bad = s
        .transition(&e.exec_id, &StatusChange::to(Status::Succeeded), t)
        .await;
    assert!(
        matches!(bad, Err(StoreError::Illegal(_))),
        "accepted -> succeeded refused"
    );
    let mut run = StatusChange::to(Status::Running);
    run.worker_id = Some("w1".into());
    let running = s.transition(&e.exec_id, &run, t).await.unwrap();
    assert_eq!(running.status, Status::Running);
    assert!(running.started_at.is_some());
    let mut done = StatusChange::to(Status::Failed).reason("exit code 3");
    done.exit_code = Some(3);
    done.output = Some("out\nerr\n".into());
    done.runbook_commit = Some("0123456789abcdef0123456789abcdef01234567".into());
    s.transition(&e.exec_id, &done, time::now()).await.unwrap();
    let again = s
        .transition(&e.exec_id, &StatusChange::to(Status::Lost), time::now())
        .await;
    assert!(
        matches!(again, Err(StoreError::Illegal(_))),
        "terminal stays terminal"
    );
    let got = s.get_execution(&e.exec_id).await.unwrap().unwrap();
    assert_eq!(got.status, Status::Failed);
    assert_eq!(got.exit_code, Some(3));
    assert_eq!(got.error.as_deref(), Some("exit code 3"));
    assert_eq!(got.output.as_deref(), Some("out\nerr\n"));
    assert_eq!(got.worker_id.as_deref(), Some("w1"));
    assert_eq!(
        got.runbook_commit.as_deref(),
        Some("0123456789abcdef0123456789abcdef01234567")
    );
    let path: Vec<_> = got.transitions.iter().map(|t| t.to).collect();
    assert_eq!(
        path,
        vec![Status::Accepted, Status::Running, Status::Failed]
    );
    let missing = s
        .transition(&ExecId::generate(), &StatusChange::to(Status::Running), t)
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
}

async fn heartbeat_only_while_running(s: impl ExecutionStore) {
    let e = new_execution("a", Status::Accepted);
    s.create_execution(&e, None).await.unwrap();
    assert!(!s.heartbeat(&e.exec_id, time::now()).await.unwrap());
    s.transition(&e.exec_id, &StatusChange::to(Status::Running), time::now())
        .await
        .unwrap();
    let at = time::now();
    assert!(s.heartbeat(&e.exec_id, at).await.unwrap());
    let live = s.get_execution(&e.exec_id).await.unwrap().unwrap();
    assert_eq!(live.heartbeat_at, Some(at), "the last sign of life");
    let mut done = StatusChange::to(Status::Succeeded);
    done.output = Some("line 1\nline 2\n".into());
    s.transition(&e.exec_id, &done, time::now()).await.unwrap();
    assert!(!s.heartbeat(&e.exec_id, time::now()).await.unwrap());
    let end = s.get_execution(&e.exec_id).await.unwrap().unwrap();
    assert_eq!(end.output.as_deref(), Some("line 1\nline 2\n"));
}

async fn dedup_creates_once_within_the_window(s: impl ExecutionStore) {
    let key = DedupKey {
        key: "azure:/alerts/1:Fired".into(),
        window: std::time::Duration::from_secs(600),
    };
    let first = [
        NewExecution {
            execution: new_execution("a", Status::Accepted),
            reason: None,
        },
        NewExecution {
            execution: new_execution("b", Status::Skipped),
            reason: Some("filtered".into()),
        },
    ];
    let ids: Vec<ExecId> = first.iter().map(|n| n.execution.exec_id.clone()).collect();
    assert_eq!(
        s.create_executions(&first, Some(&key)).await.unwrap(),
        Created::New
    );
    let again = [NewExecution {
        execution: new_execution("a", Status::Accepted),
        reason: None,
    }];
    assert_eq!(
        s.create_executions(&again, Some(&key)).await.unwrap(),
        Created::Duplicate(ids.clone())
    );
    assert!(
        s.get_execution(&again[0].execution.exec_id)
            .await
            .unwrap()
            .is_none()
    );
    let skipped = s.get_execution(&ids[1]).await.unwrap().unwrap();
    assert_eq!(skipped.transitions[0].reason.as_deref(), Some("filtered"));
    // Another key is independent; a purged key can be used again.
    let other = DedupKey {
        key: "other".into(),
        window: key.window,
    };
    assert_eq!(
        s.create_executions(&again, Some(&other)).await.unwrap(),
        Created::New
    );
    let purged = s
        .purge_dedup(time::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(purged, 2);
    let fresh = [NewExecution {
        execution: new_execution("a", Status::Accepted),
        reason: None,
    }];
    assert_eq!(
        s.create_executions(&fresh, Some(&key)).await.unwrap(),
        Created::New
    );
    // An expired window counts as new too.
    let short = DedupKey {
        key: "short".into(),
        window: std::time::Duration::from_millis(1),
    };
    let one = [NewExecution {
        execution: new_execution("a", Status::Accepted),
        reason: None,
    }];
    assert_eq!(
        s.create_executions(&one, Some(&short)).await.unwrap(),
        Created::New
    );
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let two = [NewExecution {
        execution: new_execution("a", Status::Accepted),
        reason: None,
    }];
    assert_eq!(
        s.create_executions(&two, Some(&short)).await.unwrap(),
        Created::New
    );
}

/// Outputs and request bodies far larger than one table entity property round-trip whole.
async fn big_output_and_body_round_trip(s: impl ExecutionStore) {
    let mut e = new_execution("a", Status::Accepted);
    let body: String = (0..40_000)
        .map(|n| format!("{{\"n\":{n}}}"))
        .collect::<Vec<_>>()
        .join(",");
    let body = format!("[{body}]");
    e.request_body = Some(body.clone());
    s.create_execution(&e, None).await.unwrap();
    s.transition(&e.exec_id, &StatusChange::to(Status::Running), time::now())
        .await
        .unwrap();
    // 1 MiB of multi-byte text, cut at no particular boundary.
    let output: String = "é€𝄞x\n".repeat(1 << 17);
    let mut done = StatusChange::to(Status::Succeeded);
    done.output = Some(output.clone());
    done.output_truncated = true;
    s.transition(&e.exec_id, &done, time::now()).await.unwrap();
    let got = s.get_execution(&e.exec_id).await.unwrap().unwrap();
    let back = got.output.as_deref().unwrap_or("");
    if back != output {
        // Where it differs, to tell a lost or repeated chunk from a cut in the wrong place.
        let at = back
            .bytes()
            .zip(output.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(back.len().min(output.len()));
        let around = |s: &str| {
            String::from_utf8_lossy(&s.as_bytes()[at.saturating_sub(20)..(at + 40).min(s.len())])
                .into_owned()
        };
        panic!(
            "output differs: {} bytes back for {} written; first difference at byte {at}: {:?} vs {:?}",
            back.len(),
            output.len(),
            around(back),
            around(&output)
        );
    }
    assert!(
        got.output.as_deref() == Some(output.as_str()),
        "output intact"
    );
    assert!(got.output_truncated);
    assert!(
        got.request_body.as_deref() == Some(body.as_str()),
        "body intact"
    );
}

/// `only_attempt` is checked in the same atomic step as the status.
async fn a_change_for_another_attempt_is_refused(s: impl ExecutionStore) {
    let e = new_execution("a", Status::Accepted);
    s.create_execution(&e, None).await.unwrap();
    let mut start = StatusChange::to(Status::Running);
    start.worker_id = Some("w2".into());
    let running = s.transition(&e.exec_id, &start, time::now()).await.unwrap();
    let started = running.started_at.unwrap();
    let mut stale = StatusChange::to(Status::Succeeded);
    stale.only_attempt = Some(("w1".into(), started));
    assert!(matches!(
        s.transition(&e.exec_id, &stale, time::now()).await,
        Err(StoreError::Illegal(_))
    ));
    stale.only_attempt = Some(("w2".into(), started - chrono::Duration::seconds(1)));
    assert!(matches!(
        s.transition(&e.exec_id, &stale, time::now()).await,
        Err(StoreError::Illegal(_))
    ));
    stale.only_attempt = Some(("w2".into(), started));
    let done = s.transition(&e.exec_id, &stale, time::now()).await.unwrap();
    assert_eq!(done.status, Status::Succeeded);
}
