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
mod checkpoint;
mod coordination;
mod executions;
mod intake;
mod logs;
mod messages;
mod migrations;
mod outbox;
mod queue;
mod rows;
mod state;
mod store;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

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
    /// Reader connections, the lowest free one first: the first is opened with the
    /// database, the others when reads first overlap (each holds a page cache, its
    /// statements and lookaside memory: an idle or lightly used server keeps one).
    readers: Vec<Mutex<Option<Connection>>>,
    path: PathBuf,
    durability: Durability,
    next_reader: AtomicUsize,
    /// Dropped with the database: ends the checkpoint thread.
    _checkpoints: std::sync::mpsc::Sender<()>,
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

/// Page size of a new database file. Measured with alerts (an execution with its alert is
/// 2-3 KB): 16 KB pages wrote more (each commit rewrites its last pages whole) and took
/// fewer alerts per second than SQLite's default 4 KB.
const PAGE_SIZE: i64 = 4096;

impl Db {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, DbError> {
        let mut writer = Connection::open(path)?;
        // Before anything is written (it only applies to a new file).
        writer.pragma_update(None, "page_size", PAGE_SIZE)?;
        configure(&writer, durability)?;
        // Room for a whole group of writes: with SQLite's 2 MB default, a group spilled
        // pages into the WAL before its commit, and wrote many of them twice.
        writer.pragma_update(None, "cache_size", -32768)?;
        // Checkpoints (which fsync) run on their own thread, never in a write's commit.
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpoints = checkpoint::checkpointer(path, durability)?;
        migrations::migrate(&mut writer)?;
        let mut readers: Vec<_> = (0..READERS).map(|_| Mutex::new(None)).collect();
        readers[0] = Mutex::new(Some(open_reader(path, durability)?));
        Ok(Self {
            inner: Arc::new(DbInner {
                writes: writer::Writer::start(writer, durability == Durability::Process)?,
                readers,
                path: path.to_path_buf(),
                durability,
                next_reader: AtomicUsize::new(0),
                _checkpoints: checkpoints,
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

    /// Runs a point look-up `f` on a free open reader connection right here (microseconds,
    /// no thread hand-off), or on a blocking thread when every open reader is busy.
    pub(crate) async fn read_now<T, E>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        for reader in &self.inner.readers {
            if let Ok(conn) = reader.try_lock() {
                match conn.as_ref() {
                    Some(c) => return f(c),
                    // Opened on the blocking thread, not here.
                    None => break,
                }
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
            let mut slot = inner.reader()?;
            let conn = match slot.take() {
                Some(c) => c,
                None => match open_reader(&inner.path, inner.durability) {
                    Ok(c) => c,
                    Err(e) => {
                        // Reader 0 is opened at start and never closed: waiting for it
                        // is slower, not wrong. (No one holds it while waiting for another.)
                        drop(slot);
                        tracing::warn!(error = %e, "could not open one more database reader: reading on the first");
                        let first = inner.readers[0]
                            .lock()
                            .map_err(|_| DbError("reader connection poisoned".into()))?;
                        return match first.as_ref() {
                            Some(c) => f(c),
                            None => Err(E::from(e)),
                        };
                    }
                },
            };
            f(slot.insert(conn))
        })
        .await
    }
}

impl DbInner {
    /// The lowest free reader slot, else (all busy) the next one in turn, waited for.
    fn reader(&self) -> Result<MutexGuard<'_, Option<Connection>>, DbError> {
        if let Some(free) = self.readers.iter().find_map(|r| r.try_lock().ok()) {
            return Ok(free);
        }
        let n = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        self.readers[n]
            .lock()
            .map_err(|_| DbError("reader connection poisoned".into()))
    }
}

fn open_reader(path: &Path, durability: Durability) -> Result<Connection, DbError> {
    let c = Connection::open(path)?;
    configure(&c, durability)?;
    Ok(c)
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
    // First: the next pragma may find the file locked by another connection.
    c.busy_timeout(std::time::Duration::from_secs(10))?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    let sync = match durability {
        Durability::Process => "NORMAL",
        Durability::Power => "FULL",
    };
    c.pragma_update(None, "synchronous", sync)?;
    c.pragma_update(None, "foreign_keys", "ON")?;
    // Every statement of the adapters stays prepared (there are about sixty; the default
    // cache of 16 made the hot path prepare its statements again and again).
    c.set_prepared_statement_cache_capacity(256);
    // Savepoints (one per write of a group) keep the pages they change in a sub-journal:
    // in memory, not in a temporary file (which was a third of the writer's time).
    c.pragma_update(None, "temp_store", "MEMORY")?;
    // After a checkpoint restarts the log, its file is cut back to this size.
    c.pragma_update(None, "journal_size_limit", 64i64 << 20)?;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The writer never checkpoints (its commits would wait for fsync): the checkpoint
    /// thread moves committed pages into the database file within a couple of seconds.
    #[tokio::test]
    async fn the_checkpoint_thread_moves_the_log_into_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let db = Db::open(&path, Durability::Process).unwrap();
        db.write(|tx| {
            tx.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY, pad TEXT)")?;
            for n in 0..2000 {
                tx.execute("INSERT INTO t VALUES (?1, hex(randomblob(100)))", [n])?;
            }
            Ok::<_, DbError>(())
        })
        .await
        .unwrap();
        // The database file alone (without its -wal), as a backup of it would be.
        let alone = dir.path().join("copy");
        let rows_in_file = || {
            std::fs::copy(&path, &alone).unwrap();
            let c = Connection::open(&alone).unwrap();
            let n = c
                .query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
                .unwrap_or(0);
            drop(c);
            let _ = std::fs::remove_file(&alone);
            n
        };
        let mut n = 0;
        for _ in 0..40 {
            n = rows_in_file();
            if n == 2000 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(n, 2000, "the log was not checkpointed");
    }

    /// A read that holds its connection until `release` is sent; returns once it holds it.
    async fn hold_a_reader(
        db: &Db,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<Result<(), std::sync::mpsc::RecvError>, DbError>>,
    ) {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, holding) = tokio::sync::oneshot::channel::<()>();
        let db = db.clone();
        let first = tokio::spawn(async move {
            db.read(move |_| {
                let _ = started.send(());
                Ok::<_, DbError>(held.recv())
            })
            .await
        });
        holding.await.unwrap();
        (release, first)
    }

