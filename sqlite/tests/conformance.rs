//! The embedded adapters against the conformance suites.

use cloudo_core::conformance;
use cloudo_sqlite::{Db, Durability, SqliteQueue, SqliteStore};

fn db() -> Db {
    // Leaked on purpose: each test database lives until the test process ends.
    let dir = tempfile::tempdir().expect("temp dir").keep();
    Db::open(&dir.join("cloudo.db"), Durability::Process).expect("open db")
}

#[tokio::test]
async fn sqlite_store_conforms() {
    conformance::run_all(|| async { SqliteStore::new(db()) }).await;
}

#[tokio::test]
async fn sqlite_queue_conforms() {
    conformance::queue::run_all(
        || async { SqliteQueue::new(db(), 3) },
        std::time::Duration::from_millis(200),
    )
    .await;
}
