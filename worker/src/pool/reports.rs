//! What a running job tells the orchestrator: heartbeats with the output its log does not
//! have yet (which may answer "stop"), the rest of the output, and the final change.

use std::sync::Arc;
use std::time::Duration;

use cloudo_core::{ExecId, Job, StatusChange};
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;

use super::PoolParts;
use crate::output::{LOG_PIECE_MAX, LiveOutput};
use crate::reporter::{LogPiece, ReportError, Reporter, RunRef};
use cloudo_core::Lease;

/// Reports the final state, retrying while the orchestrator is unavailable; returns
/// whether the job's message (`lease`) was acknowledged with it.
pub(super) async fn report_finish(
    reporter: &dyn Reporter,
    job: &Job,
    run: &RunRef,
    change: StatusChange,
    log: Option<LogPiece>,
    lease: &Lease,
) -> bool {
    let mut delay = Duration::from_millis(100);
    let mut attempt = 0u64;
    loop {
        attempt += 1;
        match reporter
            .finish_and_ack(&job.exec_id, run, change.clone(), log.as_ref(), lease)
            .await
        {
            Ok(acked) => return acked,
            Err(ReportError::Refused(why) | ReportError::Gone(why)) => {
                tracing::warn!(exec_id = %job.exec_id, reason = %why, "final status refused");
                return false;
            }
            Err(ReportError::Retry(why)) => {
                tracing::warn!(exec_id = %job.exec_id, attempt, reason = %why,
                    "cannot report final status yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// How soon what a runbook prints goes to the orchestrator (a watcher sees it about this
/// late, plus the hop through the store).
const OUTPUT_EVERY: Duration = Duration::from_millis(250);

/// Heartbeats the execution every `heartbeat` and renews the lease every third of its
/// `visibility`, sending output every [`OUTPUT_EVERY`] while there is some, until told
/// to stop.
pub(super) async fn keep_alive(
    lease: Arc<Mutex<Lease>>,
    parts: PoolParts,
    (job, run, live, cancel): (Job, RunRef, LiveOutput, CancellationToken),
    (visibility, heartbeat): (Duration, Duration),
    mut stop: watch::Receiver<bool>,
) {
    let exec_id = job.exec_id.clone();
    let renew_every = (visibility / 3).max(Duration::from_millis(100));
    let every = heartbeat.min(renew_every).max(Duration::from_millis(100));
    let mut renewed_at = tokio::time::Instant::now();
    let mut reported_at = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every.min(OUTPUT_EVERY)) => {}
            _ = stop.changed() => return,
        }
        // Output goes out as it comes; without any, a heartbeat every `every`.
        if live.pending() == 0 && reported_at.elapsed() + OUTPUT_EVERY / 2 < every {
            continue;
        }
        reported_at = tokio::time::Instant::now();
        if renewed_at.elapsed() + every > renew_every {
            let mut held = lease.lock().await;
            match parts.queue.renew(&held, visibility).await {
                Ok(renewed) => {
                    *held = renewed;
                    renewed_at = tokio::time::Instant::now();
                }
                // The run ended meanwhile, its job acknowledged with its final report.
                Err(_) if *stop.borrow() => return,
                Err(e) => tracing::warn!(exec_id = %exec_id, error = %e, "cannot renew lease"),
            }
        }
        match send_log(&*parts.reporter, &exec_id, &run, &live).await {
            Ok(true) => {}
            // Ended elsewhere (cancelled, or settled as lost): stop the runbook.
            Ok(false) => {
                tracing::info!(exec_id = %exec_id, "the orchestrator says stop; stopping the run");
                cancel.cancel();
            }
            Err(e) => tracing::warn!(exec_id = %exec_id, error = %e, "heartbeat failed"),
        }
    }
}

/// A heartbeat carrying the output the orchestrator does not have yet (already masked: the
/// sandbox masks each stream before anything is shown). Returns whether the run should go on.
async fn send_log(
    reporter: &dyn Reporter,
    exec_id: &ExecId,
    run: &RunRef,
    live: &LiveOutput,
) -> Result<bool, ReportError> {
    let log = live
        .piece(LOG_PIECE_MAX)
        .map(|(offset, data)| LogPiece { offset, data });
    let answer = reporter.heartbeat(exec_id, run, log.as_ref()).await?;
    if let Some(size) = answer.log_size {
        live.ack(size);
    }
    Ok(answer.running)
}

/// Sends what is left of the run's output, beyond the last piece the final report carries,
/// before that report (a few tries: the final report has the output's head and tail anyway).
pub(super) async fn flush_log(
    reporter: &dyn Reporter,
    exec_id: &ExecId,
    run: &RunRef,
    live: &LiveOutput,
) {
    let mut failures = 0;
    while live.pending() > LOG_PIECE_MAX {
        match send_log(reporter, exec_id, run, live).await {
            Ok(true) => {}
            Ok(false) | Err(ReportError::Refused(_) | ReportError::Gone(_)) => return,
            Err(ReportError::Retry(why)) => {
                failures += 1;
                if failures > 4 {
                    tracing::warn!(exec_id = %exec_id, reason = %why, "cannot send the end of the output");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200 << failures)).await;
            }
        }
    }
}
