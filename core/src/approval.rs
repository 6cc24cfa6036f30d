//! The approval gate: a schema's policy ([`ApprovalPolicy`]), the request a pending
//! execution carries ([`Approval`]) and the rules of who may decide it.
//!
//! A schema with `require_approval` creates its executions `pending`, with an
//! [`Approval`] fixed at that moment (expiry, approvals needed, whether the requester may
//! approve). Each decision is recorded on it; enough distinct approvals accept the
//! execution, one rejection rejects it, and nobody deciding in time rejects it as expired.

use serde::{Deserialize, Serialize};

use crate::time::{self, Timestamp};

/// Default time a request waits for its approvals.
pub const DEFAULT_TIMEOUT_SECS: u64 = 3600;
/// Longest `approval_timeout` a schema may set (7 days).
pub const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 3600;
/// Most `approvals_required` a schema may set.
pub const MAX_REQUIRED: u32 = 10;
/// Longest comment kept with a decision, in bytes.
pub const MAX_COMMENT_BYTES: usize = 2000;

/// How a schema's runs are approved (`approval_timeout`, `approvals_required`,
/// `self_approval` in the catalog).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApprovalPolicy {
    pub timeout_secs: u64,
    pub required: u32,
    pub self_approval: bool,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        Self {
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            required: 1,
            self_approval: false,
        }
    }
}

/// Approve or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approve,
    Reject,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
        }
    }
}

/// One person's decision (or the expiry's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decision {
    /// Who: a key name, `slack:<user id>`, `link:<verdict>`, or `cloudo` for the expiry.
    pub by: String,
    /// How: `api`, `link`, `slack`, or `expiry`.
    pub via: String,
    pub decision: Verdict,
    #[serde(with = "time::serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// The request a pending execution carries, fixed when it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approval {
    #[serde(with = "time::serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    /// Distinct approvals needed.
    pub required: u32,
    /// Whether the requester may approve their own request.
    pub self_approval: bool,
    /// Who asked (a key name; `alert`, `schedule:<id>` for requests nobody typed).
    pub requested_by: String,
    /// Every decision, in order.
    #[serde(default)]
    pub approvals: Vec<Decision>,
    /// The signed link that approves it: in answers to operators while it is pending only,
    /// never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approve_url: Option<String>,
    /// The signed link that rejects it (as `approve_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_url: Option<String>,
}

/// Why a decision was not recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error(
        "{0} requested this run and may not approve it (the schema does not allow self-approval)"
    )]
    SelfApproval(String),
    #[error("{0} already decided on this request")]
    Twice(String),
    #[error("the request expired at {0}")]
    Expired(String),
}

impl Approval {
    /// The request for a run of a schema with `policy`, asked by `requested_by` at `now`.
    pub fn new(policy: ApprovalPolicy, requested_by: &str, now: Timestamp) -> Self {
        let secs = policy.timeout_secs.min(MAX_TIMEOUT_SECS);
        Self {
            expires_at: now + chrono::Duration::seconds(secs as i64),
            required: policy.required.clamp(1, MAX_REQUIRED),
            self_approval: policy.self_approval,
            requested_by: requested_by.to_string(),
            approvals: Vec::new(),
            approve_url: None,
            reject_url: None,
        }
    }

    /// Distinct approvals so far.
    pub fn approved(&self) -> usize {
        self.approvals
            .iter()
            .filter(|d| d.decision == Verdict::Approve)
            .count()
    }

    /// Enough approvals to run.
    pub fn granted(&self) -> bool {
        self.approved() >= self.required as usize
    }

    /// Whether it was rejected (by a person or the expiry).
    pub fn rejected(&self) -> Option<&Decision> {
        self.approvals
            .iter()
            .find(|d| d.decision == Verdict::Reject)
    }

    /// Where the request stands, for listings: `pending` while undecided, then
    /// `approved`, `rejected` or `expired`.
    pub fn state(&self) -> &'static str {
        match self.rejected() {
            Some(d) if d.via == "expiry" => "expired",
            Some(_) => "rejected",
            None if self.granted() => "approved",
            None => "pending",
        }
    }

    /// Records `d` if its author may decide now.
    pub fn record(&mut self, d: Decision) -> Result<(), Refused> {
        if d.via != "expiry" && d.at > self.expires_at {
            return Err(Refused::Expired(time::rfc3339(self.expires_at)));
        }
        if self.approvals.iter().any(|p| p.by == d.by) {
            return Err(Refused::Twice(d.by));
        }
        if d.decision == Verdict::Approve && !self.self_approval && d.by == self.requested_by {
            return Err(Refused::SelfApproval(d.by));
        }
        self.approvals.push(d);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(by: &str, decision: Verdict, at: Timestamp) -> Decision {
        Decision {
            by: by.into(),
            via: "api".into(),
            decision,
            at,
            comment: None,
        }
    }

    #[test]
    fn distinct_approvers_count_and_the_requester_is_not_one_unless_allowed() {
        let now = time::now();
        let policy = ApprovalPolicy {
            required: 2,
            ..ApprovalPolicy::default()
        };
        let mut a = Approval::new(policy, "alice", now);
        assert_eq!(a.expires_at, now + chrono::Duration::seconds(3600));
        assert_eq!(
            a.record(decision("alice", Verdict::Approve, now)),
            Err(Refused::SelfApproval("alice".into()))
        );
        a.record(decision("bob", Verdict::Approve, now))
            .expect("bob");
        assert_eq!(
            a.record(decision("bob", Verdict::Approve, now)),
            Err(Refused::Twice("bob".into()))
        );
        assert!(!a.granted());
        a.record(decision("carol", Verdict::Approve, now))
            .expect("carol");
        assert!(a.granted() && a.rejected().is_none());

        let mut own = Approval::new(
            ApprovalPolicy {
                self_approval: true,
                ..ApprovalPolicy::default()
            },
            "alice",
            now,
        );
        own.record(decision("alice", Verdict::Approve, now))
            .expect("allowed by the schema");
        assert!(own.granted());

        // The requester may always withdraw (reject) their own request.
        let mut withdrawn = Approval::new(ApprovalPolicy::default(), "alice", now);
        withdrawn
            .record(decision("alice", Verdict::Reject, now))
            .expect("a rejection");
        assert!(withdrawn.rejected().is_some());

        let late = now + chrono::Duration::seconds(3601);
        let mut expired = Approval::new(ApprovalPolicy::default(), "alice", now);
        assert!(matches!(
            expired.record(decision("bob", Verdict::Approve, late)),
            Err(Refused::Expired(_))
        ));
    }
}
