//! Executions in tables: keys, the document encoding, the status index, dedup claims.

use super::*;

/// How long a dedup claim whose executions are not recorded yet is taken for a request
/// still writing them; past it, the claimer is taken for dead and the claim is void.
const CLAIM_GRACE: chrono::Duration = chrono::Duration::seconds(30);

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

    /// Claims a dedup key: `None` when this caller may create, else the first creation's ids
    /// (`Unavailable` while they are not recorded yet).
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
            if live {
                let recorded = match first.first() {
                    Some(id) => self.load(id).await?.is_some(),
                    None => true,
                };
                if recorded {
                    return Ok(Some(first));
                }
                // Claimed, not recorded: the claimer is still writing, or died first. Not a
                // duplicate to answer yet (that answer would name nothing, and the sender
                // would not retry): the sender is asked to come back; after the grace
                // period the claim is void and the next copy records.
                if at > now - CLAIM_GRACE {
                    return Err(StoreError::Unavailable(
                        "the same delivery is being recorded by another request; retry".into(),
                    ));
                }
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
