//! [`Intake`] on SQLite: the executions and their jobs in one transaction (the store and
//! the queue share the database), so an accepted execution never waits for a job a crash
//! lost; and a run's end with its job's acknowledgement. A run costs two commits less.

use async_trait::async_trait;

use crate::SqliteQueue;
use crate::executions::transition_in;
use crate::messages::{Message, delete_leased, insert_messages, message};
use crate::rows::create_all;
use crate::store::db_err;
use cloudo_core::store::{BatchWithJobs, Created, Intake, StoreError, StoreResult, check_initial};
use cloudo_core::time::Timestamp;
use cloudo_core::{ExecId, Execution, Lease, StatusChange};

#[async_trait]
impl Intake for SqliteQueue {
    async fn create_and_enqueue(
        &self,
        batches: Vec<BatchWithJobs>,
        body: Option<&str>,
    ) -> StoreResult<Vec<(Created, Vec<String>)>> {
        let mut rows: Vec<Vec<Message>> = Vec::with_capacity(batches.len());
        let mut held = Vec::with_capacity(batches.len());
        for (batch, jobs) in batches {
            check_initial(&batch.executions)?;
            let messages = jobs
                .iter()
                .map(|(pool, job)| message(pool, job))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            rows.push(messages);
            held.push(batch);
        }
        let body = body.map(str::to_string);
        let (out, mut pools) = self
            .db()
            .write(move |tx| {
                let created = create_all(tx, held.iter(), body.as_deref())?;
                let mut out = Vec::with_capacity(created.len());
                let mut pools = Vec::new();
                for (created, messages) in created.into_iter().zip(rows) {
                    if created != Created::New {
                        out.push((created, Vec::new()));
                        continue;
                    }
                    insert_messages(tx, &messages).map_err(db_err)?;
                    pools.extend(messages.iter().map(|(_, pool, _)| pool.clone()));
                    out.push((created, messages.into_iter().map(|(id, ..)| id).collect()));
                }
                Ok::<_, StoreError>((out, pools))
            })
            .await?;
        self.ready(&mut pools);
        Ok(out)
    }

    async fn transition_and_ack(
        &self,
        id: &ExecId,
        change: &StatusChange,
        at: Timestamp,
        lease: &Lease,
    ) -> StoreResult<(Execution, bool)> {
        let (id, change) = (id.clone(), change.clone());
        let (message, receipt) = (lease.message_id.clone(), lease.pop_receipt.clone());
        self.db()
            .write(move |tx| {
                let e = transition_in(tx, &id, &change, at)?;
                let acked = delete_leased(tx, &message, &receipt).map_err(db_err)? == 1;
                Ok((e, acked))
            })
            .await
    }
}
