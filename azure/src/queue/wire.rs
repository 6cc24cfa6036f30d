//! What travels on the queues and what their errors mean: the message text of a job, the
//! poison queue's wrapper, the mapping of Azure's errors to [`QueueError`], and lease
//! lengths in Azure's whole seconds.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cloudo_core::job::Job;
use cloudo_core::queue::{Lease, QueueError};
use cloudo_core::time::{self, Timestamp};
use serde::{Deserialize, Serialize};

/// What the poison queue holds: the original message text and why it is there.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Poisoned {
    #[serde(with = "time::serde_rfc3339")]
    pub(super) dead_at: Timestamp,
    pub(super) dequeue_count: u32,
    pub(super) message_id: String,
    /// The original message text (base64 JSON).
    pub(super) body: String,
}

pub(super) fn unavailable(e: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(e.to_string())
}

/// Is this error "the message or receipt is not (any more) what you hold"?
pub(super) fn lease_lost(e: &azure_core::Error) -> bool {
    match e.kind() {
        azure_core::error::ErrorKind::HttpResponse {
            status, error_code, ..
        } => {
            u16::from(*status) == 404
                || error_code.as_deref() == Some("PopReceiptMismatch")
                || error_code.as_deref() == Some("MessageNotFound")
        }
        _ => false,
    }
}

/// Maps an error on a leased message: [`QueueError::LeaseLost`] when the receipt is void.
pub(super) fn on_lease(lease: &Lease) -> impl Fn(azure_core::Error) -> QueueError + '_ {
    move |e| {
        if lease_lost(&e) {
            QueueError::LeaseLost(lease.message_id.clone())
        } else {
            unavailable(e)
        }
    }
}

pub(super) fn not_found(e: &azure_core::Error) -> bool {
    e.http_status().is_some_and(|s| u16::from(s) == 404)
}

/// Visibility timeouts are whole seconds; round up so a lease never ends early.
pub(super) fn secs(d: Duration, min: u64) -> i32 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(s.max(min))
        .unwrap_or(i32::MAX)
        .min(7 * 24 * 3600)
}

pub(super) fn decode(text: &str) -> Result<Job, String> {
    let raw = B64
        .decode(text.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    serde_json::from_slice(&raw).map_err(|e| format!("not a job: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_whole_seconds_rounded_up() {
        assert_eq!(secs(Duration::from_millis(200), 1), 1);
        assert_eq!(secs(Duration::ZERO, 0), 0);
        assert_eq!(secs(Duration::from_millis(1500), 1), 2);
    }
}
