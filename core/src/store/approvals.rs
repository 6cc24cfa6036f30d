//! [`ApprovalStore`]: decisions on pending executions, recorded one at a time.

use async_trait::async_trait;

use super::{StoreError, StoreResult};
use crate::approval::Decision;
use crate::execution::{ExecId, Execution, Status};

#[async_trait]
pub trait ApprovalStore: Send + Sync + 'static {
    /// Records `decision` on the pending execution `id`, in one atomic step with the checks
    /// of [`record_decision`]; the execution as it is then. Of concurrent decisions each
    /// lands once or is refused; none is lost.
    async fn add_decision(&self, id: &ExecId, decision: &Decision) -> StoreResult<Execution>;
}

/// The checks and the change every adapter applies inside its atomic step: the execution
/// is pending with a request, and the decider may decide ([`crate::approval::Approval::record`]).
/// Refusals are [`StoreError::Conflict`] with the reason.
pub fn record_decision(e: &mut Execution, decision: &Decision) -> StoreResult<()> {
    if e.status != Status::Pending {
        return Err(StoreError::Conflict(format!(
            "execution {} is {}, not waiting for approval",
            e.exec_id, e.status
        )));
    }
    let Some(approval) = e.approval.as_mut() else {
        return Err(StoreError::Conflict(format!(
            "execution {} has no approval request",
            e.exec_id
        )));
    };
    approval
        .record(decision.clone())
        .map_err(|r| StoreError::Conflict(r.to_string()))
}
