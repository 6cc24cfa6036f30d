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
}
