//! Changes another orchestrator makes on a shared store, for this one's followers.
//!
//! Every change this process makes is announced on the hub's event stream at once. On a
//! store shared by several orchestrators, a run may be started, reported or reaped by
//! another replica; a follower here (a `?wait=`, a live output stream) registers a
//! [`Watch`] on the execution it follows, and one loop per process ([`follow_store`])
//! re-reads the watched executions every tick and announces what changed. The cost is one
//! point read per watched execution per tick, whatever the traffic.
//!
//! Reactions that must happen once (notifications, and later verification runbooks and
//! transition counters) are not followers: the replica that makes a change does them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cloudo_core::{ExecId, Status};
use futures_util::StreamExt;
use tokio::sync::watch;

use super::Executions;

/// Point reads one tick runs at a time.
const READS_AT_ONCE: usize = 16;

/// The executions followers of this process watch, with the status last announced.
#[derive(Debug, Default)]
pub(super) struct Watches {
    inner: Mutex<HashMap<ExecId, Watched>>,
}

#[derive(Debug)]
struct Watched {
    followers: usize,
    /// The status last announced or seen; `None` until the follower's first read.
    status: Option<Status>,
    /// Bumped at every update, so a store read that started before a newer announcement
    /// does not bring an older status back.
    version: u64,
}

impl Watches {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ExecId, Watched>> {
        // A panic while holding the map leaves it consistent (plain inserts and counters).
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `status` for a watched execution; whether it is news (differs from the last
    /// one). `read_at`: the version a store read started at; a newer version means the read
    /// is stale (something was announced meanwhile) and it is ignored.
    pub(super) fn update(&self, id: &ExecId, status: Status, read_at: Option<u64>) -> bool {
        let mut map = self.lock();
        let Some(w) = map.get_mut(id) else {
            return false;
        };
        if read_at.is_some_and(|v| v != w.version) || w.status == Some(status) {
            return false;
        }
        w.status = Some(status);
        w.version += 1;
        true
    }

    pub(super) fn snapshot(&self) -> Vec<(ExecId, u64)> {
        self.lock()
            .iter()
            .map(|(id, w)| (id.clone(), w.version))
            .collect()
    }
}

/// Interest in one execution's changes made elsewhere; dropped, the interest ends.
#[derive(Debug)]
pub struct Watch {
    exec_id: ExecId,
    watches: Arc<Watches>,
}

impl Watch {
    pub(super) fn new(watches: Arc<Watches>, id: &ExecId) -> Self {
        watches
            .lock()
            .entry(id.clone())
            .or_insert(Watched {
                followers: 0,
                status: None,
                version: 0,
            })
            .followers += 1;
        Self {
            exec_id: id.clone(),
            watches,
        }
    }

    /// What the follower read itself (a later different status is then news).
    pub fn saw(&self, status: Status) {
        self.watches.update(&self.exec_id, status, None);
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut map = self.watches.lock();
        if let Some(w) = map.get_mut(&self.exec_id) {
            w.followers -= 1;
            if w.followers == 0 {
                map.remove(&self.exec_id);
            }
        }
    }
}

/// Re-reads the watched executions every `every` and announces their changes, until
/// `stop` turns true.
pub(super) async fn follow_store(
    executions: Executions,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let watched = executions.watches.snapshot();
        let store = executions.store().clone();
        let mut reads = futures_util::stream::iter(watched)
            .map(|(id, version)| {
                let store = store.clone();
                async move { (store.get_execution(&id).await, id, version) }
            })
            .buffer_unordered(READS_AT_ONCE);
        while let Some((read, id, version)) = reads.next().await {
            match read {
                Ok(Some(e)) => {
                    if executions.watches.update(&id, e.status, Some(version)) {
                        executions.publish(&id, e.status);
                    }
                }
                Ok(None) => {}
                // The next tick tries again; a follower's own deadline bounds its wait.
                Err(err) => {
                    tracing::debug!(exec_id = %id, error = %err, "cannot re-read a watched execution")
                }
            }
        }
    }
}
