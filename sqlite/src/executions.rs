//! [`ExecutionStore`] on SQLite.

use async_trait::async_trait;
use rusqlite::params;

use crate::rows::{
    LIST_COLUMNS, append_transition, create_all, create_in, load, parse_status, row_to_execution,
};
use crate::store::{SqliteStore, db_err, parse_time, ts};
use cloudo_core::execution::{ExecId, Execution, Status, StatusChange, Transition};
use cloudo_core::store::{
    Batch, Created, DedupKey, ExecutionQuery, ExecutionStore, NewExecution, Page, StoreError,
    StoreResult,
};
use cloudo_core::time::{self, Timestamp};

#[async_trait]
impl ExecutionStore for SqliteStore {
    async fn create_executions(
        &self,
        batch: &[NewExecution],
        dedup: Option<&DedupKey>,
    ) -> StoreResult<Created> {
        cloudo_core::store::check_initial(batch)?;
        let batch = batch.to_vec();
        let dedup = dedup.cloned();
        self.db
            .write(move |tx| create_in(tx, &batch, dedup.as_ref()))
            .await
    }

    /// One transaction for the whole delivery.
    async fn create_batches(
        &self,
        batches: &[Batch],
        body: Option<&str>,
    ) -> StoreResult<Vec<Created>> {
        for b in batches {
            cloudo_core::store::check_initial(&b.executions)?;
        }
        let batches = batches.to_vec();
        let body = body.map(str::to_string);
        self.db
            .write(move |tx| create_all(tx, batches.iter(), body.as_deref()))
            .await
    }

    async fn purge_dedup(&self, before: Timestamp) -> StoreResult<usize> {
        self.db
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM dedup WHERE created_at < ?1",
                    [before.timestamp_millis()],
                )
                .map_err(db_err)
            })
            .await
    }

    async fn get_execution(&self, id: &ExecId) -> StoreResult<Option<Execution>> {
        let id = id.clone();
        self.db
            .read_now(move |c| {
                let Some(mut e) = load(c, id.as_str())? else {
                    return Ok(None);
                };
                let mut stmt = c
                    .prepare_cached(
                        "SELECT from_status, to_status, at, reason FROM transitions
                         WHERE exec_id = ?1 ORDER BY n",
                    )
                    .map_err(db_err)?;
                let rows = stmt
                    .query_map([id.as_str()], |r| {
                        Ok((
                            r.get::<_, Option<String>>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Option<String>>(3)?,
                        ))
                    })
                    .map_err(db_err)?;
                for row in rows {
                    let (from, to, at, reason) = row.map_err(db_err)?;
                    e.transitions.push(Transition {
                        from: from.as_deref().map(parse_status).transpose()?,
                        to: parse_status(&to)?,
                        at: parse_time(Some(at))?
                            .ok_or_else(|| StoreError::Corrupt("no transition time".into()))?,
                        reason,
                    });
                }
                Ok(Some(e))
            })
            .await
    }

    async fn list_executions(&self, q: &ExecutionQuery) -> StoreResult<Page<Execution>> {
        let limit = q.limit.clamp(1, 1000);
        let (sql, args) = list_sql(q, limit)?;
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(&sql).map_err(db_err)?;
                let mut rows = stmt
                    .query(rusqlite::params_from_iter(args))
                    .map_err(db_err)?;
                let mut items = Vec::with_capacity(limit + 1);
                while let Some(r) = rows.next().map_err(db_err)? {
                    let (e, seq) = row_to_execution(r)?;
                    let cursor = format!("{seq}_{}", time::rfc3339(e.requested_at));
                    items.push((e, cursor));
                }
                Ok(Page::overfetched(items, limit))
            })
            .await
    }

    async fn transition(
        &self,
        id: &ExecId,
        change: &StatusChange,
        at: Timestamp,
    ) -> StoreResult<Execution> {
        let id = id.clone();
        let change = change.clone();
        self.db
            .write(move |tx| transition_in(tx, &id, &change, at))
            .await
    }

    async fn set_verification(
        &self,
        id: &ExecId,
        v: &cloudo_core::verify::Verification,
    ) -> StoreResult<()> {
        let (id, v) = (id.clone(), v.clone());
        self.db
            .write(move |tx| {
                let Some(mut e) = load(tx, id.as_str())? else {
                    return Err(StoreError::NotFound(id));
                };
                e.verification = Some(v);
                tx.execute(
                    "UPDATE executions SET extra = ?2 WHERE exec_id = ?1",
                    params![id.as_str(), crate::rows::Extra::of(&e)?],
                )
                .map_err(db_err)?;
                Ok(())
            })
            .await
    }

    async fn heartbeat(&self, id: &ExecId, at: Timestamp) -> StoreResult<bool> {
        let id = id.clone();
        self.db
            .write(move |tx| {
                let n = tx
                    .prepare_cached(
                        "UPDATE executions SET heartbeat_at = ?2
                         WHERE exec_id = ?1 AND status = 'running'",
                    )
                    .and_then(|mut s| s.execute(params![id.as_str(), time::rfc3339(at)]))
                    .map_err(db_err)?;
                Ok(n == 1)
            })
            .await
    }

    async fn executions_in(&self, status: Status, limit: usize) -> StoreResult<Vec<Execution>> {
        self.db
            .read(move |c| {
                let sql = format!(
                    "SELECT {LIST_COLUMNS} FROM executions WHERE status = ?1
                     ORDER BY requested_at, seq LIMIT ?2"
                );
                let mut stmt = c.prepare_cached(&sql).map_err(db_err)?;
                let mut rows = stmt
                    .query(params![status.as_str(), limit as i64])
                    .map_err(db_err)?;
                let mut out = Vec::new();
                while let Some(r) = rows.next().map_err(db_err)? {
                    out.push(row_to_execution(r)?.0);
                }
                Ok(out)
            })
            .await
    }
}

