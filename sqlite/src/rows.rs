//! Execution rows: the columns, reading and inserting them, transitions, and creating a
//! batch under its dedup key (shared by the one- and many-batch creations).

use rusqlite::{OptionalExtension, Row, params};

use crate::store::{db_err, parse_time, ts};
use cloudo_core::execution::{ExecId, Execution, Status, Transition};
use cloudo_core::policy::RunLimits;
use cloudo_core::store::{
    Batch, BodyHolder, Created, DedupKey, NewExecution, StoreError, StoreResult,
};
use cloudo_core::time;

pub(crate) const COLUMNS: &str = "exec_id, partition_key, schema_id, name, status, initiator, runbook, \
    run_args, worker, oncall, team, timeout_secs, requested_at, started_at, finished_at, \
    exit_code, signal, error, output, output_truncated, worker_id, heartbeat_at, request_body, seq, \
    runbook_ref, runbook_commit, runtime, sandbox, oom, secrets, env, retry_on_lost, body_of, \
    approval, extra";

/// Listings leave the two big columns out.
pub(crate) const LIST_COLUMNS: &str = "exec_id, partition_key, schema_id, name, status, initiator, runbook, \
    run_args, worker, oncall, team, timeout_secs, requested_at, started_at, finished_at, \
    exit_code, signal, error, NULL, output_truncated, worker_id, heartbeat_at, NULL, seq, \
    runbook_ref, runbook_commit, runtime, sandbox, oom, secrets, env, retry_on_lost, body_of, \
    approval, extra";

pub(crate) fn parse_status(s: &str) -> Result<Status, StoreError> {
    s.parse().map_err(|e| StoreError::Corrupt(format!("{e}")))
}

/// Reads a row selected with [`COLUMNS`] or [`LIST_COLUMNS`]; returns it with its `seq`.
pub(crate) fn row_to_execution(r: &Row<'_>) -> Result<(Execution, i64), StoreError> {
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
        pool: get_s(8)?,
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
        approval: match get_os(33)? {
            None => None,
            Some(j) => {
                Some(serde_json::from_str(&j).map_err(|e| StoreError::Corrupt(e.to_string()))?)
            }
        },
        dry_run: false,
        limits: RunLimits::default(),
        verify: None,
        verify_of: None,
        verification: None,
        not_before: None,
        transitions: Vec::new(),
    };
    let mut e = e;
    if let Some(j) = get_os(34)? {
        let extra: Extra =
            serde_json::from_str(&j).map_err(|err| StoreError::Corrupt(err.to_string()))?;
        extra.apply(&mut e);
    }
    Ok((e, r.get(23).map_err(db_err)?))
}

pub(crate) fn load(tx: &rusqlite::Connection, id: &str) -> Result<Option<Execution>, StoreError> {
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

pub(crate) fn append_transition(
    tx: &rusqlite::Connection,
    id: &str,
    t: &Transition,
) -> StoreResult<()> {
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

/// The `extra` column: the fields executions gained after the table's columns were set
/// (JSON; NULL when all are at their defaults).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Extra {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    dry_run: bool,
    #[serde(default, skip_serializing_if = "RunLimits::is_empty")]
    limits: RunLimits,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verify: Option<cloudo_core::verify::Verify>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verify_of: Option<ExecId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verification: Option<cloudo_core::verify::Verification>,
    #[serde(
        default,
        with = "time::serde_rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    not_before: Option<time::Timestamp>,
}

impl Extra {
    pub(crate) fn of(e: &Execution) -> StoreResult<Option<String>> {
        let x = Extra {
            dry_run: e.dry_run,
            limits: e.limits.clone(),
            verify: e.verify.clone(),
            verify_of: e.verify_of.clone(),
            verification: e.verification.clone(),
            not_before: e.not_before,
        };
        if serde_json::to_value(&x).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty())) {
            return Ok(None);
        }
        serde_json::to_string(&x)
            .map(Some)
            .map_err(|err| StoreError::Corrupt(err.to_string()))
    }

    fn apply(self, e: &mut Execution) {
        e.dry_run = self.dry_run;
        e.limits = self.limits;
        e.verify = self.verify;
        e.verify_of = self.verify_of;
        e.verification = self.verification;
        e.not_before = self.not_before;
    }
}

/// The `approval` column: the request as JSON, or NULL.
pub(crate) fn approval_column(e: &Execution) -> StoreResult<Option<String>> {
    e.approval
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|err| StoreError::Corrupt(err.to_string()))
}

pub(crate) fn insert_execution(
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
    let approval = approval_column(e)?;
    let extra = Extra::of(e)?;
    let inserted = tx
        .prepare_cached(
            "INSERT INTO executions (exec_id, partition_key, schema_id, name, status,
               initiator, runbook, run_args, worker, oncall, team, timeout_secs,
               requested_at, finished_at, error, request_body, runbook_ref, runtime, secrets,
               env, retry_on_lost, body_of, approval, extra)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
               ?20, ?21, ?22, ?23, ?24)
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
                e.pool,
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
                approval,
                extra,
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

/// Creates the batches of one delivery in `tx` (each deduplicated by its own key), `body`
/// stored once, on the first execution created.
pub(crate) fn create_all<'a>(
    tx: &rusqlite::Connection,
    batches: impl ExactSizeIterator<Item = &'a Batch>,
    body: Option<&str>,
) -> StoreResult<Vec<Created>> {
    let mut holder = BodyHolder::new(body);
    let mut out = Vec::with_capacity(batches.len());
    for b in batches {
        let batch = holder.batch(&b.executions);
        let created = create_in(tx, &batch, b.dedup.as_ref())?;
        holder.created(&batch, &created);
        out.push(created);
    }
    Ok(out)
}

/// Creates one batch (unless its dedup key was seen within its window) in `tx`.
pub(crate) fn create_in(
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
