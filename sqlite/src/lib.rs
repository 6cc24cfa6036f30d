//! Embedded adapters on one SQLite database (WAL): [`SqliteStore`] and [`SqliteQueue`].
//!
//! One writer connection on its own thread (SQLite allows one writer at a time anyway),
//! which commits the writes that queue up while it works together (`writer.rs`), and a few
//! readers behind mutexes. Point look-ups (one execution, one key) run on the caller's
//! thread when a reader is free, since they take microseconds; everything else runs on
//! `spawn_blocking`, so async tasks never wait on a scan. Both adapters share the same
//! file, which keeps the embedded deployment a single file to back up.

mod access;
mod approvals;
mod catalog;
mod coordination;
mod executions;
mod logs;
mod outbox;
mod queue;
mod rows;
mod state;
mod store;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::Connection;

pub use queue::SqliteQueue;
pub use store::SqliteStore;

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// WAL with `synchronous=NORMAL`: a commit survives the process being killed (the
    /// kernel has it); a power cut may lose the last commits. The default.
    #[default]
    Process,
    /// `synchronous=FULL`: every commit is fsynced before it returns.
    Power,
}

/// A shared SQLite database.
#[derive(Debug, Clone)]
pub struct Db {
    inner: Arc<DbInner>,
}

#[derive(Debug)]
struct DbInner {
    writes: writer::Writer,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

/// An error of the database itself (not of the data in it).
#[derive(Debug, thiserror::Error)]
#[error("sqlite: {0}")]
pub struct DbError(String);

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError(e.to_string())
    }
}

const READERS: usize = 4;

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

impl Db {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, DbError> {
        let mut writer = Connection::open(path)?;
        configure(&writer, durability)?;
        migrate(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| {
                let c = Connection::open(path)?;
                configure(&c, durability)?;
                Ok(Mutex::new(c))
            })
            .collect::<Result<Vec<_>, DbError>>()?;
        Ok(Self {
            inner: Arc::new(DbInner {
                writes: writer::Writer::start(writer, durability == Durability::Process)?,
                readers,
                next_reader: AtomicUsize::new(0),
            }),
        })
    }

    /// Runs `f` in a write transaction, here when nothing else is writing, else on the writer
    /// thread, maybe with other writes (each in its own savepoint); returns once the
    /// transaction that holds it is committed.
    /// An `Err` from `f` rolls back `f`'s changes only.
    pub(crate) async fn write<T, E>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (job, answered) = writer::job(f);
        if let Err(e) = self.inner.writes.submit(job) {
            return Err(E::from(e));
        }
        match answered.await {
            Ok(r) => r,
            Err(_) => Err(E::from(DbError("a write failed: its task panicked".into()))),
        }
    }

    /// Runs a point look-up `f` on a free reader connection right here (microseconds, no
    /// thread hand-off), or on a blocking thread when every reader is busy.
    pub(crate) async fn read_now<T, E>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let n = self.inner.readers.len();
        let start = self.inner.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if let Ok(conn) = self.inner.readers[(start + i) % n].try_lock() {
                return f(&conn);
            }
        }
        self.read(f).await
    }

    /// Runs `f` on a reader connection on a blocking thread.
    pub(crate) async fn read<T, E>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let inner = self.inner.clone();
        run_blocking(move || {
            let n = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            let conn = inner.readers[n]
                .lock()
                .map_err(|_| DbError("reader connection poisoned".into()))?;
            f(&conn)
        })
        .await
    }
}

async fn run_blocking<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, E>
where
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(E::from(DbError(format!("database task failed: {e}")))),
    }
}

fn configure(c: &Connection, durability: Durability) -> Result<(), DbError> {
    c.pragma_update(None, "journal_mode", "WAL")?;
    let sync = match durability {
        Durability::Process => "NORMAL",
        Durability::Power => "FULL",
    };
    c.pragma_update(None, "synchronous", sync)?;
    c.pragma_update(None, "foreign_keys", "ON")?;
    c.busy_timeout(std::time::Duration::from_secs(10))?;
    // Every statement of the adapters stays prepared (there are about sixty; the default
    // cache of 16 made the hot path prepare its statements again and again).
    c.set_prepared_statement_cache_capacity(256);
    // The bundled SQLite is built with STAT4, which otherwise re-prepares a cached
    // statement whenever a new value is bound to a parameter compared with an indexed
    // column: every look-up by id was parsed and planned again (a tenth of the engine's
    // CPU in `make bench`). Plans here never depend on the values (no ANALYZE is run).
    c.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

fn migrate(c: &mut Connection) -> Result<(), DbError> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cached_look_ups_are_not_prepared_again_for_each_new_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        drop(Db::open(&path, Durability::Process).unwrap());
        let c = Connection::open(&path).unwrap();
        configure(&c, Durability::Process).unwrap();
        for i in 0..5 {
            c.execute(
                "INSERT INTO transitions VALUES (?1, 1, NULL, 'accepted', 'x', NULL)",
                [format!("id{i}")],
            )
            .unwrap();
        }
        for i in 0..5 {
            let mut s = c
                .prepare_cached("SELECT to_status FROM transitions WHERE exec_id = ?1")
                .unwrap();
            let n = s
                .query_map([format!("id{i}")], |r| r.get::<_, String>(0))
                .unwrap()
                .count();
            assert_eq!(n, 1);
            assert_eq!(s.get_status(rusqlite::StatementStatus::RePrepare), 0);
        }
    }
}
