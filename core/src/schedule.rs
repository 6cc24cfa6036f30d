//! Schedules: a schema run on a cron expression in an IANA time zone.
//!
//! Expressions are parsed by `croner` (5 fields, or 6 with seconds first; `@daily` and the
//! other nicknames). Its daylight-saving rules are narrowed to ours: a local time that does
//! not exist (the clock jumps over it) is skipped, one that happens twice runs once (the
//! first time). Ticks are UTC instants; which replica runs one is decided in the store
//! ([`Ticks::claim`]).

use std::str::FromStr;

use chrono::{LocalResult, TimeZone, Timelike};
use chrono_tz::Tz;
use croner::Cron;
use serde::{Deserialize, Serialize};

use crate::execution::ExecId;
use crate::time::{self, Timestamp};

/// What a schedule does about ticks missed while nothing was running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// One run at start-up for all the ticks missed.
    #[default]
    Run,
    /// None: the next run is the next tick.
    Skip,
}

/// A schedule as written (the schedules file, `PUT /api/schedules/{id}`), or derived from a
/// schema's `schedule` / `schedule_tz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleEntry {
    pub id: String,
    /// The schema it runs.
    pub schema: String,
    /// The cron expression.
    pub cron: String,
    /// IANA time zone of the expression.
    #[serde(default = "utc")]
    pub tz: String,
    /// Arguments instead of the schema's `run_args` (split like a POSIX shell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_args: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub catch_up: CatchUp,
}

fn utc() -> String {
    "UTC".into()
}

fn yes() -> bool {
    true
}

/// A checked schedule, ready to give its ticks.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub entry: ScheduleEntry,
    /// Defined by a schema's `schedule` (changed through the catalog, not the API).
    pub from_schema: bool,
    cron: Cron,
    tz: Tz,
}

/// Most ticks looked at to find the latest of a long gap (every second for a day).
const MAX_STEPS: usize = 100_000;

impl Schedule {
    /// Checks the entry: id, expression, time zone, arguments. `Err` says what is wrong.
    pub fn new(entry: ScheduleEntry, from_schema: bool) -> Result<Self, String> {
        // A schema's own schedule has the schema's id.
        let valid_id = !entry.id.is_empty()
            && entry.id.len() <= 128
            && entry
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !from_schema && !valid_id {
            return Err("id: 1-128 letters, digits, '-', '_' or '.'".into());
        }
        let cron = parse_cron(&entry.cron)?;
        let tz = Tz::from_str(entry.tz.trim())
            .map_err(|_| format!("tz: {:?} is not an IANA time zone", entry.tz))?;
        if let Some(a) = &entry.run_args
            && crate::schema::split_args(a).is_none()
        {
            return Err("run_args: cannot be split into arguments (an unclosed quote?)".into());
        }
        Ok(Self {
            entry,
            from_schema,
            cron,
            tz,
        })
    }

    /// The first tick strictly after `after`, if there is one.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        // Ticks are whole seconds (croner keeps the fraction of where it starts).
        let after = after.with_nanosecond(0).unwrap_or(after);
        let mut t = after.with_timezone(&self.tz);
        for _ in 0..MAX_STEPS {
            let c = self.cron.find_next_occurrence(&t, false).ok()?;
            let wanted = self.cron.is_time_matching(&c).unwrap_or(false);
            let first = match self.tz.from_local_datetime(&c.naive_local()) {
                LocalResult::Single(x) => x == c,
                LocalResult::Ambiguous(earliest, _) => earliest == c,
                LocalResult::None => false,
            };
            // Not wanted: a time the clock jumped over, moved after the jump; not first:
            // the second pass of a time that happens twice.
            if wanted && first {
                return Some(c.with_timezone(&chrono::Utc));
            }
            t = c;
        }
        None
    }

    /// The latest tick in `(after, now]`: missed ticks coalesce into one run.
    pub fn latest_due(&self, after: Timestamp, now: Timestamp) -> Option<Timestamp> {
        let mut due = None;
        let mut t = after;
        for _ in 0..MAX_STEPS {
            match self.next_after(t) {
                Some(n) if n <= now => {
                    due = Some(n);
                    t = n;
                }
                _ => return due,
            }
        }
        // A very long gap of a very frequent schedule: the last tick looked at.
        due
    }
}

