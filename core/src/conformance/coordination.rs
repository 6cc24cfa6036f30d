//! [`Coordination`] conformance: settings, the worker registry, leases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::execution::ExecId;
use crate::store::Coordination;
use crate::time;

/// Runs every `Coordination` test against stores made by `make` (one fresh store per test).
pub async fn run_all<S: Coordination, F: Fn() -> Fut, Fut: std::future::Future<Output = S>>(
    make: F,
) {
    settings_round_trip(make().await).await;
    first_init_wins(make().await).await;
    workers_and_leases(make().await).await;
}

async fn settings_round_trip(s: impl Coordination) {
    assert_eq!(s.get_setting("routes").await.unwrap(), None);
    s.put_setting("routes", "{\"rules\": []}").await.unwrap();
    s.put_setting("routes", "{\"rules\": [1]}").await.unwrap();
    assert_eq!(
        s.get_setting("routes").await.unwrap().as_deref(),
        Some("{\"rules\": [1]}")
    );
}

async fn first_init_wins(s: impl Coordination) {
    let (a, b, c) = tokio::join!(
        s.init_setting("link-key", "from-a"),
        s.init_setting("link-key", "from-b"),
        s.init_setting("link-key", "from-c"),
    );
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert!(a == b && b == c, "one value for all: {a} {b} {c}");
    assert!(["from-a", "from-b", "from-c"].contains(&a.as_str()));
    assert_eq!(s.get_setting("link-key").await.unwrap(), Some(a.clone()));
    assert_eq!(s.init_setting("link-key", "later").await.unwrap(), a);
}

async fn workers_and_leases(s: impl Coordination) {
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
