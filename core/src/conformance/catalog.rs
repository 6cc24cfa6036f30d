//! [`CatalogStore`] conformance.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::schema::Catalog;
use crate::store::CatalogStore;

/// Runs every `CatalogStore` test against stores made by `make` (one fresh store per test).
pub async fn run_all<S: CatalogStore, F: Fn() -> Fut, Fut: std::future::Future<Output = S>>(
    make: F,
) {
    schemas_replace(make().await).await;
    concurrent_edits_all_land(make().await).await;
}

async fn concurrent_edits_all_land(s: impl CatalogStore) {
    use std::sync::Arc;
    let add = |id: &'static str| {
        let s = &s;
        async move {
            let f: crate::store::SchemaEdit = Arc::new(move |mut v| {
                let c = Catalog::parse(&format!(
                    r#"[{{"partition_key": "p", "entity": [{{"id": "{id}", "runbook": "{id}.sh"}}]}}]"#
                ))
                .map_err(|e| e.to_string())?;
                v.extend(c.schemas().iter().cloned());
                Ok(v)
            });
            s.edit_schemas(f).await.unwrap().unwrap()
        }
    };
    tokio::join!(add("x"), add("y"), add("z"));
    let mut ids: Vec<String> = s
        .list_schemas()
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.id)
        .collect();
    ids.sort();
    assert_eq!(ids, ["x", "y", "z"], "no edit lost");
    let refuse: crate::store::SchemaEdit = Arc::new(|_| Err("no".to_string()));
    assert_eq!(s.edit_schemas(refuse).await.unwrap(), Err("no".to_string()));
    assert_eq!(
        s.list_schemas().await.unwrap().len(),
        3,
        "a refused edit writes nothing"
    );
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
