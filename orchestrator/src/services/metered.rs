//! The store with every call timed and its failures counted, by operation (the port's
//! method name): `cloudo_store_operation_duration_seconds` and `cloudo_store_errors_total`.
//! The engine wraps whichever backend it opened, so SQLite and Azure report alike.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cloudo_core::approval::Decision;
use cloudo_core::auth::{ApiKey, AuditRecord};
use cloudo_core::notify::Notification;
use cloudo_core::store::{
    AccessStore, ApprovalStore, AuditQuery, Batch, CatalogStore, Coordination, Created, DedupKey,
    ExecutionQuery, ExecutionStore, LogRead, LogStore, NewExecution, Outbox, Page, SchemaEdit,
    StateStore, StoreResult, Versioned, WorkerInfo,
};
use cloudo_core::time::Timestamp;
use cloudo_core::{ExecId, Execution, Schema, Status, StatusChange, Store};
use cloudo_worker::metrics::{STORE_DURATION, STORE_ERRORS};

/// A store whose calls are measured.
pub struct MeteredStore(pub Arc<dyn Store>);

impl std::fmt::Debug for MeteredStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MeteredStore")
    }
}

pub(crate) async fn timed<T>(
    operation: &'static str,
    call: impl std::future::Future<Output = StoreResult<T>>,
) -> StoreResult<T> {
    let start = Instant::now();
    let out = call.await;
    record(operation, start.elapsed(), out.is_err());
    out
}

fn record(operation: &'static str, took: Duration, failed: bool) {
    metrics::histogram!(STORE_DURATION, "operation" => operation).record(took.as_secs_f64());
    if failed {
        metrics::counter!(STORE_ERRORS, "operation" => operation).increment(1);
    }
}

/// Each method forwards to the inner store through [`timed`], named after itself.
macro_rules! metered {
    ($trait:ident { $( fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )* }) => {
        #[async_trait]
        impl $trait for MeteredStore {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    timed(stringify!($name), self.0.$name($($arg),*)).await
                }
            )*
        }
    };
}

metered!(ExecutionStore {
    fn create_executions(&self, batch: &[NewExecution], dedup: Option<&DedupKey>) -> StoreResult<Created>;
    fn create_batches(&self, batches: &[Batch], body: Option<&str>) -> StoreResult<Vec<Created>>;
    fn purge_dedup(&self, before: Timestamp) -> StoreResult<usize>;
    fn get_execution(&self, id: &ExecId) -> StoreResult<Option<Execution>>;
    fn list_executions(&self, q: &ExecutionQuery) -> StoreResult<Page<Execution>>;
    fn transition(&self, id: &ExecId, change: &StatusChange, at: Timestamp) -> StoreResult<Execution>;
    fn heartbeat(&self, id: &ExecId, at: Timestamp) -> StoreResult<bool>;
    fn set_verification(&self, id: &ExecId, v: &cloudo_core::verify::Verification) -> StoreResult<()>;
    fn executions_in(&self, status: Status, limit: usize) -> StoreResult<Vec<Execution>>;
});

metered!(CatalogStore {
    fn replace_schemas(&self, schemas: &[Schema]) -> StoreResult<()>;
    fn list_schemas(&self) -> StoreResult<Vec<Schema>>;
    fn edit_schemas(&self, f: SchemaEdit) -> StoreResult<Result<Vec<Schema>, String>>;
});

metered!(AccessStore {
    fn put_key(&self, key: &ApiKey, replace: bool) -> StoreResult<()>;
    fn list_keys(&self) -> StoreResult<Vec<ApiKey>>;
    fn key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKey>>;
    fn delete_key(&self, name: &str) -> StoreResult<bool>;
    fn touch_key(&self, name: &str, at: Timestamp) -> StoreResult<()>;
    fn append_audit_batch(&self, records: &[AuditRecord]) -> StoreResult<()>;
    fn list_audit(&self, q: &AuditQuery) -> StoreResult<Page<AuditRecord>>;
});

metered!(Outbox {
    fn add_notifications(&self, n: &[Notification]) -> StoreResult<()>;
    fn update_notification(&self, n: &Notification) -> StoreResult<()>;
    fn open_notifications(&self, limit: usize) -> StoreResult<Vec<Notification>>;
    fn notifications_for(&self, id: &ExecId) -> StoreResult<Vec<Notification>>;
});

metered!(Coordination {
    fn get_setting(&self, key: &str) -> StoreResult<Option<String>>;
    fn put_setting(&self, key: &str, value: &str) -> StoreResult<()>;
    fn init_setting(&self, key: &str, value: &str) -> StoreResult<String>;
    fn put_worker(&self, w: &WorkerInfo) -> StoreResult<()>;
    fn list_workers(&self, since: Timestamp) -> StoreResult<Vec<WorkerInfo>>;
    fn try_lease(&self, name: &str, holder: &str, ttl: Duration, now: Timestamp) -> StoreResult<bool>;
    fn ping(&self) -> StoreResult<()>;
});

metered!(LogStore {
    fn append_log(&self, id: &ExecId, offset: u64, chunk: &[u8], cap: u64) -> StoreResult<u64>;
    fn read_log(&self, id: &ExecId, from: u64, limit: usize) -> StoreResult<LogRead>;
});

metered!(ApprovalStore {
    fn add_decision(&self, id: &ExecId, decision: &Decision) -> StoreResult<Execution>;
});

metered!(StateStore {
    fn read_state(&self, key: &str) -> StoreResult<Option<Versioned>>;
    fn write_state(&self, key: &str, value: &str, expected: Option<&str>) -> StoreResult<bool>;
    fn delete_state(&self, key: &str, expected: &str) -> StoreResult<bool>;
    fn list_state(&self, prefix: &str) -> StoreResult<Vec<(String, Versioned)>>;
});
