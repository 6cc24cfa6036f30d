//! Executions in tables: keys, the document encoding, the status index, dedup claims,
//! and the execution half of the `Store` implementation.

use super::*;

pub(super) fn invert_hex(s: &str) -> String {
    s.chars()
        .map(|c| match c.to_digit(16) {
            Some(d) => char::from_digit(15 - d, 16).unwrap_or(c),
            None => c,
        })
        .collect()
}

/// `99999999 - YYYYMMDD` of a time: newer days sort first.
pub(super) fn inverted_day(t: Timestamp) -> String {
    let day: u32 = time::partition_key(t).parse().unwrap_or(0);
    format!("{:08}", 99_999_999 - day)
}

/// (PartitionKey, RowKey) of an execution; `None` for ids that are not UUIDv7.
pub(super) fn exec_keys(id: &ExecId) -> Option<(String, String)> {
    let uuid = uuid::Uuid::parse_str(id.as_str()).ok()?;
    let (secs, nanos) = uuid.get_timestamp()?.to_unix();
    let at = chrono::DateTime::from_timestamp(i64::try_from(secs).ok()?, nanos)?;
    Some((inverted_day(at), invert_hex(id.as_str())))
}

pub(super) fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl AzureStore {
    /// The entity of an execution (without loading chunks) and its ETag.
    pub(super) async fn load(
        &self,
        id: &ExecId,
    ) -> StoreResult<Option<(Entity, String, Execution)>> {
        let Some((pk, rk)) = exec_keys(id) else {
            return Ok(None);
        };
        match self.executions.get(&pk, &rk).await? {
            None => Ok(None),
            Some((e, tag)) => {
                let x = decode(&e)?;
                Ok(Some((e, tag, x)))
            }
        }
    }

    pub(super) async fn index(&self, status: Status, id: &ExecId) -> StoreResult<()> {
        let mut e = Entity::new();
        e.insert("PartitionKey".into(), json!(status.as_str()));
        e.insert("RowKey".into(), json!(id.as_str()));
        self.status.write(&e, false, None).await?;
        Ok(())
    }

    pub(super) async fn insert_execution(&self, n: &NewExecution) -> StoreResult<()> {
        let x = &n.execution;
        let (pk, rk) = exec_keys(&x.exec_id)
            .ok_or_else(|| corrupt(format!("execution id {} is not a UUIDv7", x.exec_id)))?;
        let mut doc = x.clone();
        doc.transitions = vec![Transition {
            from: None,
            to: x.status,
            at: x.requested_at,
            reason: n.reason.clone(),
        }];
        let mut e = Entity::new();
        e.insert("PartitionKey".into(), json!(pk));
        e.insert("RowKey".into(), json!(rk));
        self.put_big(&mut e, &x.exec_id, "body", x.request_body.as_deref())
            .await?;
        self.put_big(&mut e, &x.exec_id, "output", x.output.as_deref())
            .await?;
        encode(&mut e, &doc)?;
        self.index(x.status, &x.exec_id).await?;
        match self.executions.insert(&e).await {
            Ok(_) => Ok(()),
            Err(TableError::Conflict(_)) => Err(StoreError::Duplicate {
                exec_id: x.exec_id.clone(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Claims a dedup key: `None` when this caller may create, else the first creation's ids.
    pub(super) async fn claim(
        &self,
        d: &DedupKey,
        ids: &[&str],
    ) -> StoreResult<Option<Vec<ExecId>>> {
        let rk = sha256_hex(&d.key);
        let window = chrono::Duration::from_std(d.window).unwrap_or(chrono::Duration::days(365));
        for _ in 0..CAS_TRIES {
            let now = time::now();
            let mut e = Entity::new();
            e.insert("PartitionKey".into(), json!("d"));
            e.insert("RowKey".into(), json!(rk));
            e.insert(
                "ids".into(),
                json!(serde_json::to_string(ids).map_err(corrupt)?),
            );
            e.insert("created_at".into(), json!(time::rfc3339(now)));
            let (old, tag) = match self.dedup.insert(&e).await {
                Ok(_) => return Ok(None),
                Err(TableError::Conflict(_)) => match self.dedup.get("d", &rk).await? {
                    Some(found) => found,
                    None => continue,
                },
                Err(err) => return Err(err.into()),
            };
            let at = str_prop(&old, "created_at")
                .and_then(time::parse_rfc3339)
                .ok_or_else(|| corrupt("dedup row without created_at"))?;
            let first: Vec<String> =
                serde_json::from_str(str_prop(&old, "ids").unwrap_or("[]")).map_err(corrupt)?;
            let first: Vec<ExecId> = first.iter().filter_map(|i| ExecId::parse(i)).collect();
            let live = at > now - window;
            // A claimer that died before creating its executions must not swallow the key:
            // after a grace period, a claim whose first execution never appeared is void.
            let orphaned = live
                && at < now - chrono::Duration::seconds(30)
                && match first.first() {
                    Some(id) => self.load(id).await?.is_none(),
                    None => true,
                };
            if live && !orphaned {
                return Ok(Some(first));
            }
            match self.dedup.write(&e, false, Some(&tag)).await {
                Ok(_) => return Ok(None),
                Err(TableError::Precondition | TableError::NotFound) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(StoreError::Unavailable(
            "dedup claim kept conflicting".into(),
        ))
    }
}

/// Writes the execution document and its filterable properties into `e`.
pub(super) fn encode(e: &mut Entity, x: &Execution) -> StoreResult<()> {
    let mut doc = x.clone();
    let transitions = std::mem::take(&mut doc.transitions);
    doc.output = None;
    doc.request_body = None;
    put_text(e, "doc", &serde_json::to_string(&doc).map_err(corrupt)?);
    put_text(
        e,
        "transitions",
        &serde_json::to_string(&transitions).map_err(corrupt)?,
    );
    e.insert("exec_id".into(), json!(x.exec_id.as_str()));
    e.insert("status".into(), json!(x.status.as_str()));
    e.insert("schema_id".into(), json!(x.schema_id));
    Ok(())
}

/// The execution of an entity, without output and request body.
pub(super) fn decode(e: &Entity) -> StoreResult<Execution> {
    let doc = get_text(e, "doc").ok_or_else(|| corrupt("execution without doc"))?;
    let mut x: Execution = serde_json::from_str(&doc).map_err(corrupt)?;
    if let Some(t) = get_text(e, "transitions") {
        x.transitions = serde_json::from_str(&t).map_err(corrupt)?;
    }
    Ok(x)
}

pub(super) fn after_cursor(pk: &str, rk: &str) -> String {
    format!(
        "((PartitionKey eq {} and RowKey gt {}) or PartitionKey gt {})",
        quote(pk),
        quote(rk),
        quote(pk)
    )
}

pub(super) fn and(filters: &[String]) -> Option<String> {
    (!filters.is_empty()).then(|| filters.join(" and "))
}

/// One page of a newest-first listing: entities matching every filter, in key order, each
/// mapped by `keep` to an item and its cursor (or skipped), following continuations until
/// `limit` items and one more (to know whether there is a next page) are found.
pub(super) async fn newest_page<T>(
    table: &Table,
    filters: &[String],
    limit: usize,
    mut keep: impl FnMut(&Entity) -> StoreResult<Option<(T, String)>>,
) -> StoreResult<Page<T>> {
    let filter = and(filters);
    let query = Query {
        filter: filter.as_deref(),
        top: Some(limit + 1),
        select: None,
    };
    let mut items = Vec::new();
    let mut from = None;
    loop {
        let page = table.query_page(&query, from.as_ref()).await?;
        for (e, _) in &page.entities {
            if let Some(item) = keep(e)? {
                items.push(item);
            }
        }
        match page.next {
            Some(n) if items.len() <= limit => from = Some(n),
            _ => break,
        }
    }
    Ok(Page::overfetched(items, limit))
}

impl AzureStore {
    pub(super) async fn create_executions_inner(
        &self,
        batch: &[NewExecution],
        dedup: Option<&DedupKey>,
    ) -> StoreResult<Created> {
        cloudo_core::store::check_initial(batch)?;
        if let Some(d) = dedup {
            let ids: Vec<&str> = batch.iter().map(|n| n.execution.exec_id.as_str()).collect();
            if let Some(first) = self.claim(d, &ids).await? {
                return Ok(Created::Duplicate(first));
            }
        }
        for n in batch {
            self.insert_execution(n).await?;
        }
        Ok(Created::New)
    }
    pub(super) async fn purge_dedup_inner(&self, before: Timestamp) -> StoreResult<usize> {
        let filter = format!("created_at lt {}", quote(&time::rfc3339(before)));
        let rows = self.dedup.query_all(Some(&filter)).await?;
        let mut n = 0;
        for (e, tag) in rows {
            if let Some(rk) = str_prop(&e, "RowKey")
                && self
                    .dedup
                    .delete("d", rk, Some(&tag))
                    .await
                    .unwrap_or(false)
            {
                n += 1;
            }
        }
        Ok(n)
    }
    pub(super) async fn get_execution_inner(&self, id: &ExecId) -> StoreResult<Option<Execution>> {
        let Some((e, _, mut x)) = self.load(id).await? else {
            return Ok(None);
        };
        x.output = self.get_big(&e, "output").await?;
        x.request_body = self.get_big(&e, "body").await?;
        // One delivery's body is stored once, on its first execution.
        if let (None, Some(holder)) = (&x.request_body, &x.body_of)
            && let Some((h, _, _)) = self.load(holder).await?
        {
            x.request_body = self.get_big(&h, "body").await?;
        }
        Ok(Some(x))
    }
    pub(super) async fn list_executions_inner(
        &self,
        q: &ExecutionQuery,
    ) -> StoreResult<Page<Execution>> {
        let limit = q.limit.clamp(1, 1000);
        let mut filters = Vec::new();
        if let Some(c) = &q.cursor {
            let id = ExecId::parse(&invert_hex(c)).ok_or(StoreError::BadCursor)?;
            let (pk, rk) = exec_keys(&id).ok_or(StoreError::BadCursor)?;
            filters.push(after_cursor(&pk, &rk));
        }
        if let Some(s) = q.status {
            filters.push(format!("status eq {}", quote(s.as_str())));
        }
        if let Some(s) = &q.schema_id {
            filters.push(format!("schema_id eq {}", quote(s)));
        }
        newest_page(&self.executions, &filters, limit, |e| {
            let mut x = decode(e)?;
            x.transitions.clear();
            let cursor = str_prop(e, "RowKey").unwrap_or_default().to_string();
            Ok(Some((x, cursor)))
        })
        .await
    }
    pub(super) async fn transition_inner(
        &self,
        id: &ExecId,
        change: &StatusChange,
        at: Timestamp,
    ) -> StoreResult<Execution> {
        for _ in 0..CAS_TRIES {
            let Some((old, tag, mut x)) = self.load(id).await? else {
                return Err(StoreError::NotFound(id.clone()));
            };
            let from = x.status;
            let t = change.apply(&mut x, at)?;
            x.transitions.push(t);
            if x.status != from {
                self.index(x.status, id).await?;
            }
            let mut e = old.clone();
            if change.output.is_some() {
                self.put_big(&mut e, id, "output", x.output.as_deref())
                    .await?;
            }
            encode(&mut e, &x)?;
            match self.executions.write(&e, false, Some(&tag)).await {
                Ok(_) => {
                    if x.status != from {
                        // Best effort: a stale row left behind is repaired by readers.
                        let _ = self.status.delete(from.as_str(), id.as_str(), None).await;
                    }
                    if change.output.is_none() {
                        x.output = self.get_big(&e, "output").await?;
                    }
                    x.request_body = self.get_big(&e, "body").await?;
                    return Ok(x);
                }
                Err(TableError::Precondition) => continue,
                Err(TableError::NotFound) => return Err(StoreError::NotFound(id.clone())),
                Err(err) => return Err(err.into()),
            }
        }
        Err(StoreError::Unavailable(format!(
            "execution {id}: too many concurrent writers"
        )))
    }
    pub(super) async fn heartbeat_inner(
        &self,
        id: &ExecId,
        at: Timestamp,
        output: Option<&str>,
    ) -> StoreResult<bool> {
        for _ in 0..CAS_TRIES {
            let Some((mut e, tag, mut x)) = self.load(id).await? else {
                return Ok(false);
            };
            if x.status != Status::Running {
                return Ok(false);
            }
            if output.is_some() {
                self.put_big(&mut e, id, "output", output).await?;
            }
            x.heartbeat_at = Some(at);
            encode(&mut e, &x)?;
            match self.executions.write(&e, false, Some(&tag)).await {
                Ok(_) => return Ok(true),
                Err(TableError::Precondition) => continue,
                Err(TableError::NotFound) => return Ok(false),
                Err(err) => return Err(err.into()),
            }
        }
        Err(StoreError::Unavailable(format!(
            "execution {id}: too many concurrent writers"
        )))
    }
    pub(super) async fn executions_in_inner(
        &self,
        status: Status,
        limit: usize,
    ) -> StoreResult<Vec<Execution>> {
        let filter = format!("PartitionKey eq {}", quote(status.as_str()));
        let query = Query {
            filter: Some(&filter),
            top: Some(limit.clamp(1, 1000)),
            select: Some("RowKey"),
        };
        let mut out = Vec::new();
        let mut from = None;
        loop {
            let page = self.status.query_page(&query, from.as_ref()).await?;
            for (row, _) in page.entities {
                let Some(id) = str_prop(&row, "RowKey").and_then(ExecId::parse) else {
                    continue;
                };
                match self.load(&id).await? {
                    Some((_, _, mut x)) if x.status == status => {
                        x.transitions.clear();
                        out.push(x);
                    }
                    Some((_, _, x)) => {
                        // Stale row (a writer died between its steps): repair.
                        self.index(x.status, &id).await?;
                        self.status
                            .delete(status.as_str(), id.as_str(), None)
                            .await?;
                    }
                    None => {
                        self.status
                            .delete(status.as_str(), id.as_str(), None)
                            .await?;
                    }
                }
                if out.len() >= limit {
                    return Ok(out);
                }
            }
            match page.next {
                Some(n) => from = Some(n),
                None => return Ok(out),
            }
        }
    }
}
