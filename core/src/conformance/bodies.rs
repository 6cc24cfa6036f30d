//! [`ExecutionStore::create_batches`] conformance: a delivery's body is stored once, every execution
//! of the delivery reads it back, and each batch keeps its own dedup key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::new_execution;
use crate::execution::Status;
use crate::store::{Batch, Created, DedupKey, ExecutionStore, NewExecution};

fn batch(schema: &str, n: usize, key: Option<&str>) -> Batch {
    Batch {
        executions: (0..n)
            .map(|_| {
                let mut e = new_execution(schema, Status::Accepted);
                e.request_body = None;
                NewExecution {
                    execution: e,
                    reason: None,
                }
            })
            .collect(),
        dedup: key.map(|k| DedupKey {
            key: k.into(),
            window: std::time::Duration::from_secs(600),
        }),
    }
}

pub async fn one_body_per_delivery(s: impl ExecutionStore) {
    // A key seen before: that batch is a duplicate and creates nothing (not even the body).
    let seen = batch("s", 1, Some("alert-0"));
    assert_eq!(
        s.create_batches(std::slice::from_ref(&seen), None)
            .await
            .unwrap(),
        vec![Created::New]
    );
    let body = format!(r#"{{"alerts": "{}"}}"#, "x".repeat(200_000));
    let batches = vec![
        batch("s", 1, Some("alert-0")),
        batch("s", 2, Some("alert-1")),
        batch("s", 1, None),
    ];
    let created = s.create_batches(&batches, Some(&body)).await.unwrap();
    assert!(matches!(created[0], Created::Duplicate(_)), "{created:?}");
    assert_eq!(&created[1..], &[Created::New, Created::New]);

    let mut holders = 0;
    for n in batches[1..].iter().flat_map(|b| &b.executions) {
        let got = s
            .get_execution(&n.execution.exec_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            got.request_body.as_deref(),
            Some(body.as_str()),
            "every execution reads the body"
        );
        if got.body_of.is_none() {
            holders += 1;
        } else {
            let holder = got.body_of.clone().unwrap();
            assert_eq!(
                holder, batches[1].executions[0].execution.exec_id,
                "the first created holds it"
            );
        }
    }
    assert_eq!(holders, 1, "the body is stored once");
    // The duplicate's own execution is untouched.
    let first = s
        .get_execution(&seen.executions[0].execution.exec_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first.request_body, first.body_of), (None, None));
    // Listings leave the body out.
    let page = s
        .list_executions(&crate::store::ExecutionQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(page.items.iter().all(|e| e.request_body.is_none()));
}