/// The schedule a schema defines itself (`schedule`, `schedule_tz`): the schema's id.
pub fn own_entry(schema_id: &str, cron: &str, tz: Option<&str>) -> ScheduleEntry {
    ScheduleEntry {
        id: schema_id.to_string(),
        schema: schema_id.to_string(),
        cron: cron.to_string(),
        tz: tz.unwrap_or("UTC").to_string(),
        run_args: None,
        enabled: true,
        catch_up: CatchUp::default(),
    }
}

/// Checks a schema's `schedule` and `schedule_tz`; `Err((field, message))`.
pub fn check_own(
    schema_id: &str,
    cron: Option<&str>,
    tz: Option<&str>,
) -> Result<(), (&'static str, String)> {
    match cron {
        None if tz.is_some() => Err(("schedule_tz", "needs a schedule".into())),
        None => Ok(()),
        Some(cron) => Schedule::new(own_entry(schema_id, cron, tz), true)
            .map(|_| ())
            .map_err(|why| {
                let field = if why.starts_with("tz") {
                    "schedule_tz"
                } else {
                    "schedule"
                };
                (field, why)
            }),
    }
}

/// Parses a cron expression of 5 fields, or 6 with seconds first (or a nickname).
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    let fields = expr.split_whitespace().count();
    if !expr.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
        return Err(format!(
            "cron: {expr:?} has {fields} fields; 5 (minute hour day month weekday) or 6 (seconds first)"
        ));
    }
    Cron::from_str(expr).map_err(|e| format!("cron: {expr:?}: {e}"))
}

/// What the store keeps of a schedule: its last tick and the run it made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticks {
    #[serde(default, with = "time::serde_rfc3339::option")]
    pub last_tick: Option<Timestamp>,
    /// When the last tick was claimed; with `recorded` false, its run may not exist yet.
    #[serde(default, with = "time::serde_rfc3339::option")]
    pub claimed_at: Option<Timestamp>,
    #[serde(default)]
    pub recorded: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exec: Option<ExecId>,
}

/// A claim whose run was not recorded within this long is taken over (its claimer died).
pub const CLAIM_TIMEOUT: chrono::Duration = chrono::Duration::seconds(30);

impl Ticks {
    /// Claims `tick` for this replica: true for exactly one claimer, unless an earlier
    /// claimer of the same tick died before recording its run (then the next one takes
    /// it over; the run's dedup key keeps it one).
    pub fn claim(&mut self, tick: Timestamp, now: Timestamp) -> bool {
        match self.last_tick {
            Some(last) if last > tick => false,
            Some(last) if last == tick => {
                let stale =
                    !self.recorded && self.claimed_at.is_none_or(|at| now - at >= CLAIM_TIMEOUT);
                if stale {
                    self.claimed_at = Some(now);
                }
                stale
            }
            _ => {
                *self = Ticks {
                    last_tick: Some(tick),
                    claimed_at: Some(now),
                    recorded: false,
                    last_exec: None,
                };
                true
            }
        }
    }

    /// Marks `tick` as run by `exec` (if it is still the last tick).
    pub fn record(&mut self, tick: Timestamp, exec: Option<ExecId>) {
        if self.last_tick == Some(tick) {
            self.recorded = true;
            self.last_exec = exec;
        }
    }

    /// Moves past `tick` without a run (`catch_up: skip`, a new schedule's start).
    pub fn pass(&mut self, tick: Timestamp) {
        if self.last_tick.is_none_or(|l| l < tick) {
            *self = Ticks {
                last_tick: Some(tick),
                claimed_at: None,
                recorded: true,
                last_exec: None,
            };
        }
    }
}

/// The state key of a schedule's ticks.
pub fn ticks_key(id: &str) -> String {
    format!("schedule/{id}")
}

mod set;
pub use set::ScheduleSet;

#[cfg(test)]
mod tests;
