//! The one place a backend is opened: the embedded SQLite database of a data directory, or
//! the Azure Storage tables and queues of an account and prefix.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use cloudo_azure::AzureStore;
use cloudo_core::store::Intake;
use cloudo_core::{JobQueue, OwnedQueue, Store};
use cloudo_sqlite::{Db, Durability, SqliteQueue, SqliteStore};

use cloudo_worker::command::azure::AzureBackend;

/// A store and the job queue beside it.
pub struct Backend {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn JobQueue>,
    /// The queue again when this process owns it alone (embedded): its start-up recovery.
    pub owned: Option<Arc<dyn OwnedQueue>>,
    /// Records and queues in one commit, where store and queue share a database (embedded).
    pub intake: Option<Arc<dyn Intake>>,
}

/// The embedded backend: `cloudo.db` in `data_dir` (created if missing).
pub fn embedded(
    data_dir: &Path,
    durability: Durability,
    max_deliveries: u32,
) -> anyhow::Result<Backend> {
    let db = open_db(&data_dir.join("cloudo.db"), durability)?;
    let queue = Arc::new(SqliteQueue::new(db.clone(), max_deliveries));
    Ok(Backend {
        store: Arc::new(SqliteStore::new(db)),
        queue: queue.clone(),
        owned: Some(queue.clone()),
        intake: Some(queue),
    })
}

/// The shared backend on Azure Storage.
pub async fn azure(az: &AzureBackend, max_deliveries: u32) -> anyhow::Result<Backend> {
    let store = azure_store(az).await?;
    tracing::info!(account = %az.account.name, prefix = %az.prefix, "backend: Azure Storage");
    Ok(Backend {
        store,
        queue: az.queue(max_deliveries),
        owned: None,
        intake: None,
    })
}

pub async fn azure_store(az: &AzureBackend) -> anyhow::Result<Arc<dyn Store>> {
    let store = AzureStore::open(&az.account, &az.prefix)
        .await
        .with_context(|| format!("cannot open the Azure tables of {:?}", az.account))?;
    Ok(Arc::new(store))
}

/// The store of an existing embedded database (for commands that must not create one).
pub fn existing_embedded_store(data_dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    let path = data_dir.join("cloudo.db");
    if !path.exists() {
        bail!(
            "no database at {} (start `cloudo serve` once, or pass --data-dir)",
            path.display()
        );
    }
    Ok(Arc::new(SqliteStore::new(open_db(
        &path,
        Durability::Process,
    )?)))
}

fn open_db(path: &Path, durability: Durability) -> anyhow::Result<Db> {
    Db::open(path, durability).with_context(|| format!("cannot open database {}", path.display()))
}
