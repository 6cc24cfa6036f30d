//! The writer thread: every write transaction of the database runs here, and writes that
//! arrive while one commits are committed together (group commit).
//!
//! Each write runs inside its own savepoint of the batch's transaction, so one that fails
//! (or panics) is rolled back alone and answers its own error; the others' answers wait
//! for the one `COMMIT`, and if it fails they all answer that error. Nobody hears "done"
//! before the commit that made it durable.
//!
//! Why a thread and not `spawn_blocking` per write: under load the thread stays busy and
//! drains the channel, so most writes cost neither a thread hand-off of the blocking pool
//! nor a commit of their own (the profile of `make bench` had a third of the engine's CPU
//! in those two). When nothing else is writing, a write commits right on the caller's
//! thread instead (microseconds with `synchronous=NORMAL`): an idle engine's run makes
//! about seven writes one after the other, and each hand-off was two thread wake-ups.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::DbError;

/// Most writes committed together; bounds the wait of the first one.
const MAX_BATCH: usize = 128;

/// One write: runs in the batch's transaction (or, given an error, answers it without
/// running); says whether it kept its changes, and how to answer once the batch's fate
/// (`None`: committed) is known.
pub(crate) type WriteJob =
    Box<dyn FnOnce(Result<&Transaction<'_>, DbError>) -> (bool, Answer) + Send>;
pub(crate) type Answer = Box<dyn FnOnce(Option<DbError>) + Send>;

/// The job of a write `f`, and where its answer comes.
pub(crate) fn job<T, E>(
    f: impl FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
) -> (WriteJob, tokio::sync::oneshot::Receiver<Result<T, E>>)
where
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    let (answer, answered) = tokio::sync::oneshot::channel::<Result<T, E>>();
    let job: WriteJob = Box::new(move |tx| match tx {
        Err(e) => {
            let _ = answer.send(Err(E::from(e)));
            (false, Box::new(|_| {}))
        }
        Ok(tx) => {
            let out = f(tx);
            let kept = out.is_ok();
            // A write that failed answers its own error whatever became of the batch.
            let answer: Answer = Box::new(move |failed| {
                let _ = answer.send(match (failed, out) {
                    (Some(e), Ok(_)) => Err(E::from(e)),
                    (_, out) => out,
                });
            });
            (kept, answer)
        }
    });
    (job, answered)
}

/// The one write connection: a thread that commits in groups, and a fast path that commits
/// a write right where it is asked when nothing else is writing (no hand-off at all, which
/// is most of the latency of an idle engine).
#[derive(Debug)]
pub(crate) struct Writer {
    conn: Arc<Mutex<Connection>>,
    jobs: mpsc::Sender<WriteJob>,
    /// Writes asked for and not yet committed (here or on the thread).
    in_flight: Arc<AtomicUsize>,
    /// Commit on the caller's thread when idle (not when every commit waits for the disk).
    inline: bool,
}

impl Writer {
    /// Starts the writer thread on `conn`; it ends when the writer is dropped.
    pub(crate) fn start(conn: Connection, inline: bool) -> Result<Self, DbError> {
        let (jobs, rx) = mpsc::channel::<WriteJob>();
        let conn = Arc::new(Mutex::new(conn));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let (c, q) = (conn.clone(), in_flight.clone());
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(&c, &rx, &q))
            .map_err(|e| DbError(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            conn,
            jobs,
            in_flight,
            inline,
        })
    }

    /// Commits `job` here if no other write is in flight, else hands it to the thread
    /// (under load, always: that is what makes the groups).
    pub(crate) fn submit(&self, job: WriteJob) -> Result<(), DbError> {
        let alone = self.in_flight.fetch_add(1, Ordering::AcqRel) == 0;
        if self.inline
            && alone
            && let Ok(mut conn) = self.conn.try_lock()
        {
            commit(&mut conn, vec![job]);
            drop(conn);
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Ok(());
        }
        self.jobs.send(job).map_err(|_| {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            DbError("the writer thread has stopped".into())
        })
    }
}

fn run(conn: &Mutex<Connection>, rx: &mpsc::Receiver<WriteJob>, in_flight: &AtomicUsize) {
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::with_capacity(8);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let n = batch.len();
        // A panic is caught per job inside `commit`: the connection itself is sound.
        let mut conn = conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        commit(&mut conn, batch);
        drop(conn);
        in_flight.fetch_sub(n, Ordering::AcqRel);
    }
}

