//! [`StateStore`] on the settings table, partition `st`: one entity per record, its ETag
//! the version (`If-Match` replace, insert for a new one). The key is kept as a property;
//! the RowKey is the key made safe, or its SHA-256 when that would be long.

use super::*;

/// The partition of state records in the settings table.
const PARTITION: &str = "st";

fn row_key(key: &str) -> String {
    let safe = safe_key(key);
    if safe.len() <= 400 {
        safe
    } else {
        let h: String = Sha256::digest(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("h~{h}")
    }
}

fn versioned(e: &Entity, etag: String) -> Versioned {
    Versioned {
        value: get_text(e, "value").unwrap_or_default(),
        version: etag,
    }
}

#[async_trait]
impl StateStore for AzureStore {
    async fn read_state(&self, key: &str) -> StoreResult<Option<Versioned>> {
        Ok(self
            .settings
            .get(PARTITION, &row_key(key))
            .await?
            .map(|(e, tag)| versioned(&e, tag)))
    }

    async fn write_state(
        &self,
        key: &str,
        value: &str,
        expected: Option<&str>,
    ) -> StoreResult<bool> {
        if value.len() > PART * 30 {
            return Err(StoreError::Conflict(format!(
                "state {key:?} is {} bytes; at most {} fit in one entity",
                value.len(),
                PART * 30
            )));
        }
        let mut e = Entity::new();
        e.insert("PartitionKey".into(), json!(PARTITION));
        e.insert("RowKey".into(), json!(row_key(key)));
        e.insert("key".into(), json!(key));
        put_text(&mut e, "value", value);
        let written = match expected {
            None => self.settings.insert(&e).await,
            Some(tag) => self.settings.write(&e, false, Some(tag)).await,
        };
        match written {
            Ok(_) => Ok(true),
            Err(TableError::Conflict(_) | TableError::Precondition | TableError::NotFound) => {
                Ok(false)
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn delete_state(&self, key: &str, expected: &str) -> StoreResult<bool> {
        match self
            .settings
            .delete(PARTITION, &row_key(key), Some(expected))
            .await
        {
            Ok(deleted) => Ok(deleted),
            Err(TableError::Precondition) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    async fn list_state(&self, prefix: &str) -> StoreResult<Vec<(String, Versioned)>> {
        let filter = format!("PartitionKey eq {}", quote(PARTITION));
        let rows = self.settings.query_all(Some(&filter)).await?;
        let mut out: Vec<(String, Versioned)> = rows
            .into_iter()
            .filter_map(|(e, tag)| {
                let key = str_prop(&e, "key")?.to_string();
                key.starts_with(prefix).then(|| (key, versioned(&e, tag)))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}
