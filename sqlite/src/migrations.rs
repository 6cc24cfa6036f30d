//! The database's schema, one migration per version (`PRAGMA user_version`).

use rusqlite::Connection;

use super::DbError;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE schemas (
    id        TEXT PRIMARY KEY,
    position  INTEGER NOT NULL,
    body      TEXT NOT NULL
);
CREATE TABLE executions (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    exec_id          TEXT NOT NULL UNIQUE,
    partition_key    TEXT NOT NULL,
    schema_id        TEXT NOT NULL,
    name             TEXT NOT NULL,
    status           TEXT NOT NULL,
    initiator        TEXT NOT NULL,
    runbook          TEXT NOT NULL,
    run_args         TEXT NOT NULL,
    worker           TEXT NOT NULL,
    oncall           INTEGER NOT NULL,
    team             TEXT,
    timeout_secs     INTEGER NOT NULL,
    requested_at     TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    exit_code        INTEGER,
    signal           INTEGER,
    error            TEXT,
    output           TEXT,
    output_truncated INTEGER NOT NULL DEFAULT 0,
    worker_id        TEXT,
    heartbeat_at     TEXT,
    request_body     TEXT
);
CREATE INDEX executions_by_status ON executions (status, seq);
CREATE INDEX executions_by_schema ON executions (schema_id, seq);
CREATE TABLE transitions (
    exec_id     TEXT NOT NULL,
    n           INTEGER NOT NULL,
    from_status TEXT,
    to_status   TEXT NOT NULL,
    at          TEXT NOT NULL,
    reason      TEXT,
    PRIMARY KEY (exec_id, n)
) WITHOUT ROWID;
CREATE TABLE queue_messages (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    pool          TEXT NOT NULL,
    body          TEXT NOT NULL,
    inserted_at   INTEGER NOT NULL,
    visible_at    INTEGER NOT NULL,
    dequeue_count INTEGER NOT NULL DEFAULT 0,
    pop_receipt   TEXT
);
CREATE INDEX queue_visible ON queue_messages (pool, visible_at, seq);
CREATE TABLE queue_dead (
    id            TEXT PRIMARY KEY,
    pool          TEXT NOT NULL,
    body          TEXT NOT NULL,
    dequeue_count INTEGER NOT NULL,
    dead_at       TEXT NOT NULL
);
CREATE INDEX queue_dead_by_pool ON queue_dead (pool, dead_at);
"#,
    r#"
CREATE TABLE dedup (
    key        TEXT PRIMARY KEY,
    exec_ids   TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX dedup_by_age ON dedup (created_at);
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"#,
    r#"
ALTER TABLE executions ADD COLUMN runbook_ref TEXT;
ALTER TABLE executions ADD COLUMN runbook_commit TEXT;
"#,
    r#"
ALTER TABLE executions ADD COLUMN runtime TEXT;
ALTER TABLE executions ADD COLUMN sandbox TEXT;
ALTER TABLE executions ADD COLUMN oom INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
CREATE TABLE api_keys (
    name         TEXT PRIMARY KEY,
    role         TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    last_used_at TEXT
);
CREATE TABLE audit (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    role    TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    source  TEXT NOT NULL,
    outcome INTEGER NOT NULL
);
CREATE INDEX audit_by_actor ON audit (actor, seq);
"#,
    r#"
ALTER TABLE executions ADD COLUMN secrets TEXT;
"#,
    r#"
ALTER TABLE api_keys ADD COLUMN pool TEXT;
"#,
    r#"
CREATE TABLE workers (
    id        TEXT PRIMARY KEY,
    pool      TEXT NOT NULL,
    last_seen INTEGER NOT NULL,
    body      TEXT NOT NULL
);
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);
ALTER TABLE executions ADD COLUMN env TEXT;
ALTER TABLE executions ADD COLUMN retry_on_lost INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
CREATE TABLE notifications (
    id      TEXT PRIMARY KEY,
    exec_id TEXT NOT NULL,
    state   TEXT NOT NULL,
    doc     TEXT NOT NULL
);
CREATE INDEX notifications_open ON notifications (state, id);
CREATE INDEX notifications_by_exec ON notifications (exec_id, id);
"#,
    r#"
ALTER TABLE executions ADD COLUMN body_of TEXT;
"#,
    r#"
CREATE TABLE logs (
    exec_id TEXT NOT NULL,
    start   INTEGER NOT NULL,
    data    BLOB NOT NULL,
    PRIMARY KEY (exec_id, start)
) WITHOUT ROWID;
CREATE TABLE log_ends (
    exec_id TEXT PRIMARY KEY,
    size    INTEGER NOT NULL,
    full    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"#,
    r#"
ALTER TABLE executions ADD COLUMN approval TEXT;
"#,
    r#"
ALTER TABLE api_keys ADD COLUMN scope TEXT;
"#,
    r#"
ALTER TABLE executions ADD COLUMN extra TEXT;
CREATE TABLE state (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL,
    version INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    // Listings newest first by request time, every filter on its own index (see
    // `executions::list_sql`).
    r#"
DROP INDEX executions_by_status;
DROP INDEX executions_by_schema;
CREATE INDEX executions_by_time ON executions (requested_at, seq);
CREATE INDEX executions_by_status ON executions (status, requested_at, seq);
CREATE INDEX executions_by_schema ON executions (schema_id, requested_at, seq);
CREATE INDEX executions_by_schema_status ON executions (schema_id, status, requested_at, seq);
CREATE INDEX executions_by_initiator ON executions (initiator, requested_at, seq);
"#,
];

/// Brings the schema up to date; refuses a database newer than this build.
pub(crate) fn migrate(c: &mut Connection) -> Result<(), DbError> {
    let version: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let version = usize::try_from(version).unwrap_or(0);
    if version > MIGRATIONS.len() {
        return Err(DbError(format!(
            "database schema version {version} is newer than this build knows ({}); \
             refusing to open it",
            MIGRATIONS.len()
        )));
    }
    for (n, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = c.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (n + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
