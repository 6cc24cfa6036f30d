//! What the hub tells `/metrics` about executions: starts (with the wait since the
//! request), ends by status (with the run's duration). Every status change passes here once,
//! on the orchestrator that made it, so the sum over replicas is the whole.

use cloudo_core::{Execution, Status};
use cloudo_worker::metrics::{
    EXECUTIONS_FINISHED, EXECUTIONS_STARTED, RUN_DURATION, START_LATENCY,
};

fn secs(d: chrono::TimeDelta) -> f64 {
    d.to_std().map_or(0.0, |d| d.as_secs_f64())
}

/// Records `e`, which just reached its status.
pub(super) fn observe(e: &Execution) {
    let schema = e.schema_id.clone();
    match e.status {
        Status::Running => {
            metrics::counter!(EXECUTIONS_STARTED, "schema" => schema).increment(1);
            if let Some(started) = e.started_at {
                metrics::histogram!(START_LATENCY, "pool" => e.pool.clone())
                    .record(secs(started - e.requested_at));
            }
        }
        s if s.is_terminal() => {
            metrics::counter!(EXECUTIONS_FINISHED, "schema" => schema.clone(), "status" => s.as_str())
                .increment(1);
            if let (Some(start), Some(end)) = (e.started_at, e.finished_at) {
                metrics::histogram!(RUN_DURATION, "schema" => schema).record(secs(end - start));
            }
        }
        _ => {}
    }
}
