//! [`AccessStore`] on tables: keys and audit records.

use super::*;

pub(super) fn key_entity(k: &ApiKey) -> Entity {
    let mut e = Entity::new();
    e.insert("PartitionKey".into(), json!("k"));
    e.insert("RowKey".into(), json!(safe_key(&k.name)));
    e.insert("name".into(), json!(k.name));
    e.insert("role".into(), json!(k.role.as_str()));
    e.insert("pool".into(), json!(k.pool));
    if !k.scope.is_all() {
        e.insert("scope".into(), json!(k.scope.selectors().join("\n")));
    }
    e.insert("hash".into(), json!(k.hash));
    e.insert("created_at".into(), json!(time::rfc3339(k.created_at)));
    e.insert("expires_at".into(), json!(k.expires_at.map(time::rfc3339)));
    e.insert(
        "last_used_at".into(),
        json!(k.last_used_at.map(time::rfc3339)),
    );
    e
}

pub(super) fn key_of(e: &Entity) -> StoreResult<ApiKey> {
    let s = |n: &str| {
        str_prop(e, n)
            .map(str::to_string)
            .ok_or_else(|| corrupt(format!("key without {n}")))
    };
    let t = |n: &str| str_prop(e, n).and_then(time::parse_rfc3339);
    Ok(ApiKey {
        name: s("name")?,
        role: s("role")?.parse::<Role>().map_err(corrupt)?,
        pool: str_prop(e, "pool").map(str::to_string),
        scope: match str_prop(e, "scope") {
            None => Default::default(),
            Some(list) => {
                cloudo_core::scope::Scope::parse(list.lines().map(str::to_string).collect())
                    .map_err(corrupt)?
            }
        },
        hash: s("hash")?,
        created_at: t("created_at").ok_or_else(|| corrupt("key without created_at"))?,
        expires_at: t("expires_at"),
        last_used_at: t("last_used_at"),
    })
}

#[async_trait]
impl AccessStore for AzureStore {
    async fn put_key(&self, key: &ApiKey, replace: bool) -> StoreResult<()> {
        let e = key_entity(key);
        if replace {
            self.keys.write(&e, false, None).await?;
            return Ok(());
        }
        match self.keys.insert(&e).await {
            Ok(_) => Ok(()),
            Err(TableError::Conflict(_)) => Err(StoreError::Conflict(format!(
                "a key named {:?} exists",
                key.name
            ))),
            Err(e) => Err(e.into()),
        }
    }

    async fn list_keys(&self) -> StoreResult<Vec<ApiKey>> {
        let rows = self.keys.query_all(None).await?;
        let mut keys = rows
            .iter()
            .map(|(e, _)| key_of(e))
            .collect::<StoreResult<Vec<_>>>()?;
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(keys)
    }

    async fn key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKey>> {
        let filter = format!("hash eq {}", quote(hash));
        let rows = self.keys.query_all(Some(&filter)).await?;
        rows.first().map(|(e, _)| key_of(e)).transpose()
    }

    async fn delete_key(&self, name: &str) -> StoreResult<bool> {
        Ok(self.keys.delete("k", &safe_key(name), None).await?)
    }

    async fn touch_key(&self, name: &str, at: Timestamp) -> StoreResult<()> {
        let mut e = Entity::new();
        e.insert("PartitionKey".into(), json!("k"));
        e.insert("RowKey".into(), json!(safe_key(name)));
        e.insert("last_used_at".into(), json!(time::rfc3339(at)));
        // Merge only into an existing key (`*`): a revoked key is not brought back.
        match self.keys.write(&e, true, Some("*")).await {
            Ok(_) | Err(TableError::NotFound) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn append_audit(&self, r: &AuditRecord) -> StoreResult<()> {
        let ms = r.at.timestamp_millis().max(0);
        let mut e = Entity::new();
        e.insert("PartitionKey".into(), json!(inverted_day(r.at)));
        e.insert(
            "RowKey".into(),
            json!(format!(
                "{:013}-{}",
                9_999_999_999_999_i64 - ms,
                invert_hex(&uuid::Uuid::now_v7().simple().to_string())
            )),
        );
        e.insert("actor".into(), json!(r.actor));
        e.insert("action".into(), json!(r.action));
        put_text(&mut e, "doc", &serde_json::to_string(r).map_err(corrupt)?);
        self.audit.insert(&e).await?;
        Ok(())
    }

    async fn list_audit(&self, q: &AuditQuery) -> StoreResult<Page<AuditRecord>> {
        let limit = q.limit.clamp(1, 1000);
        let mut filters = Vec::new();
        if let Some(c) = &q.cursor {
            let (pk, rk) = c.split_once('/').ok_or(StoreError::BadCursor)?;
            if pk.len() != 8 || !pk.bytes().all(|b| b.is_ascii_digit()) || rk.is_empty() {
                return Err(StoreError::BadCursor);
            }
            filters.push(after_cursor(pk, rk));
        }
        if let Some(a) = &q.actor {
            filters.push(format!("actor eq {}", quote(a)));
        }
        let items = newest_page(&self.audit, &filters, limit, |e| {
            let action = str_prop(e, "action").unwrap_or_default();
            if q.action.as_deref().is_some_and(|a| !action.starts_with(a)) {
                return Ok(None);
            }
            let cursor = format!(
                "{}/{}",
                str_prop(e, "PartitionKey").unwrap_or_default(),
                str_prop(e, "RowKey").unwrap_or_default()
            );
            let doc = get_text(e, "doc").ok_or_else(|| corrupt("audit without doc"))?;
            let r = serde_json::from_str::<AuditRecord>(&doc).map_err(corrupt)?;
            Ok(Some((r, cursor)))
        })
        .await?;
        Ok(items)
    }

    async fn append_audit_batch(&self, records: &[AuditRecord]) -> StoreResult<()> {
        for r in records {
            self.append_audit(r).await?;
        }
        Ok(())
    }
}
