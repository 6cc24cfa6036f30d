//! Keys, audit records, settings, workers, leases and notifications in tables: the
//! `Store` methods around executions.

use super::*;

pub(super) fn key_entity(k: &ApiKey) -> Entity {
    let mut e = Entity::new();
    e.insert("PartitionKey".into(), json!("k"));
    e.insert("RowKey".into(), json!(safe_key(&k.name)));
    e.insert("name".into(), json!(k.name));
    e.insert("role".into(), json!(k.role.as_str()));
    e.insert("pool".into(), json!(k.pool));
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
        hash: s("hash")?,
        created_at: t("created_at").ok_or_else(|| corrupt("key without created_at"))?,
        expires_at: t("expires_at"),
        last_used_at: t("last_used_at"),
    })
}

impl AzureStore {
    /// Notifications of `table` matching `filter`, in id (creation) order.
    pub(super) async fn notifications_where(
        &self,
        table: &Table,
        filter: &str,
    ) -> StoreResult<Vec<Notification>> {
        table
            .query_all(Some(filter))
            .await?
            .iter()
            .map(|(e, _)| {
                let doc = get_text(e, "doc").ok_or_else(|| corrupt("notification without doc"))?;
                serde_json::from_str(&doc).map_err(corrupt)
            })
            .collect()
    }
}

impl AzureStore {
    pub(super) async fn put_key_inner(&self, key: &ApiKey, replace: bool) -> StoreResult<()> {
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
    pub(super) async fn list_keys_inner(&self) -> StoreResult<Vec<ApiKey>> {
        let rows = self.keys.query_all(None).await?;
        let mut keys = rows
            .iter()
            .map(|(e, _)| key_of(e))
            .collect::<StoreResult<Vec<_>>>()?;
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(keys)
    }
    pub(super) async fn key_by_hash_inner(&self, hash: &str) -> StoreResult<Option<ApiKey>> {
        let filter = format!("hash eq {}", quote(hash));
        let rows = self.keys.query_all(Some(&filter)).await?;
        rows.first().map(|(e, _)| key_of(e)).transpose()
    }
    pub(super) async fn delete_key_inner(&self, name: &str) -> StoreResult<bool> {
        Ok(self.keys.delete("k", &safe_key(name), None).await?)
    }
    pub(super) async fn touch_key_inner(&self, name: &str, at: Timestamp) -> StoreResult<()> {
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
    pub(super) async fn append_audit_inner(&self, r: &AuditRecord) -> StoreResult<()> {
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
    pub(super) async fn list_audit_inner(&self, q: &AuditQuery) -> StoreResult<Page<AuditRecord>> {
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
    pub(super) async fn get_setting_inner(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(self
            .settings
            .get("s", &safe_key(key))
            .await?
            .and_then(|(e, _)| get_text(&e, "value")))
    }
    pub(super) async fn put_setting_inner(&self, key: &str, value: &str) -> StoreResult<()> {
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
    pub(super) async fn add_notifications_inner(&self, n: &[Notification]) -> StoreResult<()> {
        for one in n {
            self.update_notification(one).await?;
        }
        Ok(())
    }
    pub(super) async fn update_notification_inner(&self, n: &Notification) -> StoreResult<()> {
        let mut e = Entity::new();
        e.insert("PartitionKey".into(), json!(n.exec_id.as_str()));
        e.insert("RowKey".into(), json!(n.id));
        put_text(&mut e, "doc", &serde_json::to_string(n).map_err(corrupt)?);
        self.notifications.write(&e, false, None).await?;
        e.insert("PartitionKey".into(), json!("o"));
        if matches!(n.state, Delivery::Held | Delivery::Pending) {
            self.outbox.write(&e, false, None).await?;
        } else {
            self.outbox.delete("o", &n.id, None).await?;
        }
        Ok(())
    }
    pub(super) async fn open_notifications_inner(
        &self,
        limit: usize,
    ) -> StoreResult<Vec<Notification>> {
        let mut out = self
            .notifications_where(&self.outbox, "PartitionKey eq 'o'")
            .await?;
        out.truncate(limit);
        Ok(out)
    }
    pub(super) async fn notifications_for_inner(
        &self,
        id: &ExecId,
    ) -> StoreResult<Vec<Notification>> {
        let filter = format!("PartitionKey eq {}", quote(id.as_str()));
        self.notifications_where(&self.notifications, &filter).await
    }
    pub(super) async fn put_worker_inner(&self, w: &WorkerInfo) -> StoreResult<()> {
        let mut e = Entity::new();
        e.insert("PartitionKey".into(), json!("w"));
        e.insert("RowKey".into(), json!(safe_key(&w.id)));
        e.insert("last_seen".into(), json!(time::rfc3339(w.last_seen)));
        put_text(&mut e, "doc", &serde_json::to_string(w).map_err(corrupt)?);
        self.workers.write(&e, false, None).await?;
        Ok(())
    }
    pub(super) async fn list_workers_inner(
        &self,
        since: Timestamp,
    ) -> StoreResult<Vec<WorkerInfo>> {
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
    pub(super) async fn try_lease_inner(
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
}
