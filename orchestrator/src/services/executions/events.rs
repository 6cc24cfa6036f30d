//! The hub's event streams, and the followers that read them: `?wait=` and the live output
//! stream.
//!
//! Every status change this process makes is announced at once, and so is every append to
//! an execution's log. On a store shared by several orchestrators, status changes made
//! elsewhere reach watched executions through `watch.rs`; output written through another
//! replica is found by re-reading the log every [`SHARED_POLL`] while someone follows it.

use std::sync::Arc;
use std::time::Duration;

use cloudo_core::store::StoreResult;
use cloudo_core::{ExecId, Execution, Status};
use tokio::sync::{broadcast, watch};

use super::{Executions, Watch};

/// An execution changed status (or was created in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionEvent {
    pub exec_id: ExecId,
    pub status: Status,
}

/// Events a slow follower may fall behind by before it is told it lagged (it then re-reads
/// the store). Every slot is allocated when the channel is made: 4096 cost the two channels
/// 430 KB of an idle server's memory.
const EVENTS_BUFFER: usize = 1024;

/// How often a follower re-reads a log another orchestrator may be writing (a shared store).
const SHARED_POLL: Duration = Duration::from_millis(250);
/// How often it does when only this process writes (a safety net: appends are announced).
const LOCAL_POLL: Duration = Duration::from_secs(2);
/// Most bytes of output one followed event carries.
const PIECE: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub(super) struct Channels {
    status: broadcast::Sender<ExecutionEvent>,
    logs: broadcast::Sender<ExecId>,
    /// True once the server stops: followers end so connections can close.
    closing: Arc<watch::Sender<bool>>,
}

impl Default for Channels {
    fn default() -> Self {
        Self {
            status: broadcast::channel(EVENTS_BUFFER).0,
            logs: broadcast::channel(EVENTS_BUFFER).0,
            closing: Arc::new(watch::channel(false).0),
        }
    }
}

impl Executions {
    /// Follows every status change made by this process.
    pub fn subscribe(&self) -> broadcast::Receiver<ExecutionEvent> {
        self.events.status.subscribe()
    }

    pub(super) fn announce(&self, id: &ExecId, status: Status) {
        self.watches.update(id, status, None);
        self.publish(id, status);
    }

    pub(super) fn publish(&self, id: &ExecId, status: Status) {
        // No follower is not an error.
        let _ = self.events.status.send(ExecutionEvent {
            exec_id: id.clone(),
            status,
        });
    }

    /// The log of `id` grew.
    pub(super) fn log_grew(&self, id: &ExecId) {
        let _ = self.events.logs.send(id.clone());
    }

    /// The server is stopping: every follower ends.
    pub fn close_followers(&self) {
        self.events.closing.send_replace(true);
    }

    /// The execution once it is terminal, or as it is when `max` has passed.
    pub async fn wait_terminal(
        &self,
        id: &ExecId,
        max: Duration,
    ) -> StoreResult<Option<Execution>> {
        // Subscribed and watching before reading, so a change after the read is seen.
        let events = self.subscribe();
        let watch = self.watch(id);
        match self.store.get_execution(id).await? {
            Some(e) if !e.status.is_terminal() => watch.saw(e.status),
            other => return Ok(other),
        }
        self.wait_for_end(events, watch, id, max).await
    }

    /// [`Self::wait_terminal`] for an execution `known` as it was recorded or read after
    /// `events` was subscribed (the one-request trigger): every later change of this
    /// process is in `events`, so no read is needed before waiting.
    pub async fn wait_terminal_since(
        &self,
        events: broadcast::Receiver<ExecutionEvent>,
        known: &Execution,
        max: Duration,
    ) -> StoreResult<Option<Execution>> {
        if known.status.is_terminal() {
            return Ok(Some(known.clone()));
        }
        let watch = self.watch(&known.exec_id);
        watch.saw(known.status);
        self.wait_for_end(events, watch, &known.exec_id, max).await
    }

