//! The schema catalog as an operator document: given as a `--catalog` file (ClouDO's
//! format) or stored, held by the services that read it as a [`LiveCatalog`] that a
//! replacement swaps in one step.

use std::sync::{Arc, PoisonError, RwLock};

use cloudo_core::store::StoreResult;
use cloudo_core::{Catalog, Store};

use super::Document;

impl Document for Catalog {
    const WHAT: &'static str = "catalog";

    fn parse(text: &str) -> Result<Self, String> {
        Catalog::parse(text).map_err(|e| format!("{}: {}", e.location, e.message))
    }

    fn summary(&self) -> String {
        format!("{} schemas", self.schemas().len())
    }

    async fn read(store: &dyn Store) -> anyhow::Result<Option<(Self, String)>> {
        let schemas = store.list_schemas().await?;
        if schemas.is_empty() {
            return Ok(None);
        }
        // The stored form compared between re-reads: fields in order, no maps.
        let text = serde_json::to_string(&schemas)?;
        let catalog = Catalog::from_schemas(schemas)
            .map_err(|e| anyhow::anyhow!("stored catalog: {}: {}", e.location, e.message))?;
        Ok(Some((catalog, text)))
    }

    async fn write(&self, store: &dyn Store) -> StoreResult<()> {
        store.replace_schemas(self.schemas()).await
    }
}

/// The catalog in use, shared by every service that reads it; replaced as a whole.
#[derive(Debug, Clone, Default)]
pub struct LiveCatalog(Arc<RwLock<Arc<Catalog>>>);

impl LiveCatalog {
    pub fn new(catalog: Catalog) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(catalog))))
    }

    /// The catalog as it is now (a reader keeps this one while a replacement lands).
    pub fn get(&self) -> Arc<Catalog> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn set(&self, catalog: Catalog) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(catalog);
    }
}
