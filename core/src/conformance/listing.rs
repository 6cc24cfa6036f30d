//! [`ExecutionStore::list_executions`] conformance: pages, cursors and every filter.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::new_execution;
use crate::execution::{ExecId, Status};
use crate::store::{ExecutionQuery, ExecutionStore, StoreError};
use crate::time;

pub(super) async fn pages_and_filters(s: impl ExecutionStore) {
    let mut ids = Vec::new();
    for n in 0..5 {
        let e = new_execution(if n % 2 == 0 { "even" } else { "odd" }, Status::Accepted);
        s.create_execution(&e, None).await.unwrap();
        ids.push(e.exec_id);
    }
    s.create_execution(&new_execution("skip", Status::Skipped), Some("filtered"))
        .await
        .unwrap();
    let q = |limit, cursor: Option<String>| ExecutionQuery {
        limit,
        cursor,
        status: Some(Status::Accepted),
        ..ExecutionQuery::default()
    };
    let p1 = s.list_executions(&q(2, None)).await.unwrap();
    assert_eq!(
        p1.items.iter().map(|e| &e.exec_id).collect::<Vec<_>>(),
        vec![&ids[4], &ids[3]]
    );
    assert!(
        p1.items
            .iter()
            .all(|e| e.output.is_none() && e.request_body.is_none())
    );
    let p2 = s.list_executions(&q(2, p1.next.clone())).await.unwrap();
    assert_eq!(
        p2.items.iter().map(|e| &e.exec_id).collect::<Vec<_>>(),
        vec![&ids[2], &ids[1]]
    );
    let p3 = s.list_executions(&q(2, p2.next.clone())).await.unwrap();
    assert_eq!(p3.items.len(), 1);
    assert!(p3.next.is_none());
    let odd = s
        .list_executions(&ExecutionQuery {
            limit: 10,
            schema_id: Some("odd".into()),
            ..ExecutionQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(odd.items.len(), 2);
    let bad = s.list_executions(&q(2, Some("not-a-cursor".into()))).await;
    assert!(matches!(bad, Err(StoreError::BadCursor)));
    let skipped = s.executions_in(Status::Skipped, 10).await.unwrap();
    assert_eq!(skipped.len(), 1);
}

/// `initiator`, `since` and `until` filter in the store, and pages go on within them.
pub(super) async fn by_initiator_and_time(s: impl ExecutionStore) {
    let day = chrono::Duration::days(1);
    let now = time::now();
    let mut ids = Vec::new();
    // Oldest first, as they would have been requested.
    for (n, (initiator, days_ago)) in [
        ("alert", 3),
        ("manual", 3),
        ("alert", 2),
        ("schedule:nightly", 2),
        ("alert", 1),
    ]
    .into_iter()
    .enumerate()
    {
        let mut e = new_execution("w", Status::Accepted);
        e.initiator = initiator.into();
        e.requested_at = now - day * days_ago + chrono::Duration::milliseconds(n as i64);
        e.partition_key = time::partition_key(e.requested_at);
        s.create_execution(&e, None).await.unwrap();
        ids.push(e.exec_id);
    }
    let list = |q: ExecutionQuery| {
        let s = &s;
        async move {
            let page = s.list_executions(&q).await.unwrap();
            let got: Vec<ExecId> = page.items.into_iter().map(|e| e.exec_id).collect();
            (got, page.next)
        }
    };
    let at = |days: f64| now - chrono::Duration::milliseconds((days * 86_400_000.0) as i64);
    let q = ExecutionQuery {
        limit: 10,
        ..ExecutionQuery::default()
    };
    let (got, _) = list(ExecutionQuery {
        initiator: Some("alert".into()),
        ..q.clone()
    })
    .await;
    assert_eq!(got, vec![ids[4].clone(), ids[2].clone(), ids[0].clone()]);
    let (got, _) = list(ExecutionQuery {
        since: Some(at(2.5)),
        until: Some(at(1.5)),
        ..q.clone()
    })
    .await;
    assert_eq!(got, vec![ids[3].clone(), ids[2].clone()]);
    let (got, _) = list(ExecutionQuery {
        since: Some(at(2.5)),
        ..q.clone()
    })
    .await;
    assert_eq!(got, vec![ids[4].clone(), ids[3].clone(), ids[2].clone()]);
    let (got, _) = list(ExecutionQuery {
        until: Some(at(2.5)),
        ..q.clone()
    })
    .await;
    assert_eq!(got, vec![ids[1].clone(), ids[0].clone()]);
    // Paging inside a filtered window, one at a time.
    let window = ExecutionQuery {
        initiator: Some("alert".into()),
        since: Some(at(3.5)),
        until: Some(at(1.5)),
        limit: 1,
        ..ExecutionQuery::default()
    };
    let (p1, next) = list(window.clone()).await;
    assert_eq!(p1, vec![ids[2].clone()]);
    let (p2, next) = list(ExecutionQuery {
        cursor: next,
        ..window.clone()
    })
    .await;
    assert_eq!(p2, vec![ids[0].clone()]);
    assert!(next.is_none(), "nothing after the oldest: {next:?}");
}
