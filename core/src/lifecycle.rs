//! Decisions about executions nobody reports on, as pure functions of the execution and
//! the clock: the orchestrator's reaper reads, asks here, and writes what is decided.
//!
//! Every change decided on what was read says which status it applies from
//! (`only_from`), so a report that arrives between the read and the write wins.

use std::time::Duration;

use crate::execution::{Execution, Status, StatusChange};
use crate::time::Timestamp;

/// When an execution was last known to move: its last heartbeat, else its start (a
/// requeued one keeps those of its lost attempt), else its request.
pub fn last_sign_of_life(e: &Execution) -> Timestamp {
    e.heartbeat_at.or(e.started_at).unwrap_or(e.requested_at)
}

fn silent_since(e: &Execution, now: Timestamp, limit: Duration) -> bool {
    chrono::Duration::from_std(limit).is_ok_and(|limit| last_sign_of_life(e) < now - limit)
}

/// A queued execution no worker started within `queue_timeout` ends `error`: a pool
/// nobody serves, or a job lost between recording and queueing, would otherwise wait
/// forever, and a remediation hours after its alert is more likely harm than help.
pub fn queue_expiry(
    e: &Execution,
    now: Timestamp,
    queue_timeout: Duration,
) -> Option<StatusChange> {
    // A run that may not start yet (a verification's delay) is queued from then on.
    let not_yet = e.not_before.is_some_and(|t| {
        chrono::Duration::from_std(queue_timeout).is_ok_and(|limit| now < t + limit)
    });
    if e.status != Status::Accepted || not_yet || !silent_since(e, now, queue_timeout) {
        return None;
    }
    let reason = format!(
        "not started within {} s of being queued: no worker of pool '{}' took it, or its job \
         was lost",
        queue_timeout.as_secs(),
        e.pool
    );
    Some(
        StatusChange::to(Status::Error)
            .reason(reason)
            .only_from(Status::Accepted),
    )
}

/// Why a running execution is lost (no heartbeat for `lost_after`), if it is.
pub fn lost_reason(e: &Execution, now: Timestamp, lost_after: Duration) -> Option<String> {
    (e.status == Status::Running && silent_since(e, now, lost_after)).then(|| {
        format!(
            "no heartbeat from worker {} for over {} s",
            e.worker_id.as_deref().unwrap_or("?"),
            lost_after.as_secs()
        )
    })
}

/// Times a lost run was put back in the queue.
pub fn retries_done(e: &Execution) -> u32 {
    let n = e
        .transitions
        .iter()
        .filter(|t| t.from == Some(Status::Running) && t.to == Status::Accepted)
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// What becomes of a lost run (`lost` says why): back to `accepted` for another attempt
/// when its schema allows retries and some are left, else `lost`.
pub fn after_lost(e: &Execution, lost: &str) -> StatusChange {
    let done = retries_done(e);
    if done < e.retry_on_lost {
        let reason = format!(
            "{lost}; requeued (retry {} of {})",
            done + 1,
            e.retry_on_lost
        );
        return StatusChange::to(Status::Accepted)
            .reason(reason)
            .only_from(Status::Running);
    }
    StatusChange::to(Status::Lost).reason(lost)
}

/// What becomes of an execution whose job was given up after `deliveries` deliveries
/// (dead-lettered): ended, `lost` if it was running, else `error`; nothing if it ended.
pub fn after_dead_letter(e: &Execution, deliveries: u32) -> Option<StatusChange> {
    if e.status.is_terminal() {
        return None;
    }
    let status = if e.status == Status::Running {
        Status::Lost
    } else {
        Status::Error
    };
    Some(StatusChange::to(status).reason(format!(
        "job given up after {deliveries} deliveries without a result"
    )))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::conformance::new_execution;

    fn at(e: &Execution, secs: i64) -> Timestamp {
        e.requested_at + chrono::Duration::seconds(secs)
    }

    #[test]
    fn a_queued_execution_expires_only_after_its_timeout() {
        let e = new_execution("a", Status::Accepted);
        let t = Duration::from_secs(60);
        assert!(queue_expiry(&e, at(&e, 59), t).is_none());
        let c = queue_expiry(&e, at(&e, 61), t).unwrap();
        assert_eq!((c.to, c.only_from), (Status::Error, Some(Status::Accepted)));
        let mut running = e.clone();
        running.status = Status::Running;
        assert!(queue_expiry(&running, at(&e, 600), t).is_none());
    }

    #[test]
    fn the_last_heartbeat_keeps_a_run_alive() {
        let mut e = new_execution("a", Status::Accepted);
        e.status = Status::Running;
        e.started_at = Some(at(&e, 10));
        e.heartbeat_at = Some(at(&e, 100));
        let limit = Duration::from_secs(90);
        assert!(lost_reason(&e, at(&e, 189), limit).is_none());
        let why = lost_reason(&e, at(&e, 191), limit).unwrap();
        assert!(why.contains("for over 90 s"), "{why}");
    }

    #[test]
    fn a_lost_run_is_retried_while_retries_are_left() {
        let mut e = new_execution("a", Status::Accepted);
        e.retry_on_lost = 1;
        let start = StatusChange::to(Status::Running);
        let t0 = e.requested_at;
        let t = start.apply(&mut e, t0).unwrap();
        e.transitions.push(t);
        let c = after_lost(&e, "gone");
        assert_eq!(c.to, Status::Accepted);
        assert_eq!(c.reason.as_deref(), Some("gone; requeued (retry 1 of 1)"));
        let t = c.apply(&mut e, t0).unwrap();
        e.transitions.push(t);
        let t = start.apply(&mut e, t0).unwrap();
        e.transitions.push(t);
        assert_eq!(retries_done(&e), 1);
        assert_eq!(after_lost(&e, "gone again").to, Status::Lost);
    }

    #[test]
    fn a_dead_letter_ends_what_has_not_ended() {
        let mut e = new_execution("a", Status::Accepted);
        assert_eq!(after_dead_letter(&e, 5).unwrap().to, Status::Error);
        e.status = Status::Running;
        assert_eq!(after_dead_letter(&e, 5).unwrap().to, Status::Lost);
        e.status = Status::Succeeded;
        assert!(after_dead_letter(&e, 5).is_none());
    }
}
