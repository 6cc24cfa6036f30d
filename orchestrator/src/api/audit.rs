//! The audit writer: records from the auth layer, stored in batches.

use std::sync::Arc;

use cloudo_core::Store;
use cloudo_core::auth::AuditRecord;

/// Audit records go through one writer task that stores them in batches (one transaction
/// for whatever has queued up), so auditing costs the request path a channel send.
#[derive(Debug, Clone)]
pub struct AuditSink {
    tx: tokio::sync::mpsc::Sender<AuditRecord>,
}

impl AuditSink {
    /// The sink and its writer; the writer ends (after writing everything) when the last
    /// sink is dropped.
    pub fn start(store: Arc<dyn Store>) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<AuditRecord>(16_384);
        let writer = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < 1000 {
                    match rx.try_recv() {
                        Ok(r) => batch.push(r),
                        Err(_) => break,
                    }
                }
                if let Err(e) = store.append_audit_batch(&batch).await {
                    tracing::error!(error = %e, records = batch.len(), "cannot write audit records");
                }
            }
        });
        (Self { tx }, writer)
    }

    pub(super) async fn record(&self, r: AuditRecord) {
        if self.tx.send(r).await.is_err() {
            tracing::error!("audit writer is gone; record lost");
        }
    }
}
