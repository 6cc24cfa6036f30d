//! [`Store`] on SQLite.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};

use crate::{Db, DbError};
use cloudo_core::auth::{ApiKey, AuditRecord};
use cloudo_core::execution::{ExecId, Execution, Status, StatusChange, Transition};
use cloudo_core::notify::Notification;
use cloudo_core::schema::Schema;
use cloudo_core::store::{
    AuditQuery, Batch, Created, DedupKey, ExecutionQuery, NewExecution, Page, Store, StoreError,
    StoreResult, WorkerInfo, share_body,
};
use cloudo_core::time::{self, Timestamp};

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        StoreError::Unavailable(e.0)
    }
}

pub(super) fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// The embedded store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) db: Db,
}

impl SqliteStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

const COLUMNS: &str = "exec_id, partition_key, schema_id, name, status, initiator, runbook, \
    run_args, worker, oncall, team, timeout_secs, requested_at, started_at, finished_at, \
    exit_code, signal, error, output, output_truncated, worker_id, heartbeat_at, request_body, seq, \
    runbook_ref, runbook_commit, runtime, sandbox, oom, secrets, env, retry_on_lost, body_of";

/// Listings leave the two big columns out.
const LIST_COLUMNS: &str = "exec_id, partition_key, schema_id, name, status, initiator, runbook, \
    run_args, worker, oncall, team, timeout_secs, requested_at, started_at, finished_at, \
    exit_code, signal, error, NULL, output_truncated, worker_id, heartbeat_at, NULL, seq, \
    runbook_ref, runbook_commit, runtime, sandbox, oom, secrets, env, retry_on_lost, body_of";

pub(super) fn parse_time(s: Option<String>) -> Result<Option<Timestamp>, StoreError> {
    s.map(|s| time::parse_rfc3339(&s).ok_or_else(|| StoreError::Corrupt(format!("bad time {s:?}"))))
        .transpose()
}

fn parse_status(s: &str) -> Result<Status, StoreError> {
    s.parse().map_err(|e| StoreError::Corrupt(format!("{e}")))
}

/// Reads a row selected with [`COLUMNS`] or [`LIST_COLUMNS`]; returns it with its `seq`.
fn row_to_execution(r: &Row<'_>) -> Result<(Execution, i64), StoreError> {
    let get_s = |i: usize| r.get::<_, String>(i).map_err(db_err);
    let get_os = |i: usize| r.get::<_, Option<String>>(i).map_err(db_err);
    let exec_id = get_s(0)?;
    let e = Execution {
        exec_id: ExecId::parse(&exec_id)
            .ok_or_else(|| StoreError::Corrupt(format!("bad exec id {exec_id:?}")))?,
        partition_key: get_s(1)?,
        schema_id: get_s(2)?,
        name: get_s(3)?,
        status: parse_status(&get_s(4)?)?,
        initiator: get_s(5)?,
        runbook: get_s(6)?,
        runbook_ref: get_os(24)?,
        runbook_commit: get_os(25)?,
        run_args: get_s(7)?,
        runtime: match get_os(26)? {
            None => Default::default(),
            Some(j) => serde_json::from_str(&j).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        },
        sandbox: get_os(27)?,
        oom: r.get::<_, bool>(28).map_err(db_err)?,
        secrets: match get_os(29)? {
            None => Vec::new(),
            Some(j) => serde_json::from_str(&j).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        },
        worker: get_s(8)?,
        oncall: r.get::<_, bool>(9).map_err(db_err)?,
        team: get_os(10)?,
        timeout_secs: r.get::<_, i64>(11).map_err(db_err)?.max(0) as u64,
        requested_at: parse_time(Some(get_s(12)?))?
            .ok_or_else(|| StoreError::Corrupt("no requested_at".into()))?,
        started_at: parse_time(get_os(13)?)?,
        finished_at: parse_time(get_os(14)?)?,
        exit_code: r.get(15).map_err(db_err)?,
        signal: r.get(16).map_err(db_err)?,
        error: get_os(17)?,
        output: get_os(18)?,
        output_truncated: r.get::<_, bool>(19).map_err(db_err)?,
        worker_id: get_os(20)?,
        heartbeat_at: parse_time(get_os(21)?)?,
        request_body: get_os(22)?,
        env: match get_os(30)? {
            None => Default::default(),
            Some(j) => serde_json::from_str(&j).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        },
        retry_on_lost: r.get::<_, u32>(31).map_err(db_err)?,
        body_of: get_os(32)?.and_then(|id| ExecId::parse(&id)),
        transitions: Vec::new(),
    };
    Ok((e, r.get(23).map_err(db_err)?))
}

