//! [`CatalogStore`] conformance.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::schema::Catalog;
use crate::store::CatalogStore;

/// Runs every `CatalogStore` test against stores made by `make` (one fresh store per test).
pub async fn run_all<S: CatalogStore, F: Fn() -> Fut, Fut: std::future::Future<Output = S>>(
    make: F,
) {
    schemas_replace(make().await).await;
}

async fn schemas_replace(s: impl CatalogStore) {
    let c = Catalog::parse(
        r#"[{"partition_key": "p", "entity": [{"id": "b", "runbook": "b.sh"}, {"id": "a", "runbook": "a.sh"}]}]"#,
    )
    .unwrap();
    s.replace_schemas(c.schemas()).await.unwrap();
    s.replace_schemas(c.schemas()).await.unwrap();
    let back = s.list_schemas().await.unwrap();
    assert_eq!(back, c.schemas(), "same schemas, same order");
}
