//! [`AccessStore`] conformance: keys and the audit trail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::store::{AccessStore, StoreError};
use crate::time;

/// Runs every `AccessStore` test against stores made by `make` (one fresh store per test).
pub async fn run_all<S: AccessStore, F: Fn() -> Fut, Fut: std::future::Future<Output = S>>(
    make: F,
) {
    keys_and_audit(make().await).await;
}

async fn keys_and_audit(s: impl AccessStore) {
    use crate::auth::{ApiKey, AuditRecord, Role, hash_key};
    use crate::store::AuditQuery;
    let key = ApiKey {
        name: "ci".into(),
        role: Role::Operator,
        pool: None,
        scope: crate::scope::Scope::parse(vec!["tag:payments".into(), "id:x".into()]).unwrap(),
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