fn load(tx: &rusqlite::Connection, id: &str) -> Result<Option<Execution>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM executions WHERE exec_id = ?1");
    let mut stmt = tx.prepare_cached(&sql).map_err(db_err)?;
    let mut rows = stmt.query([id]).map_err(db_err)?;
    let Some(mut e) = rows
        .next()
        .map_err(db_err)?
        .map(row_to_execution)
        .transpose()?
        .map(|x| x.0)
    else {
        return Ok(None);
    };
    if let (None, Some(holder)) = (&e.request_body, &e.body_of) {
        e.request_body = tx
            .prepare_cached("SELECT request_body FROM executions WHERE exec_id = ?1")
            .and_then(|mut s| s.query_row([holder.as_str()], |r| r.get(0)).optional())
            .map_err(db_err)?
            .flatten();
    }
    Ok(Some(e))
}

fn append_transition(tx: &rusqlite::Connection, id: &str, t: &Transition) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO transitions (exec_id, n, from_status, to_status, at, reason)
         VALUES (?1, (SELECT COUNT(*) FROM transitions WHERE exec_id = ?1), ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            id,
            t.from.map(Status::as_str),
            t.to.as_str(),
            time::rfc3339(t.at),
            t.reason
        ])
    })
    .map_err(db_err)?;
    Ok(())
}

fn insert_execution(
    tx: &rusqlite::Connection,
    e: &Execution,
    reason: Option<&str>,
) -> StoreResult<()> {
    let runtime =
        serde_json::to_string(&e.runtime).map_err(|err| StoreError::Corrupt(err.to_string()))?;
    let env = (!e.env.is_empty())
        .then(|| serde_json::to_string(&e.env))
        .transpose()
        .map_err(|err| StoreError::Corrupt(err.to_string()))?;
    let secrets = (!e.secrets.is_empty())
        .then(|| serde_json::to_string(&e.secrets))
        .transpose()
        .map_err(|err| StoreError::Corrupt(err.to_string()))?;
    let inserted = tx
        .prepare_cached(
            "INSERT INTO executions (exec_id, partition_key, schema_id, name, status,
               initiator, runbook, run_args, worker, oncall, team, timeout_secs,
               requested_at, finished_at, error, request_body, runbook_ref, runtime, secrets,
               env, retry_on_lost, body_of)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
               ?20, ?21, ?22)
             ON CONFLICT (exec_id) DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                e.exec_id.as_str(),
                e.partition_key,
                e.schema_id,
                e.name,
                e.status.as_str(),
                e.initiator,
                e.runbook,
                e.run_args,
                e.worker,
                e.oncall,
                e.team,
                e.timeout_secs as i64,
                time::rfc3339(e.requested_at),
                ts(e.finished_at),
                e.error,
                e.request_body,
                e.runbook_ref,
                runtime,
                secrets,
                env,
                e.retry_on_lost,
                e.body_of.as_ref().map(ExecId::as_str),
            ])
        })
        .map_err(db_err)?;
    if inserted == 0 {
        return Err(StoreError::Duplicate {
            exec_id: e.exec_id.clone(),
        });
    }
    let first = Transition {
        from: None,
        to: e.status,
        at: e.requested_at,
        reason: reason.map(str::to_string),
    };
    append_transition(tx, e.exec_id.as_str(), &first)
}

