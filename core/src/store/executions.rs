//! [`ExecutionStore`]: executions, their checked transitions, and dedup of deliveries.

use async_trait::async_trait;

use super::{Page, StoreError, StoreResult};
use crate::execution::{ExecId, Execution, Status, StatusChange};
use crate::time::Timestamp;

/// Filters and paging for [`ExecutionStore::list_executions`]; newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecutionQuery {
    pub status: Option<Status>,
    pub schema_id: Option<String>,
    /// Exactly this initiator (`manual`, `alert`, `schedule:<id>`, a key's name…).
    pub initiator: Option<String>,
    /// Requested at or after this time.
    pub since: Option<Timestamp>,
    /// Requested before this time.
    pub until: Option<Timestamp>,
    pub limit: usize,
    /// Opaque, from a previous page's `next`.
    pub cursor: Option<String>,
}

/// An execution to create, with the reason of its first transition.
#[derive(Debug, Clone, PartialEq)]
pub struct NewExecution {
    pub execution: Execution,
    pub reason: Option<String>,
}

/// "Do not create these again for the same key within the window."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupKey {
    pub key: String,
    pub window: std::time::Duration,
}

/// The executions of one alert (or manual trigger) of a delivery, deduplicated by `dedup`.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub executions: Vec<NewExecution>,
    pub dedup: Option<DedupKey>,
}

/// Gives the executions of `batch` the delivery's body: the first execution holds it
/// (`holder` is `None`), or all refer to the one that does.
pub fn share_body(
    batch: &[NewExecution],
    body: Option<&str>,
    holder: Option<&ExecId>,
) -> Vec<NewExecution> {
    let mut out = batch.to_vec();
    let Some(body) = body else {
        return out;
    };
    let holder = holder
        .cloned()
        .or_else(|| out.first().map(|n| n.execution.exec_id.clone()));
    for (i, n) in out.iter_mut().enumerate() {
        if i == 0 && holder.as_ref() == Some(&n.execution.exec_id) {
            n.execution.request_body = Some(body.to_string());
            n.execution.body_of = None;
        } else {
            n.execution.request_body = None;
            n.execution.body_of.clone_from(&holder);
        }
    }
    out
}

/// What [`ExecutionStore::create_executions`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    New,
    /// The key was seen within the window: nothing was created; these are the executions
    /// created the first time.
    Duplicate(Vec<ExecId>),
}

/// Keeps track of which execution of a delivery holds its body while its batches are
/// created one after the other: the first execution created holds it, the later ones
/// refer to it (the default [`ExecutionStore::create_batches`] and adapters' own
/// one-transaction versions share this).
#[derive(Debug)]
pub struct BodyHolder<'a> {
    body: Option<&'a str>,
    holder: Option<ExecId>,
}

impl<'a> BodyHolder<'a> {
    pub fn new(body: Option<&'a str>) -> Self {
        Self { body, holder: None }
    }

    /// The executions of `batch` as they are to be created.
    pub fn batch(&self, batch: &[NewExecution]) -> Vec<NewExecution> {
        share_body(batch, self.body, self.holder.as_ref())
    }

    /// Records what creating `batch` (as returned by [`Self::batch`]) did.
    pub fn created(&mut self, batch: &[NewExecution], created: &Created) {
        if *created == Created::New && self.holder.is_none() && self.body.is_some() {
            self.holder = batch.first().map(|n| n.execution.exec_id.clone());
        }
    }
}

/// Refuses a batch with an execution that cannot be born in its status (for adapters'
/// `create_executions`).
pub fn check_initial(batch: &[NewExecution]) -> StoreResult<()> {
    match batch.iter().find(|n| !n.execution.status.is_initial()) {
        Some(bad) => Err(StoreError::Corrupt(format!(
            "an execution cannot be created as {}",
            bad.execution.status
        ))),
        None => Ok(()),
    }
}

#[async_trait]
pub trait ExecutionStore: Send + Sync + 'static {
    /// Records new executions (initial statuses, first transitions) atomically, unless
    /// `dedup`'s key was recorded within its window: then nothing is created and the
    /// executions of the first time are returned. Check and creation are one atomic step,
    /// so concurrent duplicates create exactly one set.
    async fn create_executions(
        &self,
        batch: &[NewExecution],
        dedup: Option<&DedupKey>,
    ) -> StoreResult<Created>;

    /// Records one new execution.
    async fn create_execution(&self, e: &Execution, reason: Option<&str>) -> StoreResult<()> {
        let batch = [NewExecution {
            execution: e.clone(),
            reason: reason.map(str::to_string),
        }];
        self.create_executions(&batch, None).await.map(|_| ())
    }

    /// Records the batches of one delivery, each as [`ExecutionStore::create_executions`]
    /// would (its own dedup key), with `body` stored once: on the first execution created,
    /// the others referring to it (`body_of`). Adapters that can make it one atomic step do.
    async fn create_batches(
        &self,
        batches: &[Batch],
        body: Option<&str>,
    ) -> StoreResult<Vec<Created>> {
        let mut holder = BodyHolder::new(body);
        let mut out = Vec::with_capacity(batches.len());
        for b in batches {
            let batch = holder.batch(&b.executions);
            let created = self.create_executions(&batch, b.dedup.as_ref()).await?;
            holder.created(&batch, &created);
            out.push(created);
        }
        Ok(out)
    }

    /// Forgets dedup keys recorded before `before`.
    async fn purge_dedup(&self, before: Timestamp) -> StoreResult<usize>;

    /// One execution with its transitions.
    async fn get_execution(&self, id: &ExecId) -> StoreResult<Option<Execution>>;
    /// Executions newest first, without transitions and without output (`output` is `None`).
    async fn list_executions(&self, q: &ExecutionQuery) -> StoreResult<Page<Execution>>;
    /// Checked, atomic state change; returns the execution as it now is.
    async fn transition(
        &self,
        id: &ExecId,
        change: &StatusChange,
        at: Timestamp,
    ) -> StoreResult<Execution>;
    /// Records that the worker running `id` is alive. Returns false when the execution is
    /// no longer running (the worker should stop it).
    async fn heartbeat(&self, id: &ExecId, at: Timestamp) -> StoreResult<bool>;
    /// Records what became of an execution's verification run (the execution may have
    /// ended: this is the one change made to an ended execution).
    async fn set_verification(
        &self,
        id: &ExecId,
        v: &crate::verify::Verification,
    ) -> StoreResult<()>;
    /// Executions in `status`, oldest first (for the reaper and recovery).
    async fn executions_in(&self, status: Status, limit: usize) -> StoreResult<Vec<Execution>>;
}
