//! [`CatalogStore`]: the schema catalog, when it is not read from a file.

use async_trait::async_trait;

use super::StoreResult;
use crate::schema::Schema;

#[async_trait]
pub trait CatalogStore: Send + Sync + 'static {
    /// Replaces the stored catalog.
    async fn replace_schemas(&self, schemas: &[Schema]) -> StoreResult<()>;
    /// The stored catalog, in the order it was given.
    async fn list_schemas(&self) -> StoreResult<Vec<Schema>>;
    /// Changes the stored catalog in one atomic step: `f` gets the schemas as stored and
    /// returns the new list, or why not (then nothing is written). Editors on several
    /// replicas never lose each other's change.
    async fn edit_schemas(&self, f: SchemaEdit) -> StoreResult<Result<Vec<Schema>, String>>;
}

/// A change to the catalog as a whole (see [`CatalogStore::edit_schemas`]); it may run more
/// than once.
pub type SchemaEdit =
    std::sync::Arc<dyn Fn(Vec<Schema>) -> Result<Vec<Schema>, String> + Send + Sync>;
