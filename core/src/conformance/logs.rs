//! [`LogStore`] conformance: append at the end only, read any range, resume from an
//! offset, the cap, and writers that race.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::execution::ExecId;
use crate::store::{LogStore, StoreError};

/// Runs every `LogStore` test against stores made by `make` (one fresh store per test).
pub async fn run_all<S: LogStore, F: Fn() -> Fut, Fut: std::future::Future<Output = S>>(make: F) {
    append_and_read_ranges(make().await).await;
    wrong_offsets_are_refused(make().await).await;
    the_cap_bounds_the_log(make().await).await;
    racing_writers_store_one_piece(make().await).await;
    big_logs_cross_entity_boundaries(make().await).await;
}

async fn append_and_read_ranges(s: impl LogStore) {
    let id = ExecId::generate();
    let none = s.read_log(&id, 0, 100).await.unwrap();
    assert_eq!((none.size, none.data.len(), none.full), (0, 0, false));
    assert_eq!(s.append_log(&id, 0, b"hello ", 1000).await.unwrap(), 6);
    assert_eq!(s.append_log(&id, 6, b"", 1000).await.unwrap(), 6, "empty");
    assert_eq!(s.append_log(&id, 6, b"world\n", 1000).await.unwrap(), 12);
    let all = s.read_log(&id, 0, 100).await.unwrap();
    assert_eq!(all.data, b"hello world\n");
    assert_eq!(
        (all.offset, all.size, all.next(), all.full),
        (0, 12, 12, false)
    );
    // A range across the two pieces, and resuming from where a reader stopped.
    let mid = s.read_log(&id, 3, 5).await.unwrap();
    assert_eq!(mid.data, b"lo wo");
    let rest = s.read_log(&id, mid.next(), 100).await.unwrap();
    assert_eq!(rest.data, b"rld\n");
    let end = s.read_log(&id, 12, 100).await.unwrap();
    assert!(end.data.is_empty());
    assert_eq!(end.size, 12);
    let past = s.read_log(&id, 50, 100).await.unwrap();
    assert!(past.data.is_empty());
    let other = s.read_log(&ExecId::generate(), 0, 100).await.unwrap();
    assert_eq!(other.size, 0, "logs are per execution");
}

async fn wrong_offsets_are_refused(s: impl LogStore) {
    let id = ExecId::generate();
    s.append_log(&id, 0, b"abc", 1000).await.unwrap();
    for wrong in [0, 2, 4, 100] {
        match s.append_log(&id, wrong, b"x", 1000).await {
            Err(StoreError::LogOffset { size: 3 }) => {}
            other => panic!("append at {wrong}: {other:?}"),
        }
    }
    assert_eq!(s.read_log(&id, 0, 100).await.unwrap().data, b"abc");
    let fresh = ExecId::generate();
    assert!(matches!(
        s.append_log(&fresh, 5, b"x", 1000).await,
        Err(StoreError::LogOffset { size: 0 })
    ));
}

async fn the_cap_bounds_the_log(s: impl LogStore) {
    let id = ExecId::generate();
    assert_eq!(s.append_log(&id, 0, b"0123456", 10).await.unwrap(), 7);
    assert_eq!(s.append_log(&id, 7, b"789abc", 10).await.unwrap(), 10);
    let read = s.read_log(&id, 0, 100).await.unwrap();
    assert_eq!(read.data, b"0123456789");
    assert!(read.full, "at its cap");
    assert_eq!(
        s.append_log(&id, 10, b"more", 10).await.unwrap(),
        10,
        "a full log takes nothing more, without an error"
    );
    assert_eq!(s.read_log(&id, 0, 100).await.unwrap().data, b"0123456789");
}

async fn racing_writers_store_one_piece(s: impl LogStore) {
    let id = ExecId::generate();
    s.append_log(&id, 0, b"start:", 1000).await.unwrap();
    let (a, b) = tokio::join!(
        s.append_log(&id, 6, b"AAAA", 1000),
        s.append_log(&id, 6, b"BBBB", 1000)
    );
    let ok = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert_eq!(
        ok, 1,
        "exactly one of two racing appends lands: {a:?} {b:?}"
    );
    let refused = if a.is_ok() { &b } else { &a };
    assert!(
        matches!(refused, Err(StoreError::LogOffset { size: 10 })),
        "{refused:?}"
    );
    let data = s.read_log(&id, 0, 100).await.unwrap().data;
    assert!(
        data == b"start:AAAA" || data == b"start:BBBB",
        "{}",
        String::from_utf8_lossy(&data)
    );
}

/// Logs far larger than one table entity (and pieces that straddle entities) read back
/// whole and by ranges.
async fn big_logs_cross_entity_boundaries(s: impl LogStore) {
    let id = ExecId::generate();
    let all: Vec<u8> = (0..700_000u32).map(|n| b'a' + (n % 26) as u8).collect();
    let cap = 600_000;
    let mut offset = 0;
    for piece in [
        &all[..100],
        &all[100..250_000],
        &all[250_000..250_001],
        &all[250_001..],
    ] {
        offset = s.append_log(&id, offset, piece, cap).await.unwrap();
    }
    assert_eq!(offset, cap);
    let mut got = Vec::new();
    let mut from = 0;
    loop {
        let r = s.read_log(&id, from, 70_000).await.unwrap();
        if r.data.is_empty() {
            break;
        }
        assert!(r.data.len() <= 70_000);
        assert_eq!(r.offset, from);
        from = r.next();
        got.extend_from_slice(&r.data);
    }
    assert_eq!(got.len() as u64, cap);
    assert!(
        got == all[..cap as usize],
        "the first `cap` bytes, in order"
    );
    let straddle = s.read_log(&id, 239_990, 30).await.unwrap();
    assert_eq!(straddle.data, &all[239_990..240_020]);
}