/// Creates one batch (unless its dedup key was seen within its window) in `tx`.
fn create_in(
    tx: &rusqlite::Connection,
    batch: &[NewExecution],
    dedup: Option<&DedupKey>,
) -> StoreResult<Created> {
    if let Some(d) = dedup {
        let now = time::now().timestamp_millis();
        let window = i64::try_from(d.window.as_millis()).unwrap_or(i64::MAX / 2);
        let seen: Option<(String, i64)> = tx
            .prepare_cached("SELECT exec_ids, created_at FROM dedup WHERE key = ?1")
            .and_then(|mut s| {
                s.query_row([&d.key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(db_err)?;
        if let Some((ids, at)) = seen
            && at > now - window
        {
            let ids: Vec<String> =
                serde_json::from_str(&ids).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            return Ok(Created::Duplicate(
                ids.iter().filter_map(|i| ExecId::parse(i)).collect(),
            ));
        }
        let ids: Vec<&str> = batch.iter().map(|n| n.execution.exec_id.as_str()).collect();
        let ids = serde_json::to_string(&ids).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        tx.prepare_cached(
            "INSERT OR REPLACE INTO dedup (key, exec_ids, created_at) VALUES (?1, ?2, ?3)",
        )
        .and_then(|mut s| s.execute(params![d.key, ids, now]))
        .map_err(db_err)?;
    }
    for n in batch {
        insert_execution(tx, &n.execution, n.reason.as_deref())?;
    }
    Ok(Created::New)
}

/// The rows of a query selecting one JSON column, deserialised.
pub(super) fn json_rows<T: serde::de::DeserializeOwned>(
    c: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<T>> {
    let mut stmt = c.prepare_cached(sql).map_err(db_err)?;
    let docs = stmt
        .query_map(params, |r| r.get::<_, String>(0))
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    docs.iter()
        .map(|d| serde_json::from_str(d).map_err(|e| StoreError::Corrupt(e.to_string())))
        .collect()
}

pub(super) fn ts(t: Option<Timestamp>) -> Option<String> {
    t.map(time::rfc3339)
}

#[async_trait]
impl Store for SqliteStore {
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
            .write(move |tx| {
                let mut holder: Option<ExecId> = None;
                let mut out = Vec::with_capacity(batches.len());
                for b in &batches {
                    let batch = share_body(&b.executions, body.as_deref(), holder.as_ref());
                    let created = create_in(tx, &batch, b.dedup.as_ref())?;
                    if created == Created::New && holder.is_none() && body.is_some() {
                        holder = batch.first().map(|n| n.execution.exec_id.clone());
                    }
                    out.push(created);
                }
                Ok(out)
            })
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

    async fn put_key(&self, key: &ApiKey, replace: bool) -> StoreResult<()> {
        self.put_key_inner(key, replace).await
    }

    async fn list_keys(&self) -> StoreResult<Vec<ApiKey>> {
        self.list_keys_inner().await
    }

    async fn key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKey>> {
        self.key_by_hash_inner(hash).await
    }

    async fn delete_key(&self, name: &str) -> StoreResult<bool> {
        self.delete_key_inner(name).await
    }

    async fn touch_key(&self, name: &str, at: Timestamp) -> StoreResult<()> {
        self.touch_key_inner(name, at).await
    }

    async fn append_audit(&self, r: &AuditRecord) -> StoreResult<()> {
        self.append_audit_inner(std::slice::from_ref(r)).await
    }

    async fn append_audit_batch(&self, records: &[AuditRecord]) -> StoreResult<()> {
        self.append_audit_inner(records).await
    }

    async fn list_audit(&self, q: &AuditQuery) -> StoreResult<Page<AuditRecord>> {
        self.list_audit_inner(q).await
    }

    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        self.get_setting_inner(key).await
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        self.put_setting_inner(key, value).await
    }

    async fn get_execution(&self, id: &ExecId) -> StoreResult<Option<Execution>> {
        let id = id.clone();
        self.db
            .read(move |c| {
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
        let before = match &q.cursor {
            None => i64::MAX,
            Some(c) => c.parse::<i64>().map_err(|_| StoreError::BadCursor)?,
        };
        let limit = q.limit.clamp(1, 1000);
        let status = q.status.map(|s| s.as_str().to_string());
        let schema_id = q.schema_id.clone();
        self.db
            .read(move |c| {
                let sql = format!(
                    "SELECT {LIST_COLUMNS} FROM executions
                     WHERE seq < ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR schema_id = ?3)
                     ORDER BY seq DESC LIMIT ?4"
                );
                let mut stmt = c.prepare_cached(&sql).map_err(db_err)?;
                let mut rows = stmt
                    .query(params![before, status, schema_id, (limit + 1) as i64])
                    .map_err(db_err)?;
                let mut items = Vec::with_capacity(limit + 1);
                while let Some(r) = rows.next().map_err(db_err)? {
                    items.push(row_to_execution(r)?);
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
            .write(move |tx| {
                let mut e =
                    load(tx, id.as_str())?.ok_or_else(|| StoreError::NotFound(id.clone()))?;
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
            })
            .await
    }

    async fn heartbeat(
        &self,
        id: &ExecId,
        at: Timestamp,
        output: Option<&str>,
    ) -> StoreResult<bool> {
        let id = id.clone();
        let output = output.map(str::to_string);
        self.db
            .write(move |tx| {
                let n = tx
                    .prepare_cached(
                        "UPDATE executions SET heartbeat_at = ?2, output = COALESCE(?3, output)
                         WHERE exec_id = ?1 AND status = 'running'",
                    )
                    .and_then(|mut s| s.execute(params![id.as_str(), time::rfc3339(at), output]))
                    .map_err(db_err)?;
                Ok(n == 1)
            })
            .await
    }

    async fn executions_in(&self, status: Status, limit: usize) -> StoreResult<Vec<Execution>> {
        self.db
            .read(move |c| {
                let sql = format!(
                    "SELECT {LIST_COLUMNS} FROM executions WHERE status = ?1 ORDER BY seq LIMIT ?2"
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

    async fn add_notifications(&self, n: &[Notification]) -> StoreResult<()> {
        self.add_notifications_inner(n).await
    }

    async fn update_notification(&self, n: &Notification) -> StoreResult<()> {
        self.update_notification_inner(n).await
    }

    async fn open_notifications(&self, limit: usize) -> StoreResult<Vec<Notification>> {
        self.open_notifications_inner(limit).await
    }

    async fn notifications_for(&self, id: &ExecId) -> StoreResult<Vec<Notification>> {
        self.notifications_for_inner(id).await
    }

    async fn put_worker(&self, w: &WorkerInfo) -> StoreResult<()> {
        self.put_worker_inner(w).await
    }

    async fn list_workers(&self, since: Timestamp) -> StoreResult<Vec<WorkerInfo>> {
        self.list_workers_inner(since).await
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.try_lease_inner(name, holder, ttl, now).await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.db
            .read(|c| {
                c.query_row("SELECT 1", [], |_| Ok(()))
                    .optional()
                    .map_err(db_err)?;
                Ok(())
            })
            .await
    }
}
