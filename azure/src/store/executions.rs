//! [`ExecutionStore`] on tables.

use super::*;

impl AzureStore {
    /// The request body of `x` (entity `e`): its own, or the one of the execution that holds
    /// its delivery's body (stored once, on the delivery's first execution).
    async fn body_of(&self, e: &Entity, x: &Execution) -> StoreResult<Option<String>> {
        let own = self.get_big(e, "body").await?;
        if let (None, Some(holder)) = (&own, &x.body_of)
            && let Some((h, _, _)) = self.load(holder).await?
        {
            return self.get_big(&h, "body").await;
        }
        Ok(own)
    }
}

#[async_trait]
impl ExecutionStore for AzureStore {
    async fn create_executions(
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

    async fn purge_dedup(&self, before: Timestamp) -> StoreResult<usize> {
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

    async fn get_execution(&self, id: &ExecId) -> StoreResult<Option<Execution>> {
        let Some((e, _, mut x)) = self.load(id).await? else {
            return Ok(None);
        };
        x.output = self.get_big(&e, "output").await?;
        x.request_body = self.body_of(&e, &x).await?;
        Ok(Some(x))
    }

    async fn list_executions(&self, q: &ExecutionQuery) -> StoreResult<Page<Execution>> {
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
        // Rows carry no separate initiator or time columns: those filters are applied to
        // the rows read (a listing in key order is newest first anyway).
        let initiator = q.initiator.clone();
        let (since, until) = (q.since, q.until);
        newest_page(&self.executions, &filters, limit, |e| {
            let mut x = decode(e)?;
            if initiator.as_ref().is_some_and(|i| *i != x.initiator)
                || since.is_some_and(|t| x.requested_at < t)
                || until.is_some_and(|t| x.requested_at >= t)
            {
                return Ok(None);
            }
            x.transitions.clear();
            let cursor = str_prop(e, "RowKey").unwrap_or_default().to_string();
            Ok(Some((x, cursor)))
        })
        .await
    }

    async fn transition(
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
                    x.request_body = self.body_of(&e, &x).await?;
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

    async fn set_verification(
        &self,
        id: &ExecId,
        v: &cloudo_core::verify::Verification,
    ) -> StoreResult<()> {
        for _ in 0..CAS_TRIES {
            let Some((mut e, tag, mut x)) = self.load(id).await? else {
                return Err(StoreError::NotFound(id.clone()));
            };
            x.verification = Some(v.clone());
            encode(&mut e, &x)?;
            match self.executions.write(&e, false, Some(&tag)).await {
                Ok(_) => return Ok(()),
                Err(TableError::Precondition) => continue,
                Err(TableError::NotFound) => return Err(StoreError::NotFound(id.clone())),
                Err(err) => return Err(err.into()),
            }
        }
        Err(StoreError::Unavailable(format!(
            "execution {id}: too many concurrent writers"
        )))
    }

    async fn heartbeat(&self, id: &ExecId, at: Timestamp) -> StoreResult<bool> {
        for _ in 0..CAS_TRIES {
            let Some((mut e, tag, mut x)) = self.load(id).await? else {
                return Ok(false);
            };
            if x.status != Status::Running {
                return Ok(false);
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

    async fn executions_in(&self, status: Status, limit: usize) -> StoreResult<Vec<Execution>> {
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
