//! The records behind run limits, kept in a [`crate::store::StateStore`] and changed only
//! through [`crate::store::update_state`], so replicas agree: [`Slots`] (a semaphore with a
//! line: concurrency keys and pool capacity) and [`Window`] (runs in the last hour).

use serde::{Deserialize, Serialize};

use crate::execution::{ExecId, Execution};
use crate::time::{self, Timestamp};

/// Runs that may wait in one line; beyond it they are skipped (a storm must not grow one
/// record without bound).
pub const MAX_WAITING: usize = 1000;

/// The state key of a schema's concurrency slots for `value` of its concurrency key.
pub fn concurrency_key(schema_id: &str, value: &str) -> String {
    format!("limit/c/{schema_id}/{value}")
}

/// The state key of a pool's capacity.
pub fn pool_key(pool: &str) -> String {
    format!("limit/p/{pool}")
}

/// The state key of a schema's hourly window, or of one resource's under it.
pub fn rate_key(schema_id: &str, resource: Option<&str>) -> String {
    match resource {
        None => format!("limit/r/{schema_id}"),
        Some(r) => format!("limit/r/{schema_id}/{r}"),
    }
}

/// The value of an execution's concurrency key (empty when the variable is not set).
pub fn key_value(e: &Execution) -> &str {
    e.env
        .get(e.limits.key_variable())
        .map(String::as_str)
        .unwrap_or("")
}

/// One slot taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub exec_id: ExecId,
    #[serde(with = "time::serde_rfc3339")]
    pub since: Timestamp,
}

/// A semaphore with a first-come line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slots {
    /// The limit, as last asked for (a schema's may change).
    pub max: u32,
    pub holders: Vec<Holder>,
    pub waiting: Vec<ExecId>,
}

/// What asking for a slot gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    Holding,
    /// In line, with this many before it.
    Waiting(usize),
    /// All slots taken and the policy does not wait.
    Busy,
    /// The line is full ([`MAX_WAITING`]).
    LineFull,
}

impl Slots {
    /// Asks for a slot for `id`; asking again gives the same answer (or a slot, once its
    /// turn came). `wait`: get in line when all are taken.
    pub fn acquire(&mut self, id: &ExecId, max: u32, wait: bool, now: Timestamp) -> Acquired {
        self.max = max.max(1);
        if self.holders.iter().any(|h| h.exec_id == *id) {
            return Acquired::Holding;
        }
        let free = self.holders.len() < self.max as usize;
        match self.waiting.iter().position(|w| w == id) {
            Some(0) if free => {
                self.waiting.remove(0);
                self.hold(id, now);
                Acquired::Holding
            }
            Some(n) => Acquired::Waiting(n),
            None if free && self.waiting.is_empty() => {
                self.hold(id, now);
                Acquired::Holding
            }
            None if !wait => Acquired::Busy,
            None if self.waiting.len() >= MAX_WAITING => Acquired::LineFull,
            None => {
                self.waiting.push(id.clone());
                Acquired::Waiting(self.waiting.len() - 1)
            }
        }
    }

    fn hold(&mut self, id: &ExecId, now: Timestamp) {
        self.holders.push(Holder {
            exec_id: id.clone(),
            since: now,
        });
    }

    /// Frees `id`'s slot or place in line, and gives free slots to the first in line.
    /// Returns those that got one (their runs may go now).
    pub fn release(&mut self, id: &ExecId, now: Timestamp) -> Vec<ExecId> {
        self.holders.retain(|h| h.exec_id != *id);
        self.waiting.retain(|w| w != id);
        self.promote(now)
    }

    /// Gives free slots to the first in line; returns those that got one.
    pub fn promote(&mut self, now: Timestamp) -> Vec<ExecId> {
        let mut out = Vec::new();
        while self.holders.len() < self.max as usize && !self.waiting.is_empty() {
            let id = self.waiting.remove(0);
            self.hold(&id, now);
            out.push(id);
        }
        out
    }

    pub fn is_idle(&self) -> bool {
        self.holders.is_empty() && self.waiting.is_empty()
    }
}

/// The runs of a sliding hour, and whether the limit is refusing now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub runs: Vec<Holder>,
    /// Set by the first refusal, cleared when a run is allowed again: who is told of a
    /// refusal is told once per stretch of refusals.
    pub tripped: bool,
}

/// What counting a run gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Allowed,
    /// Over the limit; `first` for the first refusal since runs were last allowed.
    Limited {
        first: bool,
    },
}

/// The window's length.
pub const HOUR: chrono::Duration = chrono::Duration::hours(1);

impl Window {
    /// Counts `id` (once, however often it is asked) if fewer than `max` ran in the hour
    /// before `now`.
    pub fn count(&mut self, id: &ExecId, max: u32, now: Timestamp) -> Counted {
        self.runs.retain(|r| now - r.since < HOUR);
        if self.runs.iter().any(|r| r.exec_id == *id) {
            return Counted::Allowed;
        }
        if self.runs.len() < max as usize {
            self.runs.push(Holder {
                exec_id: id.clone(),
                since: now,
            });
            self.tripped = false;
            return Counted::Allowed;
        }
        let first = !self.tripped;
        self.tripped = true;
        Counted::Limited { first }
    }

    /// When the oldest run counted leaves the window (a slot opens), if any is counted.
    pub fn frees_at(&self) -> Option<Timestamp> {
        self.runs.iter().map(|r| r.since).min().map(|t| t + HOUR)
    }

    /// Nothing counted in the hour before `now`: the record can go.
    pub fn is_idle(&self, now: Timestamp) -> bool {
        self.runs.iter().all(|r| now - r.since >= HOUR)
    }
}

#[cfg(test)]
mod tests;
