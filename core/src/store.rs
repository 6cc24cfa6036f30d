//! The `Store` port: durable state of the catalog and of executions.
//!
//! Adapters: `cloudo_sqlite::SqliteStore` (embedded) and `cloudo_azure::AzureStore`; an Azure Table Storage adapter comes
//! behind the same trait. Every state change goes through [`Store::transition`], which both
//! checks the state machine and writes atomically (compare-and-set), so the orchestrator can
//! be the single logical writer even when it runs as several replicas.

use async_trait::async_trait;

use crate::auth::{ApiKey, AuditRecord};
use crate::execution::{ExecId, Execution, IllegalTransition, Status, StatusChange};
use crate::notify::Notification;
use crate::schema::Schema;
use crate::time::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("execution {0} not found")]
    NotFound(ExecId),
    #[error("execution {exec_id} already exists")]
    Duplicate { exec_id: ExecId },
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error("invalid cursor")]
    BadCursor,
    #[error("{0}")]
    Conflict(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Filters and paging for [`Store::list_executions`]; newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecutionQuery {
    pub status: Option<Status>,
    pub schema_id: Option<String>,
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

/// What [`Store::create_executions`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    New,
    /// The key was seen within the window: nothing was created; these are the executions
    /// created the first time.
    Duplicate(Vec<ExecId>),
}

/// Filters and paging for [`Store::list_audit`]; newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    pub actor: Option<String>,
    /// Matches the start of the action, e.g. `POST` or `DELETE /api/keys`.
    pub action: Option<String>,
    pub limit: usize,
    pub cursor: Option<String>,
}

/// A worker instance as it last reported itself (`GET /api/workers`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkerInfo {
    /// Unique per process (`host-pid-start`).
    pub id: String,
    /// The pools it serves.
    pub pools: Vec<String>,
    pub version: String,
    /// How many runbooks it runs at once.
    pub capacity: u32,
    /// Executions it is running now.
    pub running: Vec<ExecId>,
    #[serde(with = "crate::time::serde_rfc3339")]
    pub started_at: Timestamp,
    #[serde(with = "crate::time::serde_rfc3339")]
    pub last_seen: Timestamp,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// A page from up to `limit + 1` items fetched with their cursors: the one beyond
    /// `limit` only says that a next page exists, which starts after the last item kept.
    pub fn overfetched<C: ToString>(mut items: Vec<(T, C)>, limit: usize) -> Self {
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|(_, c)| c.to_string())
        } else {
            None
        };
        Self {
            items: items.into_iter().map(|(x, _)| x).collect(),
            next,
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
pub trait Store: Send + Sync + 'static {
    /// Replaces the stored catalog.
    async fn replace_schemas(&self, schemas: &[Schema]) -> StoreResult<()>;
    async fn list_schemas(&self) -> StoreResult<Vec<Schema>>;

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

    /// Records the batches of one delivery, each as [`Store::create_executions`] would (its
    /// own dedup key), with `body` stored once: on the first execution created, the others
    /// referring to it (`body_of`). Adapters that can make it one atomic step do.
    async fn create_batches(
        &self,
        batches: &[Batch],
        body: Option<&str>,
    ) -> StoreResult<Vec<Created>> {
        let mut holder: Option<ExecId> = None;
        let mut out = Vec::with_capacity(batches.len());
        for b in batches {
            let batch = share_body(&b.executions, body, holder.as_ref());
            let created = self.create_executions(&batch, b.dedup.as_ref()).await?;
            if created == Created::New && holder.is_none() && body.is_some() {
                holder = batch.first().map(|n| n.execution.exec_id.clone());
            }
            out.push(created);
        }
        Ok(out)
    }

    /// Forgets dedup keys recorded before `before`.
    async fn purge_dedup(&self, before: Timestamp) -> StoreResult<usize>;

    /// Stores a key; `replace` overwrites one of the same name, else a name in use is a
    /// [`StoreError::Conflict`].
    async fn put_key(&self, key: &ApiKey, replace: bool) -> StoreResult<()>;
    async fn list_keys(&self) -> StoreResult<Vec<ApiKey>>;
    async fn key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKey>>;
    /// Revokes (deletes) a key; false if there was none of that name.
    async fn delete_key(&self, name: &str) -> StoreResult<bool>;
    async fn touch_key(&self, name: &str, at: Timestamp) -> StoreResult<()>;

    async fn append_audit(&self, record: &AuditRecord) -> StoreResult<()>;
    /// Several records at once (one transaction where the adapter can).
    async fn append_audit_batch(&self, records: &[AuditRecord]) -> StoreResult<()> {
        for r in records {
            self.append_audit(r).await?;
        }
        Ok(())
    }
    async fn list_audit(&self, q: &AuditQuery) -> StoreResult<Page<AuditRecord>>;

    /// Small named documents (routing rules, ...).
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>>;
    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()>;
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
    /// Records that the worker running `id` is alive, with the output so far when it
    /// changed (the live view; the final output replaces it). Returns false when the
    /// execution is no longer running (the worker should stop it).
    async fn heartbeat(
        &self,
        id: &ExecId,
        at: Timestamp,
        output: Option<&str>,
    ) -> StoreResult<bool>;
    /// Executions in `status`, oldest first (for the reaper and recovery).
    async fn executions_in(&self, status: Status, limit: usize) -> StoreResult<Vec<Execution>>;
    /// Adds notifications to the outbox.
    async fn add_notifications(&self, n: &[Notification]) -> StoreResult<()>;
    /// Replaces a notification (by id): its delivery state.
    async fn update_notification(&self, n: &Notification) -> StoreResult<()>;
    /// Held and pending notifications, oldest first.
    async fn open_notifications(&self, limit: usize) -> StoreResult<Vec<Notification>>;
    /// Every notification of an execution, oldest first.
    async fn notifications_for(&self, id: &ExecId) -> StoreResult<Vec<Notification>>;

    /// Records a worker's latest report (replacing its previous one).
    async fn put_worker(&self, w: &WorkerInfo) -> StoreResult<()>;
    /// Workers seen since `since`, by id.
    async fn list_workers(&self, since: Timestamp) -> StoreResult<Vec<WorkerInfo>>;

    /// Takes or renews the named lease for `holder` until `now + ttl`: true when `holder`
    /// holds it now. Another holder's lease is taken only once it has expired, and two
    /// contenders never both get true (this is how one of many orchestrators becomes the
    /// reaper).
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
        now: Timestamp,
    ) -> StoreResult<bool>;

    /// Cheap round trip, for readiness.
    async fn ping(&self) -> StoreResult<()>;
}
