//! [`ApprovalStore`] conformance: decisions on pending executions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::approval::{Approval, ApprovalPolicy, Decision, Verdict};
use crate::execution::{ExecId, Status, StatusChange};
use crate::store::{Store, StoreError};
use crate::time;

use super::new_execution;

/// Runs every `ApprovalStore` test against stores made by `make` (one fresh store per test).
pub async fn run_all<S: Store, F: Fn() -> Fut, Fut: std::future::Future<Output = S>>(make: F) {
    decisions_are_recorded_once_each_and_read_back(make().await).await;
    concurrent_deciders_all_land(make().await).await;
}

fn decision(by: &str, verdict: Verdict) -> Decision {
    Decision {
        by: by.into(),
        via: "api".into(),
        decision: verdict,
        at: time::now(),
        comment: Some(format!("{by} says {}", verdict.as_str())),
    }
}

async fn pending(s: &impl Store, required: u32) -> ExecId {
    let mut e = new_execution("gated", Status::Pending);
    let policy = ApprovalPolicy {
        required,
        ..ApprovalPolicy::default()
    };
    e.approval = Some(Approval::new(policy, "alice", time::now()));
    s.create_execution(&e, None).await.unwrap();
    e.exec_id
}

async fn decisions_are_recorded_once_each_and_read_back(s: impl Store) {
    let id = pending(&s, 2).await;
    let conflict = |r: Result<_, StoreError>, what: &str| match r {
        Err(StoreError::Conflict(m)) => assert!(m.contains(what), "{m}"),
        other => panic!("expected a conflict about {what}: {other:?}"),
    };
    conflict(
        s.add_decision(&id, &decision("alice", Verdict::Approve))
            .await,
        "self-approval",
    );
    let e = s
        .add_decision(&id, &decision("bob", Verdict::Approve))
        .await
        .unwrap();
    assert_eq!(e.status, Status::Pending);
    assert_eq!(e.approval.as_ref().unwrap().approved(), 1);
    conflict(
        s.add_decision(&id, &decision("bob", Verdict::Approve))
            .await,
        "already decided",
    );
    s.add_decision(&id, &decision("carol", Verdict::Approve))
        .await
        .unwrap();
    let read = s.get_execution(&id).await.unwrap().unwrap();
    let approval = read.approval.unwrap();
    assert!(approval.granted());
    assert_eq!(
        approval
            .approvals
            .iter()
            .map(|d| (d.by.as_str(), d.comment.as_deref()))
            .collect::<Vec<_>>(),
        [
            ("bob", Some("bob says approve")),
            ("carol", Some("carol says approve"))
        ]
    );
    // Listings carry the request too (the console lists what waits for whom).
    let page = s
        .list_executions(&crate::store::ExecutionQuery {
            status: Some(Status::Pending),
            ..Default::default()
        })
        .await
        .unwrap();
    let listed = page.items.iter().find(|e| e.exec_id == id).expect("listed");
    assert_eq!(listed.approval.as_ref().unwrap().approved(), 2);

    // Once it is no longer pending, nobody decides.
    s.transition(&id, &StatusChange::to(Status::Accepted), time::now())
        .await
        .unwrap();
    conflict(
        s.add_decision(&id, &decision("dave", Verdict::Reject))
            .await,
        "not waiting for approval",
    );
    let plain = new_execution("plain", Status::Accepted);
    s.create_execution(&plain, None).await.unwrap();
    conflict(
        s.add_decision(&plain.exec_id, &decision("bob", Verdict::Approve))
            .await,
        "not waiting",
    );
    assert!(matches!(
        s.add_decision(&ExecId::generate(), &decision("bob", Verdict::Approve))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn concurrent_deciders_all_land(s: impl Store) {
    let id = pending(&s, 10).await;
    let (a, b, c, d) = (
        decision("approver-0", Verdict::Approve),
        decision("approver-1", Verdict::Approve),
        decision("approver-2", Verdict::Approve),
        decision("approver-3", Verdict::Approve),
    );
    let results = tokio::join!(
        s.add_decision(&id, &a),
        s.add_decision(&id, &b),
        s.add_decision(&id, &c),
        s.add_decision(&id, &d),
    );
    for r in [results.0, results.1, results.2, results.3] {
        r.unwrap();
    }
    let e = s.get_execution(&id).await.unwrap().unwrap();
    let mut by: Vec<String> = e
        .approval
        .unwrap()
        .approvals
        .into_iter()
        .map(|d| d.by)
        .collect();
    by.sort();
    assert_eq!(
        by,
        ["approver-0", "approver-1", "approver-2", "approver-3"],
        "every concurrent decision landed once"
    );
}
