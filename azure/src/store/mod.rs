//! The store on Azure Table Storage: one file per capability (`executions.rs`,
//! `access.rs`, `outbox.rs`, `coordination.rs` with the catalog, `logs.rs`). The key design is written down in
//! `docs/azure.md`; in short:
//!
//! * `executions`: PartitionKey = the day of the id's UUIDv7 time, inverted
//!   (`99999999 - YYYYMMDD`); RowKey = the id with every hex digit inverted. Ascending key
//!   order is therefore newest first, a point read needs only the id, and the listing cursor
//!   is the last RowKey. The execution is a JSON document property (`doc`), with `status` and
//!   `schema_id` as plain properties for `$filter`. Every change is a read + replace with
//!   `If-Match` (compare-and-set), so concurrent orchestrators never both apply a report.
//! * `execstatus`: PartitionKey = status, RowKey = id: the reaper's "oldest in status X". A
//!   row is written *before* the execution moves and the old one deleted after, so the index
//!   is a superset; readers check each row against the execution and repair stale ones.
//! * `chunks`: outputs and request bodies larger than one property, in entities of up to
//!   eight 30 000-byte properties, keyed by a per-write nonce so a losing concurrent write
//!   never mixes its chunks into the winner's.
//! * `notifications` (PartitionKey = execution id) and `outbox` (the held and pending
//!   ones, one partition): what the API shows per execution, what the deliverer reads.
//! * `logs`: run output in blocks of a fixed size (see `logs.rs`).
//! * `dedup`, `keys`, `audit`, `settings`, `workers`, `leases`: one small table each.

use std::time::Duration;

use async_trait::async_trait;
use cloudo_core::approval::Decision;
use cloudo_core::auth::{ApiKey, AuditRecord, Role};
use cloudo_core::execution::{ExecId, Execution, Status, StatusChange, Transition};
use cloudo_core::notify::{Delivery, Notification};
use cloudo_core::schema::Schema;
use cloudo_core::store::{
    AccessStore, ApprovalStore, AuditQuery, CatalogStore, Coordination, Created, DedupKey,
    ExecutionQuery, ExecutionStore, LogRead, LogStore, NewExecution, Outbox, Page, StateStore,
    StoreError, StoreResult, Versioned, WorkerInfo, record_decision,
};
use cloudo_core::time::{self, Timestamp};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::auth::Account;
use crate::tables::{Entity, Query, Table, TableError, quote, safe_key};

/// Bytes per string property (Azure allows 64 KiB of UTF-16; UTF-8 bytes >= UTF-16 units).
const PART: usize = 30_000;
/// Properties per chunk entity (8 x 30 000 bytes stays well under the 1 MiB entity limit).
const PARTS_PER_ENTITY: usize = 8;
/// A CAS loop that keeps losing gives up after this many tries.
const CAS_TRIES: usize = 20;

impl From<TableError> for StoreError {
    fn from(e: TableError) -> Self {
        match e {
            TableError::Conflict(c) => StoreError::Conflict(c),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// The tables of one deployment (all names start with the prefix).
#[derive(Debug, Clone)]
pub struct AzureStore {
    executions: Table,
    status: Table,
    chunks: Table,
    dedup: Table,
    keys: Table,
    audit: Table,
    settings: Table,
    workers: Table,
    leases: Table,
    notifications: Table,
    outbox: Table,
    logs: Table,
}

/// Table and queue name prefixes are letters and digits, starting with a letter (Azure's
/// rule for table names).
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let ok = prefix.len() <= 40
        && prefix
            .chars()
            .next()
            .is_none_or(|c| c.is_ascii_alphabetic())
        && prefix.chars().all(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "prefix {prefix:?}: letters and digits only, starting with a letter, at most 40"
        ))
    }
}

impl AzureStore {
    /// Opens (creating the tables if needed) the store of `prefix`.
    pub async fn open(account: &Account, prefix: &str) -> StoreResult<Self> {
        check_prefix(prefix).map_err(StoreError::Unavailable)?;
        let t = |n: &str| Table::new(account, &format!("{prefix}{n}"));
        let s = Self {
            executions: t("executions"),
            status: t("execstatus"),
            chunks: t("chunks"),
            dedup: t("dedup"),
            keys: t("keys"),
            audit: t("audit"),
            settings: t("settings"),
            workers: t("workers"),
            leases: t("leases"),
            notifications: t("notifications"),
            outbox: t("outbox"),
            logs: t("logs"),
        };
        for table in [
            &s.executions,
            &s.status,
            &s.chunks,
            &s.dedup,
            &s.keys,
            &s.audit,
            &s.settings,
            &s.workers,
            &s.leases,
            &s.notifications,
            &s.outbox,
            &s.logs,
        ] {
            table.create_if_missing().await?;
        }
        Ok(s)
    }
}

mod access;
mod approvals;
mod coordination;
mod executions;
mod logs;
mod outbox;
mod records;
mod state;
mod text;

use records::*;
use text::*;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn execution_keys_sort_newest_first() {
        let a = ExecId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = ExecId::generate();
        let (pa, ra) = exec_keys(&a).unwrap();
        let (pb, rb) = exec_keys(&b).unwrap();
        assert!((pb, rb.clone()) < (pa, ra), "newer sorts first");
        assert_eq!(invert_hex(&rb), b.as_str(), "the row key gives the id back");
        assert!(
            exec_keys(&ExecId::parse("6f1c2c1e-7b7a-4c1e-9b6a-1b2c3d4e5f60").unwrap()).is_none()
        );
    }

    #[test]
    fn text_splits_at_char_boundaries() {
        let s = "é€𝄞".repeat(20_000);
        let mut e = Entity::new();
        put_text(&mut e, "t", &s);
        assert!(e.len() > 2);
        assert!(
            e.values()
                .all(|v| v.as_str().is_some_and(|p| p.len() <= PART))
        );
        assert_eq!(get_text(&e, "t").as_deref(), Some(s.as_str()));
        put_text(&mut e, "t", "short");
        assert_eq!(e.len(), 1, "stale parts removed");
    }
}