/// The statement of one listing and its arguments. Newest first by request time; each
/// filter is an equality or a range on an index that ends in (requested_at, seq), so a
/// page costs the same with a thousand executions stored or a million. The cursor is the
/// last item's `<seq>_<requested_at>`.
fn list_sql(
    q: &ExecutionQuery,
    limit: usize,
) -> StoreResult<(String, Vec<rusqlite::types::Value>)> {
    use rusqlite::types::Value;
    let mut sql = format!("SELECT {LIST_COLUMNS} FROM executions WHERE 1");
    let mut args = Vec::new();
    let mut clause = |cond: &str, v: Value| {
        sql.push_str(" AND ");
        sql.push_str(cond);
        args.push(v);
    };
    if let Some(st) = q.status {
        clause("status = ?", Value::Text(st.as_str().into()));
    }
    if let Some(schema) = &q.schema_id {
        clause("schema_id = ?", Value::Text(schema.clone()));
    }
    if let Some(who) = &q.initiator {
        clause("initiator = ?", Value::Text(who.clone()));
    }
    if let Some(t) = q.since {
        clause("requested_at >= ?", Value::Text(time::rfc3339(t)));
    }
    if let Some(t) = q.until {
        clause("requested_at < ?", Value::Text(time::rfc3339(t)));
    }
    if let Some(c) = &q.cursor {
        let (seq, at) = c.split_once('_').ok_or(StoreError::BadCursor)?;
        let seq = seq.parse::<i64>().map_err(|_| StoreError::BadCursor)?;
        let at = time::parse_rfc3339(at).ok_or(StoreError::BadCursor)?;
        clause(
            "(requested_at, seq) < (?, ?)",
            Value::Text(time::rfc3339(at)),
        );
        args.push(Value::Integer(seq));
    }
    sql.push_str(" ORDER BY requested_at DESC, seq DESC LIMIT ?");
    args.push(Value::Integer((limit + 1) as i64));
    Ok((sql, args))
}

/// [`ExecutionStore::transition`] inside the transaction `tx` (also [`cloudo_core::store::Intake`]'s).
pub(crate) fn transition_in(
    tx: &rusqlite::Transaction<'_>,
    id: &ExecId,
    change: &StatusChange,
    at: Timestamp,
) -> StoreResult<Execution> {
    let mut e = load(tx, id.as_str())?.ok_or_else(|| StoreError::NotFound(id.clone()))?;
    let from = e.status;
    let t = change.apply(&mut e, at)?;
    let n = tx
        .prepare_cached(
            "UPDATE executions SET status = ?2, started_at = ?3, finished_at = ?4,
               exit_code = ?5, signal = ?6, error = ?7, output = ?8,
               output_truncated = ?9, worker_id = ?10, heartbeat_at = ?11,
               runbook_commit = ?13, sandbox = ?14, oom = ?15
             WHERE exec_id = ?1 AND status = ?12",
        )
        .and_then(|mut s| {
            s.execute(params![
                id.as_str(),
                e.status.as_str(),
                ts(e.started_at),
                ts(e.finished_at),
                e.exit_code,
                e.signal,
                e.error,
                e.output,
                e.output_truncated,
                e.worker_id,
                ts(e.heartbeat_at),
                from.as_str(),
                e.runbook_commit,
                e.sandbox,
                e.oom,
            ])
        })
        .map_err(db_err)?;
    if n != 1 {
        return Err(StoreError::Unavailable(format!(
            "execution {id} changed while being updated"
        )));
    }
    append_transition(tx, id.as_str(), &t)?;
    Ok(e)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every combination of filters reads an index in listing order: no scan of the table
    /// and no sort, so a page costs the same whatever is stored.
    #[test]
    fn every_listing_reads_an_index_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        drop(crate::Db::open(&path, crate::Durability::Process).unwrap());
        let c = rusqlite::Connection::open(&path).unwrap();
        let now = time::now();
        for mask in 0..64u32 {
            let on = |bit: u32| mask & (1 << bit) != 0;
            let q = ExecutionQuery {
                status: on(0).then_some(Status::Failed),
                schema_id: on(1).then(|| "s".to_string()),
                initiator: on(2).then(|| "alert".to_string()),
                since: on(3).then_some(now),
                until: on(4).then_some(now),
                cursor: on(5).then(|| format!("7_{}", time::rfc3339(now))),
                limit: 50,
            };
            let (sql, args) = list_sql(&q, 50).unwrap();
            let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let plan = plan.join(" | ");
            assert!(plan.contains("USING INDEX"), "{q:?}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{q:?}: {plan}");
        }
    }
}
