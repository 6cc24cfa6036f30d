//! [`Coordination`] on tables (settings, workers, leases), and the catalog, kept as one
//! setting.

use super::*;

#[async_trait]
impl Coordination for AzureStore {
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(self
            .settings
            .get("s", &safe_key(key))
            .await?
            .and_then(|(e, _)| get_text(&e, "value")))
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        let mut e = Entity::new();
        e.insert("PartitionKey".into(), json!("s"));
        e.insert("RowKey".into(), json!(safe_key(key)));
        e.insert("updated_at".into(), json!(time::rfc3339(time::now())));
        if value.len() > PART * 30 {
            return Err(StoreError::Conflict(format!(
                "setting {key:?} is {} bytes; at most {} fit in one entity",
                value.len(),
                PART * 30
            )));
        }
        put_text(&mut e, "value", value);
        self.settings.write(&e, false, None).await?;
        Ok(())
    }

    async fn init_setting(&self, key: &str, value: &str) -> StoreResult<String> {
        let mut e = Entity::new();
        e.insert("PartitionKey".into(), json!("s"));
        e.insert("RowKey".into(), json!(safe_key(key)));
        e.insert("updated_at".into(), json!(time::rfc3339(time::now())));
        put_text(&mut e, "value", value);
        match self.settings.insert(&e).await {
            Ok(_) => Ok(value.to_string()),
            // Someone was first: theirs.
            Err(TableError::Conflict(_)) => self.get_setting(key).await?.ok_or_else(|| {
                StoreError::Unavailable(format!("setting {key:?} exists and cannot be read"))
            }),
            Err(err) => Err(err.into()),
        }
    }

    async fn put_worker(&self, w: &WorkerInfo) -> StoreResult<()> {
        let mut e = Entity::new();
        e.insert("PartitionKey".into(), json!("w"));
        e.insert("RowKey".into(), json!(safe_key(&w.id)));
        e.insert("last_seen".into(), json!(time::rfc3339(w.last_seen)));
        put_text(&mut e, "doc", &serde_json::to_string(w).map_err(corrupt)?);
        self.workers.write(&e, false, None).await?;
        Ok(())
    }

    async fn list_workers(&self, since: Timestamp) -> StoreResult<Vec<WorkerInfo>> {
        let filter = format!("last_seen ge {}", quote(&time::rfc3339(since)));
        let rows = self.workers.query_all(Some(&filter)).await?;
        let mut out = rows
            .iter()
            .map(|(e, _)| {
                let doc = get_text(e, "doc").ok_or_else(|| corrupt("worker without doc"))?;
                serde_json::from_str::<WorkerInfo>(&doc).map_err(corrupt)
            })
            .collect::<StoreResult<Vec<_>>>()?;
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let until = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(1));
        let mut e = Entity::new();
        e.insert("PartitionKey".into(), json!("l"));
        e.insert("RowKey".into(), json!(safe_key(name)));
        e.insert("holder".into(), json!(holder));
        e.insert("expires_at".into(), json!(time::rfc3339(until)));
        let (old, tag) = match self.leases.get("l", &safe_key(name)).await? {
            None => {
                return match self.leases.insert(&e).await {
                    Ok(_) => Ok(true),
                    Err(TableError::Conflict(_)) => Ok(false),
                    Err(err) => Err(err.into()),
                };
            }
            Some(found) => found,
        };
        let expired = str_prop(&old, "expires_at")
            .and_then(time::parse_rfc3339)
            .is_none_or(|t| t < now);
        if str_prop(&old, "holder") != Some(holder) && !expired {
            return Ok(false);
        }
        // The ETag makes this a compare-and-set: of two contenders, one wins.
        match self.leases.write(&e, false, Some(&tag)).await {
            Ok(_) => Ok(true),
            Err(TableError::Precondition | TableError::NotFound) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        self.settings.get("s", "ping").await?;
        Ok(())
    }
}

#[async_trait]
impl CatalogStore for AzureStore {
    async fn replace_schemas(&self, schemas: &[Schema]) -> StoreResult<()> {
        let body = serde_json::to_string(schemas).map_err(corrupt)?;
        self.put_setting("catalog", &body).await
    }

    async fn list_schemas(&self) -> StoreResult<Vec<Schema>> {
        match self.get_setting("catalog").await? {
            None => Ok(Vec::new()),
            Some(b) => serde_json::from_str(&b).map_err(corrupt),
        }
    }

    async fn edit_schemas(
        &self,
        f: cloudo_core::store::SchemaEdit,
    ) -> StoreResult<Result<Vec<Schema>, String>> {
        let rk = safe_key("catalog");
        for _ in 0..CAS_TRIES {
            let current = self.settings.get("s", &rk).await?;
            let old: Vec<Schema> = match current.as_ref().and_then(|(e, _)| get_text(e, "value")) {
                None => Vec::new(),
                Some(b) => serde_json::from_str(&b).map_err(corrupt)?,
            };
            let new = match f(old) {
                Ok(new) => new,
                Err(why) => return Ok(Err(why)),
            };
            let mut e = Entity::new();
            e.insert("PartitionKey".into(), json!("s"));
            e.insert("RowKey".into(), json!(rk));
            e.insert("updated_at".into(), json!(time::rfc3339(time::now())));
            put_text(
                &mut e,
                "value",
                &serde_json::to_string(&new).map_err(corrupt)?,
            );
            let written = match &current {
                None => self.settings.insert(&e).await,
                Some((_, tag)) => self.settings.write(&e, false, Some(tag)).await,
            };
            match written {
                Ok(_) => return Ok(Ok(new)),
                Err(TableError::Precondition | TableError::Conflict(_) | TableError::NotFound) => {
                    continue;
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(StoreError::Unavailable(
            "the catalog: too many concurrent writers".into(),
        ))
    }
}