    async fn wait_for_end(
        &self,
        mut events: broadcast::Receiver<ExecutionEvent>,
        _watch: Watch,
        id: &ExecId,
        max: Duration,
    ) -> StoreResult<Option<Execution>> {
        let deadline = tokio::time::Instant::now() + max;
        loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                // Ours, and final.
                Ok(Ok(ev)) if ev.exec_id == *id && ev.status.is_terminal() => break,
                Ok(Ok(_)) => {}
                // Fell behind: whatever happened, the store knows.
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                    match self.store.get_execution(id).await? {
                        Some(e) if !e.status.is_terminal() => {}
                        other => return Ok(other),
                    }
                }
                Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => break,
            }
        }
        self.store.get_execution(id).await
    }

    /// Follows the status and output of `id` from byte `offset` of its log, until it ends.
    pub fn follow(&self, id: &ExecId, offset: u64) -> Follower {
        let status = self.subscribe();
        let logs = self.events.logs.subscribe();
        Follower {
            hub: self.clone(),
            id: id.clone(),
            offset,
            status: None,
            events: status,
            logs,
            closing: self.events.closing.subscribe(),
            watch: self.watch(id),
            ended: false,
            poll: if self.follow_every.is_some() {
                SHARED_POLL
            } else {
                LOCAL_POLL
            },
        }
    }
}

/// What a follower sees, in order: the status when it starts and at each change, output as
/// it is logged, and the end.
#[derive(Debug, Clone)]
pub enum Followed {
    Status(Box<Execution>),
    /// `text` is the log from byte `offset` to `next`.
    Output {
        offset: u64,
        next: u64,
        text: String,
    },
    /// The execution ended and all its log was sent.
    End(Box<Execution>),
    /// The server is stopping; follow again from the offset reached.
    Closing,
}

/// One execution followed: [`Follower::next`] until it returns `None`.
#[derive(Debug)]
pub struct Follower {
    hub: Executions,
    id: ExecId,
    offset: u64,
    status: Option<Status>,
    events: broadcast::Receiver<ExecutionEvent>,
    logs: broadcast::Receiver<ExecId>,
    closing: watch::Receiver<bool>,
    watch: Watch,
    ended: bool,
    poll: Duration,
}

impl Follower {
    pub fn exec_id(&self) -> &ExecId {
        &self.id
    }

    /// The byte offset of the log reached.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next thing to tell; `None` after the end. Errors: the store's (or no such
    /// execution: [`cloudo_core::StoreError::NotFound`]).
    pub async fn next(&mut self) -> StoreResult<Option<Followed>> {
        loop {
            if self.ended {
                return Ok(None);
            }
            if *self.closing.borrow() {
                self.ended = true;
                return Ok(Some(Followed::Closing));
            }
            // The status first: an execution seen ended has all its log, so the log read
            // after it tells whether anything is left.
            let e = self
                .hub
                .store
                .get_execution(&self.id)
                .await?
                .ok_or_else(|| cloudo_core::StoreError::NotFound(self.id.clone()))?;
            if self.status != Some(e.status) {
                self.status = Some(e.status);
                self.watch.saw(e.status);
                return Ok(Some(Followed::Status(Box::new(e))));
            }
            let r = self.hub.read_log(&self.id, self.offset, PIECE).await?;
            if !r.data.is_empty() {
                let offset = self.offset;
                self.offset = r.next();
                return Ok(Some(Followed::Output {
                    offset,
                    next: self.offset,
                    text: String::from_utf8_lossy(&r.data).into_owned(),
                }));
            }
            if e.status.is_terminal() {
                self.ended = true;
                return Ok(Some(Followed::End(Box::new(e))));
            }
            self.wait().await;
        }
    }

    /// Until something may have changed: a status or log event of this execution, the poll
    /// interval, or the server closing.
    async fn wait(&mut self) {
        let deadline = tokio::time::Instant::now() + self.poll;
        loop {
            tokio::select! {
                ev = self.events.recv() => match ev {
                    Ok(ev) if ev.exec_id != self.id => continue,
                    Err(broadcast::error::RecvError::Closed) => {
                        tokio::time::sleep_until(deadline).await;
                    }
                    _ => {}
                },
                ev = self.logs.recv() => match ev {
                    Ok(id) if id != self.id => continue,
                    Err(broadcast::error::RecvError::Closed) => {
                        tokio::time::sleep_until(deadline).await;
                    }
                    _ => {}
                },
                _ = tokio::time::sleep_until(deadline) => {}
                _ = self.closing.changed() => {}
            }
            return;
        }
    }
}
