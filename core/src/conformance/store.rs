//! [`Store`] conformance: records, the checked state machine, paging.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::execution::{ExecId, Execution, Status, StatusChange};
use crate::schema::Catalog;
use crate::store::{Created, DedupKey, ExecutionQuery, NewExecution, Store, StoreError};
use crate::time;

/// An execution as the orchestrator creates it for a manual trigger of schema `schema_id`.
pub fn new_execution(schema_id: &str, status: Status) -> Execution {
    let catalog = Catalog::parse(&format!(
        r#"[{{"partition_key": "p", "entity": [{{"id": "{schema_id}", "runbook": "r.sh",
            "run_args": "a 'b c'", "oncall": true, "timeout": 30}}]}}]"#
    ))
    .expect("valid test schema");
    let schema = catalog.get(schema_id).expect("test schema");
    Execution::new(
        schema,
        status,
        "manual",
        Some("team-a".into()),
        Some(r#"{"k": "v"}"#.into()),
    )
}

/// Runs every store test against stores made by `make` (one fresh store per test).
pub async fn run_all<S: Store, F: Fn() -> Fut, Fut: std::future::Future<Output = S>>(make: F) {
    round_trip(make().await).await;
    state_machine_is_enforced(make().await).await;
    listing_pages_and_filters(make().await).await;
    schemas_replace(make().await).await;
    heartbeat_only_while_running(make().await).await;
    dedup_creates_once_within_the_window(make().await).await;
    settings_round_trip(make().await).await;
    keys_and_audit(make().await).await;
    workers_and_leases(make().await).await;
    big_output_and_body_round_trip(make().await).await;
    outbox(make().await).await;
    super::bodies::one_body_per_delivery(make().await).await;
}

