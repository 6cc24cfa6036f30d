//! Checkpoints on their own thread and connection (see [`checkpointer`]).

use std::path::Path;

use rusqlite::Connection;

use super::{DbError, Durability, configure};

/// WAL bytes past which a checkpoint also waits for writers to restart the log.
const WAL_RESTART_BYTES: u64 = 64 << 20;

/// Starts the thread that checkpoints the WAL into the database every second, on its own
/// connection: the writer's own automatic checkpoints fsynced inside a commit, stalling
/// every write behind it (and, on the fast path, a runtime thread). A passive checkpoint
/// never blocks a write; when the log is past [`WAL_RESTART_BYTES`] anyway (writes never
/// paused), one waits for the writer so that the log starts over. Ends when the returned
/// sender is dropped.
pub(crate) fn checkpointer(
    path: &Path,
    durability: Durability,
) -> Result<std::sync::mpsc::Sender<()>, DbError> {
    let conn = Connection::open(path)?;
    configure(&conn, durability)?;
    let wal = {
        let mut p = path.as_os_str().to_owned();
        p.push("-wal");
        std::path::PathBuf::from(p)
    };
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            use std::sync::mpsc::RecvTimeoutError;
            while let Err(RecvTimeoutError::Timeout) =
                stopped.recv_timeout(std::time::Duration::from_secs(1))
            {
                if let Err(e) = checkpoint(&conn, &wal) {
                    tracing::warn!(error = %e, "sqlite: checkpoint failed; retrying in a second");
                }
            }
        })
        .map_err(|e| DbError(format!("cannot start the checkpoint thread: {e}")))?;
    Ok(stop)
}

/// Frames (pages) a restart may be left to copy while it blocks new writes.
const RESTART_LEFT_FRAMES: i64 = 2048;

/// One checkpoint: passive; when the log is past [`WAL_RESTART_BYTES`], more passive
/// passes until little is left, then a restart. A restart blocks new writes until it has
/// copied what is left and synced the database file: alone, under sustained ingest, it
/// stalled every write for 300 ms; the passive passes before it leave it little to do.
fn checkpoint(conn: &Connection, wal: &Path) -> rusqlite::Result<()> {
    let passive = || {
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok(r.get::<_, i64>(1)? - r.get::<_, i64>(2)?)
        })
    };
    let mut left = passive()?;
    if !std::fs::metadata(wal).is_ok_and(|m| m.len() > WAL_RESTART_BYTES) {
        return Ok(());
    }
    for _ in 0..4 {
        if left <= RESTART_LEFT_FRAMES {
            break;
        }
        left = passive()?;
    }
    conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
}
