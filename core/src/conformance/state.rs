//! [`StateStore`] conformance: versioned records, compare-and-swap, racing updaters, and
//! the limit records on top of them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::execution::ExecId;
use crate::limits::{Acquired, Slots};
use crate::store::{StateStore, read_state_as, update_state};
use crate::time;

/// Runs every `StateStore` test against stores made by `make` (one fresh store per test).
pub async fn run_all<S: StateStore, F: Fn() -> Fut, Fut: std::future::Future<Output = S>>(make: F) {
    compare_and_swap(make().await).await;
    racing_updates_all_land(make().await).await;
    one_slot_for_racing_runs(make().await).await;
    listing_by_prefix(make().await).await;
}

async fn compare_and_swap(s: impl StateStore) {
    let key = "limit/c/restart/subscriptions/0000/resourceGroups/rg/providers/x/vm 1";
    assert_eq!(s.read_state(key).await.unwrap(), None);
    assert!(s.write_state(key, "a", None).await.unwrap());
    assert!(!s.write_state(key, "b", None).await.unwrap(), "exists");
    let v1 = s.read_state(key).await.unwrap().expect("written");
    assert_eq!(v1.value, "a");
    assert!(s.write_state(key, "c", Some(&v1.version)).await.unwrap());
    assert!(
        !s.write_state(key, "d", Some(&v1.version)).await.unwrap(),
        "an old version loses"
    );
    let v2 = s.read_state(key).await.unwrap().expect("written");
    assert_eq!(v2.value, "c");
    assert_ne!(v1.version, v2.version);
    assert!(!s.delete_state(key, &v1.version).await.unwrap());
    assert!(s.delete_state(key, &v2.version).await.unwrap());
    assert_eq!(s.read_state(key).await.unwrap(), None);
    assert!(
        !s.write_state(key, "e", Some(&v2.version)).await.unwrap(),
        "gone"
    );
    // A long key (a resource id can be long) is a key like any other.
    let long = format!("limit/r/s/{}", "x/".repeat(400));
    assert!(s.write_state(&long, "1", None).await.unwrap());
    assert_eq!(s.read_state(&long).await.unwrap().unwrap().value, "1");
}

async fn racing_updates_all_land(s: impl StateStore) {
    let add = |n: u64| {
        let s = &s;
        async move {
            update_state(s, "counter", |c: &mut u64| {
                *c += n;
            })
            .await
            .unwrap()
        }
    };
    tokio::join!(add(1), add(2), add(4), add(8), add(16), add(32));
    let total: Option<u64> = read_state_as(&s, "counter").await.unwrap();
    assert_eq!(total, Some(63));
}

async fn one_slot_for_racing_runs(s: impl StateStore) {
    let ids: Vec<ExecId> = (0..5).map(|_| ExecId::generate()).collect();
    let acquire = |id: ExecId| {
        let s = &s;
        async move {
            update_state(s, "limit/c/x/", |slots: &mut Slots| {
                slots.acquire(&id, 1, true, time::now())
            })
            .await
            .unwrap()
        }
    };
    let got = futures_util::future::join_all(ids.iter().cloned().map(acquire)).await;
    let holding = got.iter().filter(|a| **a == Acquired::Holding).count();
    assert_eq!(holding, 1, "{got:?}");
    let slots: Slots = read_state_as(&s, "limit/c/x/").await.unwrap().unwrap();
    assert_eq!((slots.holders.len(), slots.waiting.len()), (1, 4));
    // The holder ends: the first in line gets its slot.
    let holder = slots.holders[0].exec_id.clone();
    let promoted = update_state(&s, "limit/c/x/", |slots: &mut Slots| {
        slots.release(&holder, time::now())
    })
    .await
    .unwrap();
    assert_eq!(promoted, vec![slots.waiting[0].clone()]);
}

async fn listing_by_prefix(s: impl StateStore) {
    for k in ["limit/p/default", "limit/c/a/1", "limit/c/a/2", "tick/x"] {
        assert!(s.write_state(k, "{}", None).await.unwrap());
    }
    let keys: Vec<String> = s
        .list_state("limit/c/")
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, vec!["limit/c/a/1", "limit/c/a/2"]);
    assert_eq!(s.list_state("limit/").await.unwrap().len(), 3);
}
