//! From a delivery's batches to recorded executions and queued jobs: in one commit through
//! the backend's [`Intake`] when it has one (embedded) and nothing has limits to pass;
//! else recorded, taken through their limits, then queued.

use std::collections::VecDeque;
use std::sync::Arc;

use cloudo_core::Status;
use cloudo_core::queue::QueueResult;
use cloudo_core::store::{Batch, Created, Intake};

use super::gates::Gate;
use super::{Executions, TriggerError, job_of};

/// What became of each batch; the gate of each new accepted execution, in order; the
/// queue's answer for each of those whose gate said go, in order.
pub(super) type Intaken = (Vec<Created>, VecDeque<Gate>, Vec<QueueResult<String>>);

/// The accepted executions of `b`, in order.
fn accepted(b: &Batch) -> impl Iterator<Item = &cloudo_core::Execution> {
    b.executions
        .iter()
        .map(|n| &n.execution)
        .filter(|e| e.status == Status::Accepted)
}

impl Executions {
    /// Records and queues in one commit where the backend can (`Intake`).
    pub fn with_intake(mut self, intake: Arc<dyn Intake>) -> Self {
        self.intake = Some(intake);
        self
    }

    /// Records `batches` (the body stored once) and queues the jobs of their new accepted
    /// executions that may go. Returns only once all are committed.
    pub(super) async fn record_and_queue(
        &self,
        batches: &[Batch],
        body: Option<&str>,
    ) -> Result<Intaken, TriggerError> {
        if let Some(intake) = &self.intake
            && !batches.iter().flat_map(accepted).any(|e| self.gated(e))
        {
            let with_jobs = batches
                .iter()
                .map(|b| {
                    let jobs = accepted(b).map(|e| job_of(e, body)).collect();
                    (b.clone(), jobs)
                })
                .collect();
            let out = crate::services::metered::timed(
                "create_and_enqueue",
                intake.create_and_enqueue(with_jobs, body),
            )
            .await?;
            let mut created = Vec::with_capacity(out.len());
            let (mut gates, mut queued) = (VecDeque::new(), Vec::new());
            for (c, ids) in out {
                gates.extend(ids.iter().map(|_| Gate::Go));
                queued.extend(ids.into_iter().map(Ok));
                created.push(c);
            }
            return Ok((created, gates, queued));
        }
        let created = self.store.create_batches(batches, body).await?;
        let mut gates = VecDeque::new();
        let mut jobs = Vec::new();
        for (batch, created) in batches.iter().zip(&created) {
            if *created != Created::New {
                continue;
            }
            for e in accepted(batch) {
                let gate = if self.gated(e) {
                    self.gate(e).await
                } else {
                    Gate::Go
                };
                if gate == Gate::Go {
                    jobs.push(job_of(e, body));
                }
                gates.push_back(gate);
            }
        }
        let queued = self.queue.enqueue_many(&jobs).await;
        Ok((created, gates, queued))
    }
}