async fn outbox(s: impl Store) {
    use crate::notify::{Delivery, Notification};
    let a = ExecId::generate();
    let b = ExecId::generate();
    let mk = |id: &ExecId, action: &str| {
        Notification::new(
            id,
            Status::Failed,
            "opsgenie",
            action,
            "default",
            "alias-1",
            "/v2/alerts".into(),
            &serde_json::json!({"message": "m"}),
        )
    };
    let first = mk(&a, "create");
    let mut second = mk(&b, "close");
    second.state = Delivery::Held;
    let third = mk(&a, "note");
    s.add_notifications(&[first.clone(), second.clone(), third.clone()])
        .await
        .unwrap();
    let open = s.open_notifications(10).await.unwrap();
    assert_eq!(
        open,
        vec![first.clone(), second.clone(), third.clone()],
        "oldest first"
    );
    assert_eq!(s.open_notifications(2).await.unwrap().len(), 2);
    let mut done = first.clone();
    done.state = Delivery::Delivered;
    done.attempts = 2;
    done.last_error = Some("HTTP 503".into());
    done.delivered_at = Some(time::now());
    s.update_notification(&done).await.unwrap();
    let mut gave_up = third.clone();
    gave_up.state = Delivery::Failed;
    s.update_notification(&gave_up).await.unwrap();
    assert_eq!(s.open_notifications(10).await.unwrap(), vec![second]);
    assert_eq!(s.notifications_for(&a).await.unwrap(), vec![done, gave_up]);
    assert!(
        s.notifications_for(&ExecId::generate())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn workers_and_leases(s: impl Store) {
    use crate::store::WorkerInfo;
    use std::time::Duration;
    let t0 = time::now();
    let w = |id: &str, pool: &str, seen| WorkerInfo {
        id: id.into(),
        pools: vec![pool.into()],
        version: "0.1.0".into(),
        capacity: 4,
        running: vec![ExecId::generate()],
        started_at: t0,
        last_seen: seen,
    };
    s.put_worker(&w("w2", "b", t0)).await.unwrap();
    s.put_worker(&w("w1", "b", t0 - chrono::Duration::seconds(600)))
        .await
        .unwrap();
    s.put_worker(&w("w3", "a", t0)).await.unwrap();
    let mut again = w("w1", "b", t0);
    again.running.clear();
    s.put_worker(&again).await.unwrap();
    let seen = s
        .list_workers(t0 - chrono::Duration::seconds(60))
        .await
        .unwrap();
    let ids: Vec<_> = seen.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids, ["w1", "w2", "w3"], "by id");
    assert_eq!(seen[0], again, "replaced, not added");
    let stale = s
        .list_workers(t0 + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert!(stale.is_empty());

    let ttl = Duration::from_secs(30);
    assert!(s.try_lease("reaper", "A", ttl, t0).await.unwrap());
    assert!(
        !s.try_lease("reaper", "B", ttl, t0).await.unwrap(),
        "held by A"
    );
    assert!(
        s.try_lease("reaper", "A", ttl, t0).await.unwrap(),
        "A renews"
    );
    assert!(
        s.try_lease("other", "B", ttl, t0).await.unwrap(),
        "names are separate"
    );
    let later = t0 + chrono::Duration::seconds(31);
    assert!(
        s.try_lease("reaper", "B", ttl, later).await.unwrap(),
        "expired: B takes it"
    );
    assert!(!s.try_lease("reaper", "A", ttl, later).await.unwrap());
}

/// Outputs and request bodies far larger than one table entity property round-trip whole.
async fn big_output_and_body_round_trip(s: impl Store) {
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

async fn keys_and_audit(s: impl Store) {
    use crate::auth::{ApiKey, AuditRecord, Role, hash_key};
    use crate::store::AuditQuery;
    let key = ApiKey {
        name: "ci".into(),
        role: Role::Operator,
        pool: None,
        hash: hash_key("secret-1"),
        created_at: time::now(),
        expires_at: None,
        last_used_at: None,
    };
    s.put_key(&key, false).await.unwrap();
    assert!(matches!(
        s.put_key(&key, false).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.key_by_hash(&hash_key("secret-1")).await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(s.key_by_hash(&hash_key("other")).await.unwrap(), None);
    let at = time::now();
    s.touch_key("ci", at).await.unwrap();
    assert_eq!(s.list_keys().await.unwrap()[0].last_used_at, Some(at));
    let mut admin = key.clone();
    admin.role = Role::Admin;
    s.put_key(&admin, true).await.unwrap();
    assert_eq!(s.list_keys().await.unwrap()[0].role, Role::Admin);
    assert!(s.delete_key("ci").await.unwrap());
    assert!(!s.delete_key("ci").await.unwrap());
    assert!(
        s.key_by_hash(&hash_key("secret-1"))
            .await
            .unwrap()
            .is_none()
    );

    for (n, actor) in ["a", "b", "a"].iter().enumerate() {
        s.append_audit(&AuditRecord {
            at: time::now(),
            actor: actor.to_string(),
            role: "admin".into(),
            action: format!("POST /api/x{n}"),
            target: "/api/x".into(),
            source: "127.0.0.1".into(),
            outcome: 200,
        })
        .await
        .unwrap();
    }
    let q = |actor: Option<&str>, limit| AuditQuery {
        actor: actor.map(str::to_string),
        action: None,
        limit,
        cursor: None,
    };
    let all = s.list_audit(&q(None, 2)).await.unwrap();
    assert_eq!(all.items[0].action, "POST /api/x2", "newest first");
    assert!(all.next.is_some());
    let of_a = s.list_audit(&q(Some("a"), 10)).await.unwrap();
    assert_eq!(of_a.items.len(), 2);
    let by_action = s
        .list_audit(&AuditQuery {
            action: Some("POST /api/x1".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_action.items.len(), 1);
}

async fn dedup_creates_once_within_the_window(s: impl Store) {
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

async fn settings_round_trip(s: impl Store) {
    assert_eq!(s.get_setting("routes").await.unwrap(), None);
    s.put_setting("routes", "{\"rules\": []}").await.unwrap();
    s.put_setting("routes", "{\"rules\": [1]}").await.unwrap();
    assert_eq!(
        s.get_setting("routes").await.unwrap().as_deref(),
        Some("{\"rules\": [1]}")
    );
}

async fn round_trip(s: impl Store) {
    let e = new_execution("a", Status::Accepted);
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
    assert!(
        s.get_execution(&ExecId::generate())
            .await
            .unwrap()
            .is_none()
    );
}

async fn state_machine_is_enforced(s: impl Store) {
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

async fn listing_pages_and_filters(s: impl Store) {
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
        schema_id: None,
        status: Some(Status::Accepted),
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

async fn schemas_replace(s: impl Store) {
    let c = Catalog::parse(
        r#"[{"partition_key": "p", "entity": [{"id": "b", "runbook": "b.sh"}, {"id": "a", "runbook": "a.sh"}]}]"#,
    )
    .unwrap();
    s.replace_schemas(c.schemas()).await.unwrap();
    s.replace_schemas(c.schemas()).await.unwrap();
    let back = s.list_schemas().await.unwrap();
    assert_eq!(back, c.schemas(), "same schemas, same order");
}

async fn heartbeat_only_while_running(s: impl Store) {
    let e = new_execution("a", Status::Accepted);
    s.create_execution(&e, None).await.unwrap();
    assert!(!s.heartbeat(&e.exec_id, time::now(), None).await.unwrap());
    s.transition(&e.exec_id, &StatusChange::to(Status::Running), time::now())
        .await
        .unwrap();
    assert!(s.heartbeat(&e.exec_id, time::now(), None).await.unwrap());
    assert!(
        s.heartbeat(&e.exec_id, time::now(), Some("line 1\n"))
            .await
            .unwrap()
    );
    let live = s.get_execution(&e.exec_id).await.unwrap().unwrap();
    assert_eq!(live.output.as_deref(), Some("line 1\n"), "output so far");
    assert!(s.heartbeat(&e.exec_id, time::now(), None).await.unwrap());
    let still = s.get_execution(&e.exec_id).await.unwrap().unwrap();
    assert_eq!(
        still.output.as_deref(),
        Some("line 1\n"),
        "kept when not resent"
    );
    let mut done = StatusChange::to(Status::Succeeded);
    done.output = Some("line 1\nline 2\n".into());
    s.transition(&e.exec_id, &done, time::now()).await.unwrap();
    assert!(
        !s.heartbeat(&e.exec_id, time::now(), Some("late"))
            .await
            .unwrap()
    );
    let end = s.get_execution(&e.exec_id).await.unwrap().unwrap();
    assert_eq!(
        end.output.as_deref(),
        Some("line 1\nline 2\n"),
        "a late heartbeat changes nothing"
    );
}