/// Runs `batch` in one transaction, each job in a savepoint, and answers every job.
fn commit(conn: &mut Connection, batch: Vec<WriteJob>) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let e = DbError::from(e);
            // Each job answers this error without running.
            for job in batch {
                refuse(job, &e);
            }
            return;
        }
    };
    let mut answers: Vec<Answer> = Vec::with_capacity(batch.len());
    let mut broken: Option<DbError> = None;
    // Alone in its batch, a job needs no savepoint: its failure rolls back the transaction.
    let alone = batch.len() == 1;
    let mut discard = false;
    for job in batch {
        if let Some(e) = &broken {
            refuse(job, e);
            continue;
        }
        if !alone && let Err(e) = step(&tx, "SAVEPOINT job") {
            refuse(job, &e);
            broken = Some(e);
            continue;
        }
        let kept = match std::panic::catch_unwind(AssertUnwindSafe(|| job(Ok(&tx)))) {
            Ok((kept, answer)) => {
                answers.push(answer);
                kept
            }
            // Its answer went with the panic: the caller hears that the task failed.
            Err(_) => false,
        };
        // Some errors (full disk, I/O) end the whole transaction in SQLite: then nothing
        // of this batch can be kept.
        if tx.is_autocommit() {
            broken = Some(DbError("the transaction was rolled back by SQLite".into()));
            continue;
        }
        let end = match (alone, kept) {
            (true, true) => Ok(()),
            (true, false) => {
                discard = true;
                Ok(())
            }
            (false, true) => step(&tx, "RELEASE job"),
            (false, false) => step(&tx, "ROLLBACK TO job").and_then(|()| step(&tx, "RELEASE job")),
        };
        if let Err(e) = end {
            broken = Some(e);
        }
    }
    let outcome = match broken {
        Some(e) => {
            let _ = tx.rollback();
            Some(e)
        }
        None if discard => tx.rollback().err().map(DbError::from),
        None => tx.commit().err().map(DbError::from),
    };
    for answer in answers {
        answer(outcome.as_ref().map(|e| DbError(e.0.clone())));
    }
}

/// Runs one of the savepoint statements (prepared once, kept in the connection's cache).
fn step(tx: &Transaction<'_>, sql: &str) -> Result<(), DbError> {
    tx.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Answers a job that could not run with `e`, without running it.
fn refuse(job: WriteJob, e: &DbError) {
    let (_, answer) = job(Err(DbError(e.0.clone())));
    answer(None);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    type Answered = tokio::sync::oneshot::Receiver<Result<i64, DbError>>;

    fn insert(n: i64, then: Result<(), &'static str>) -> (WriteJob, Answered) {
        job(move |tx| {
            tx.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
            match then {
                Ok(()) => Ok(n),
                Err("panic") => panic!("a write that panics"),
                Err(why) => Err(DbError(why.into())),
            }
        })
    }

    fn rows(c: &Connection) -> Vec<i64> {
        let mut stmt = c.prepare("SELECT n FROM t ORDER BY n").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn a_failed_or_panicking_write_is_rolled_back_alone_and_the_rest_commit_together() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)")
            .unwrap();
        let jobs = [
            insert(1, Ok(())),
            insert(2, Err("refused")),
            insert(3, Err("panic")),
            insert(4, Ok(())),
            // The same key as the first: a constraint error inside the same transaction.
            insert(1, Ok(())),
        ];
        let (jobs, mut answers): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
        commit(&mut c, jobs);
        assert_eq!(rows(&c), vec![1, 4]);
        let got: Vec<_> = answers
            .iter_mut()
            .map(|a| a.try_recv().map(|r| r.map_err(|e| e.0)))
            .collect();
        assert_eq!(got[0], Ok(Ok(1)));
        assert_eq!(got[1], Ok(Err("refused".to_string())));
        assert!(
            got[2].is_err(),
            "a panicked write has no answer: {:?}",
            got[2]
        );
        assert_eq!(got[3], Ok(Ok(4)));
        assert!(
            matches!(&got[4], Ok(Err(e)) if e.contains("UNIQUE")),
            "{:?}",
            got[4]
        );
    }

    #[test]
    fn a_write_alone_in_its_batch_that_fails_keeps_nothing_and_answers_its_error() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)")
            .unwrap();
        let (job, mut answer) = insert(1, Err("refused"));
        commit(&mut c, vec![job]);
        assert!(rows(&c).is_empty());
        assert_eq!(
            answer.try_recv().map(|r| r.map_err(|e| e.0)),
            Ok(Err("refused".to_string()))
        );
        let (job, mut answer) = insert(2, Ok(()));
        commit(&mut c, vec![job]);
        assert_eq!(rows(&c), vec![2]);
        assert_eq!(answer.try_recv().map(|r| r.map_err(|e| e.0)), Ok(Ok(2)));
    }

    #[test]
    fn when_the_commit_fails_every_write_of_the_batch_hears_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut c = Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)")
            .unwrap();
        // Another connection holds the write lock: BEGIN IMMEDIATE cannot start.
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        c.busy_timeout(std::time::Duration::from_millis(10))
            .unwrap();
        let (jobs, mut answers): (Vec<_>, Vec<_>) =
            [insert(1, Ok(())), insert(2, Ok(()))].into_iter().unzip();
        commit(&mut c, jobs);
        for a in &mut answers {
            assert!(matches!(a.try_recv(), Ok(Err(_))));
        }
        other.execute_batch("ROLLBACK").unwrap();
        assert!(rows(&c).is_empty());
    }

    #[tokio::test]
    async fn writes_from_many_tasks_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::Db::open(&dir.path().join("db"), crate::Durability::Process).unwrap();
        db.write(|tx| {
            tx.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)")
                .map_err(DbError::from)
        })
        .await
        .unwrap();
        let mut set = tokio::task::JoinSet::new();
        for n in 0..200_i64 {
            let db = db.clone();
            set.spawn(async move {
                db.write(move |tx| {
                    tx.execute("INSERT INTO t (n) VALUES (?1)", [n])
                        .map_err(DbError::from)
                })
                .await
            });
        }
        while let Some(r) = set.join_next().await {
            assert_eq!(r.unwrap().unwrap(), 1);
        }
        let n: i64 = db
            .read_now(|c| {
                c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                    .map_err(DbError::from)
            })
            .await
            .unwrap();
        assert_eq!(n, 200);
    }
}
