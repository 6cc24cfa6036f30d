//! What an execution is recorded as: born accepted, pending (approval) or skipped, and why
//! a schema declines an alert.

use cloudo_core::alert::Alert;
use cloudo_core::approval::Approval;
use cloudo_core::{Execution, Schema, Status};

use super::Request;

/// A new execution of `schema` for `req`, born in `status`, with `error` as its reason.
/// A schema that requires approval turns `accepted` into `pending`, with its request.
/// (The request's body is stored by the submission, once for all its executions.)
pub(in crate::services) fn recorded(
    schema: &Schema,
    status: Status,
    error: Option<String>,
    req: &Request,
) -> Execution {
    let gated = status == Status::Accepted && schema.require_approval;
    let status = if gated { Status::Pending } else { status };
    let mut e = Execution::new(schema, status, &req.initiator, req.team.clone(), None);
    e.error = error;
    e.dry_run = req.dry_run.unwrap_or(schema.policy.dry_run);
    if gated {
        e.approval = Some(Approval::new(
            schema.approval,
            &req.requested_by,
            e.requested_at,
        ));
    }
    e
}

/// The reason a pending execution is recorded with.
pub(super) fn waiting(e: &Execution) -> Option<String> {
    let a = e.approval.as_ref()?;
    Some(format!(
        "waiting for approval ({} needed, until {})",
        a.required,
        cloudo_core::time::rfc3339(a.expires_at)
    ))
}

/// Why `schema` does not run for `alert`, if it does not.
pub fn declines(schema: &Schema, alert: &Alert) -> Option<String> {
    if !schema.enabled {
        return Some("schema is disabled".into());
    }
    if !schema.monitor_condition.allows(alert.condition) {
        return Some(format!(
            "schema runs on {} alerts only; this alert is {}",
            schema.monitor_condition,
            alert
                .condition
                .map(|c| c.as_str())
                .unwrap_or("neither Fired nor Resolved")
        ));
    }
    if let Some(range) = schema.severity {
        match alert.severity {
            Some(s) if range.contains(s) => {}
            Some(s) => {
                return Some(format!(
                    "schema runs on {range} alerts only; this alert is {s}"
                ));
            }
            None => {
                return Some(format!(
                    "schema runs on {range} alerts only; this alert has no severity"
                ));
            }
        }
    }
    None
}
