//! The audit writer: records from the auth layer, stored in batches.

use std::sync::Arc;
use std::time::Duration;

use cloudo_core::Store;
use cloudo_core::auth::AuditRecord;
use tokio::sync::{mpsc, oneshot};

/// How long the writer waits for more records after the first of a batch: a request at a
/// time (one run after the other) then shares a commit with the next few instead of
/// costing one of its own. The audit listing flushes first, so it never misses a record.
const LINGER: Duration = Duration::from_millis(50);

/// Most records in one commit.
const MAX_BATCH: usize = 1000;

#[derive(Debug)]
enum Message {
    Record(AuditRecord),
    /// Write what has queued up now; answered once it is stored (or failed to be).
    Flush(oneshot::Sender<()>),
}

/// Audit records go through one writer task that stores them in batches (one transaction
/// for whatever queued up within [`LINGER`] of a batch's first record), so auditing costs
/// the request path a channel send.
#[derive(Debug, Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<Message>,
}

impl AuditSink {
    /// The sink and its writer; the writer ends (after writing everything) when the last
    /// sink is dropped.
    pub fn start(store: Arc<dyn Store>) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel::<Message>(16_384);
        (Self { tx }, tokio::spawn(write_batches(store, rx)))
    }

    pub(super) async fn record(&self, r: AuditRecord) {
        if self.tx.send(Message::Record(r)).await.is_err() {
            tracing::error!("audit writer is gone; record lost");
        }
    }

    /// Returns once every record queued before this call is stored (or failed to be): a
    /// read of the audit that follows sees them.
    pub(super) async fn flush(&self) {
        let (done, stored) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = stored.await;
        }
    }
}

async fn write_batches(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Message>) {
    while let Some(first) = rx.recv().await {
        let mut batch = Vec::new();
        let mut flushes = Vec::new();
        let mut open = true;
        match first {
            Message::Record(r) => batch.push(r),
            Message::Flush(done) => flushes.push(done),
        }
        // Gathers until the linger is over, the batch is full, or someone waits for it.
        let until = tokio::time::Instant::now() + LINGER;
        while flushes.is_empty() && batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(Message::Record(r))) => batch.push(r),
                Ok(Some(Message::Flush(done))) => flushes.push(done),
                Ok(None) => {
                    open = false;
                    break;
                }
                Err(_) => break,
            }
        }
        // What else is already queued goes in too.
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Message::Record(r)) => batch.push(r),
                Ok(Message::Flush(done)) => flushes.push(done),
                Err(_) => break,
            }
        }
        if !batch.is_empty()
            && let Err(e) = store.append_audit_batch(&batch).await
        {
            tracing::error!(error = %e, records = batch.len(), "cannot write audit records");
        }
        for done in flushes {
            let _ = done.send(());
        }
        if !open {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use cloudo_core::store::AuditQuery;

    fn record(n: usize) -> AuditRecord {
        AuditRecord {
            at: cloudo_core::time::now(),
            actor: format!("k{n}"),
            role: "admin".into(),
            action: "POST /api/Trigger".into(),
            target: "/api/Trigger".into(),
            source: "127.0.0.1".into(),
            outcome: 202,
        }
    }

    async fn stored(store: &Arc<dyn Store>) -> usize {
        let q = AuditQuery {
            actor: None,
            action: None,
            limit: 1000,
            cursor: None,
        };
        store.list_audit(&q).await.unwrap().items.len()
    }

    /// A flush returns once what was recorded before it is stored, and the writer writes
    /// what is left when the last sink goes.
    #[tokio::test]
    async fn a_flush_stores_what_came_before_and_the_last_sink_writes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let db =
            cloudo_sqlite::Db::open(&dir.path().join("t.db"), cloudo_sqlite::Durability::Process)
                .unwrap();
        let store: Arc<dyn Store> = Arc::new(cloudo_sqlite::SqliteStore::new(db));
        let (sink, writer) = AuditSink::start(store.clone());
        for n in 0..3 {
            sink.record(record(n)).await;
        }
        sink.flush().await;
        assert_eq!(stored(&store).await, 3);
        sink.record(record(3)).await;
        drop(sink);
        writer.await.unwrap();
        assert_eq!(stored(&store).await, 4);
    }
}
