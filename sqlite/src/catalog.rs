//! [`CatalogStore`] on SQLite.

use async_trait::async_trait;
use rusqlite::params;

use crate::store::{SqliteStore, db_err, json_rows};
use cloudo_core::schema::Schema;
use cloudo_core::store::{CatalogStore, SchemaEdit, StoreError, StoreResult};

#[async_trait]
impl CatalogStore for SqliteStore {
    async fn replace_schemas(&self, schemas: &[Schema]) -> StoreResult<()> {
        let rows = schemas
            .iter()
            .map(|s| {
                serde_json::to_string(s)
                    .map(|body| (s.id.clone(), body))
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        self.db
            .write(move |tx| {
                tx.execute("DELETE FROM schemas", []).map_err(db_err)?;
                let mut ins = tx
                    .prepare_cached("INSERT INTO schemas (id, position, body) VALUES (?1, ?2, ?3)")
                    .map_err(db_err)?;
                for (n, (id, body)) in rows.iter().enumerate() {
                    ins.execute(params![id, n as i64, body]).map_err(db_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn list_schemas(&self) -> StoreResult<Vec<Schema>> {
        self.db
            .read(|c| json_rows(c, "SELECT body FROM schemas ORDER BY position", []))
            .await
    }

    async fn edit_schemas(&self, f: SchemaEdit) -> StoreResult<Result<Vec<Schema>, String>> {
        self.db
            .write(move |tx| {
                let old: Vec<Schema> =
                    json_rows(tx, "SELECT body FROM schemas ORDER BY position", [])?;
                let new = match f(old) {
                    Ok(new) => new,
                    Err(why) => return Ok(Err(why)),
                };
                tx.execute("DELETE FROM schemas", []).map_err(db_err)?;
                let mut ins = tx
                    .prepare_cached("INSERT INTO schemas (id, position, body) VALUES (?1, ?2, ?3)")
                    .map_err(db_err)?;
                for (n, s) in new.iter().enumerate() {
                    let body =
                        serde_json::to_string(s).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    ins.execute(params![s.id, n as i64, body]).map_err(db_err)?;
                }
                Ok(Ok(new))
            })
            .await
    }
}