    /// Sequential reads keep to one connection; a second opens when two reads overlap.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reader_connections_open_only_when_reads_overlap() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db"), Durability::Process).unwrap();
        let one = |c: &Connection| {
            c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map_err(DbError::from)
        };
        let opened = |db: &Db| {
            let r = &db.inner.readers;
            r.iter().filter(|r| r.lock().unwrap().is_some()).count()
        };
        for _ in 0..20 {
            assert_eq!(db.read_now(one).await.unwrap(), 1);
            assert_eq!(db.read(one).await.unwrap(), 1);
        }
        assert_eq!(opened(&db), 1);
        let (release, first) = hold_a_reader(&db).await;
        assert_eq!(db.read_now(one).await.unwrap(), 1);
        release.send(()).unwrap();
        first.await.unwrap().unwrap().unwrap();
        assert_eq!(opened(&db), 2);
    }

    /// A reader that cannot be opened (here: the folder was moved away) is not an error:
    /// the read waits for the first reader, which stays open.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_that_cannot_open_falls_back_to_the_first() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("here")).unwrap();
        let db = Db::open(&dir.path().join("here/db"), Durability::Process).unwrap();
        std::fs::rename(dir.path().join("here"), dir.path().join("gone")).unwrap();
        let (release, first) = hold_a_reader(&db).await;
        let second = {
            let db = db.clone();
            tokio::spawn(async move {
                db.read(|c| {
                    c.query_row("SELECT 2", [], |r| r.get::<_, i64>(0))
                        .map_err(DbError::from)
                })
                .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            !second.is_finished(),
            "the read did not wait for the first reader"
        );
        release.send(()).unwrap();
        first.await.unwrap().unwrap().unwrap();
        assert_eq!(second.await.unwrap().unwrap(), 2);
    }

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
