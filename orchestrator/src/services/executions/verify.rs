//! Verification runs: when an execution whose schema has `verify` succeeds, its
//! verification is recorded (accepted, its job not to start before the delay) with the same
//! variables and body; when a verification ends, its outcome is recorded on the original
//! (`verification: passed|failed`). A failed one of an on-call schema pages like any
//! on-call failure: it is an on-call execution with the original's alert.

use std::time::Duration;

use cloudo_core::store::{Batch, DedupKey, NewExecution};
use cloudo_core::verify::{self, Outcome, Verification};
use cloudo_core::{Execution, Status, time};

use super::Executions;

impl Executions {
    /// What an ended execution means for verification (see the module).
    pub(super) async fn after_end(&self, e: &Execution) {
        if let Some(of) = &e.verify_of {
            let v = Verification {
                status: verify::outcome(e.status),
                exec_id: e.exec_id.clone(),
            };
            tracing::info!(exec_id = %of, verification = %e.exec_id, outcome = ?v.status,
                "verification ended");
            if let Err(err) = self.store.set_verification(of, &v).await {
                tracing::error!(exec_id = %of, error = %err, "cannot record a verification");
            }
            return;
        }
        if e.status == Status::Succeeded && e.verify.is_some() {
            // On its own task: recording it goes through the hub again.
            let (ex, id) = (self.clone(), e.exec_id.clone());
            tokio::spawn(async move {
                match ex.store.get_execution(&id).await {
                    Ok(Some(original)) => ex.start_verification(original).await,
                    Ok(None) => {}
                    Err(err) => tracing::error!(exec_id = %id, error = %err,
                        "cannot read a run to verify"),
                }
            });
        }
    }

    /// Boxed: recording it goes through `submit` and `change`, which lead back here, so the
    /// future's type must be named to be `Send`.
    fn start_verification(
        &self,
        original: Execution,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(self.record_verification(original))
    }

    async fn record_verification(&self, original: Execution) {
        let now = time::now();
        let Some(v) = verify::verification_of(&original, now) else {
            return;
        };
        let (id, env, body) = (
            v.exec_id.clone(),
            v.env.clone(),
            original.request_body.clone(),
        );
        let delay = original.verify.as_ref().map_or(0, |x| x.delay_secs);
        let batch = Batch {
            executions: vec![NewExecution {
                execution: v,
                reason: Some(format!(
                    "verifies {} (runs {delay} s after its success)",
                    original.exec_id
                )),
            }],
            // One verification per run, whoever records it.
            dedup: Some(DedupKey {
                key: format!("verify:{}", original.exec_id),
                window: Duration::from_secs(86_400),
            }),
        };
        if let Err(err) = self.submit(vec![(batch, env)], body.as_deref()).await {
            tracing::error!(exec_id = %original.exec_id, error = %err,
                "cannot record the verification run");
            return;
        }
        let pending = Verification {
            status: Outcome::Pending,
            exec_id: id,
        };
        if let Err(err) = self
            .store
            .set_verification(&original.exec_id, &pending)
            .await
        {
            tracing::error!(exec_id = %original.exec_id, error = %err,
                "cannot record a verification");
        }
    }
}
