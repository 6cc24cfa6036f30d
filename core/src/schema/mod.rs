//! The catalog: which runbooks exist and how to run them ("schemas", in ClouDO's words).
//!
//! The file format is ClouDO's, `[{"partition_key": ..., "entity": [{id, name, ...}]}]`, with
//! its looseness kept where real catalogs rely on it (`"true"`/`"false"` strings, `tags` as a
//! comma string) and none of its silent failures: a bad catalog is refused with the file, the
//! entry and the field named.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::routing::{ConditionFilter, SeverityRange};

pub mod access;
mod entity;
mod raw;
mod secret_names;
pub use raw::ParseError;
use raw::{RawGroup, describe_path};
pub use secret_names::valid_secret_name;

/// Default wall-clock limit of a runbook, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 900;
/// The largest accepted `timeout` (one day): nothing may run unbounded.
pub const MAX_TIMEOUT_SECS: u64 = 86_400;
/// The largest memory limit (1 TiB): byte counts must fit the kernel's and Docker's fields.
pub const MAX_MEMORY_MB: u64 = 1 << 20;
/// The largest pids limit (the kernel's own ceiling, `pid_max`, is 4 194 304).
pub const MAX_PIDS: u64 = 4_194_304;
/// The largest CPU limit, in cores.
pub const MAX_CPU: f64 = 256.0;
/// The pool a schema without `worker` runs on.
pub const DEFAULT_POOL: &str = "default";

/// Resource limits of one run; unset fields take the worker's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    /// CPU cores (a quota, e.g. 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    /// Seconds of wall clock (same as the schema's `timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

/// How a schema's runbook is to be run (sandbox choice, network, image, limits).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Runtime {
    /// `process`, `bwrap` or `docker`; `None` for the worker's choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// Network access (bwrap, docker); off by default.
    #[serde(default)]
    pub network: bool,
    /// Container image (docker); `None` for the worker's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default)]
    pub limits: Limits,
    /// Azure tokens the runbook may ask the worker for (`azure: true`); none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<access::AzureAccess>,
    /// The alert's AKS cluster (`aks: true`): a kubeconfig for the run; none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aks: Option<access::AksAccess>,
}

/// Sandboxes a schema may name.
pub const SANDBOXES: [&str; 3] = ["process", "bwrap", "docker"];

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Schema {
    pub id: String,
    pub partition_key: String,
    pub name: String,
    pub description: String,
    /// Path of the runbook, relative to the runbooks folder (or repository prefix).
    pub runbook: String,
    /// Arguments, split like a POSIX shell into argv; never given to a shell.
    pub run_args: String,
    /// Worker pool (ClouDO's `worker` capability, and its name on the wire).
    #[serde(rename = "worker")]
    pub pool: String,
    pub oncall: bool,
    pub require_approval: bool,
    /// How its runs are approved, when `require_approval` is set.
    #[serde(default)]
    pub approval: crate::approval::ApprovalPolicy,
    pub tags: Vec<String>,
    pub timeout_secs: u64,
    pub enabled: bool,
    /// Run only on alerts in this condition (`any` by default).
    #[serde(default)]
    pub monitor_condition: ConditionFilter,
    /// Run only on alerts of these severities (all by default).
    #[serde(default)]
    pub severity: Option<SeverityRange>,
    /// A git branch, tag or commit this schema's runbook is pinned to.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    #[serde(default)]
    pub runtime: Runtime,
    /// Names of secrets this runbook gets as environment variables (resolved on the worker,
    /// masked in its output).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// When its worker is lost (killed, machine gone), requeue it this many times before it
    /// ends `lost`.
    #[serde(default)]
    pub retry_on_lost: u32,
    /// Opsgenie priority when a manual run fails (alerts map their severity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// Limits, guardrails and dry-run default of its runs.
    #[serde(default)]
    pub policy: crate::policy::Policy,
    /// A cron expression the schema runs on, in `schedule_tz` (UTC by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_tz: Option<String>,
    /// A runbook that checks a successful run's effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<crate::verify::Verify>,
}

impl Schema {
    /// Stands in for "no schema" on executions that have none (an alert that matched no
    /// runbook is recorded as `routed`): empty id and runbook.
    pub fn placeholder(name: &str) -> Self {
        Self {
            id: String::new(),
            partition_key: String::new(),
            name: name.to_string(),
            description: String::new(),
            runbook: String::new(),
            run_args: String::new(),
            pool: String::new(),
            oncall: false,
            require_approval: false,
            approval: Default::default(),
            tags: Vec::new(),
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            enabled: true,
            monitor_condition: ConditionFilter::Any,
            severity: None,
            git_ref: None,
            runtime: Runtime::default(),
            secrets: Vec::new(),
            retry_on_lost: 0,
            priority: None,
            policy: Default::default(),
            schedule: None,
            schedule_tz: None,
            verify: None,
        }
    }

    /// The schedule the schema defines itself (`schedule`, `schedule_tz`), if any.
    pub fn own_schedule(&self) -> Option<crate::schedule::Schedule> {
        let cron = self.schedule.as_deref()?;
        let mut entry = crate::schedule::own_entry(&self.id, cron, self.schedule_tz.as_deref());
        entry.enabled = self.enabled;
        crate::schedule::Schedule::new(entry, true).ok()
    }

    /// `run_args` as argv. The catalog loader has already checked that this parses.
    pub fn argv(&self) -> Vec<String> {
        split_args(&self.run_args).unwrap_or_default()
    }
}

/// Splits `run_args` like a POSIX shell would, without ever running one.
pub fn split_args(run_args: &str) -> Option<Vec<String>> {
    shlex::split(run_args)
}

/// A loaded and validated catalog.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    schemas: Vec<Schema>,
    by_id: HashMap<String, usize>,
}

/// Why a catalog was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read catalog {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("catalog {}: {location}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        /// e.g. `entry [1].entity[0] (id "test-2"), field "oncall"`.
        location: String,
        message: String,
    },
}

impl Catalog {
    /// Reads and validates a catalog file.
    pub fn load(path: &Path) -> Result<Self, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|e| CatalogError::Invalid {
            path: path.to_path_buf(),
            location: e.location,
            message: e.message,
        })
    }

    /// Parses and validates catalog text.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let groups: Vec<RawGroup> = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            ParseError {
                location: describe_path(text, &path),
                message: e.into_inner().to_string(),
            }
        })?;
        let mut schemas = Vec::new();
        for (g, group) in groups.into_iter().enumerate() {
            for (i, raw) in group.entity.into_iter().enumerate() {
                let id = raw.id.clone();
                let at =
                    |field: &str| format!("entry [{g}].entity[{i}] (id {id:?}), field {field:?}");
                schemas.push(raw.validate(&group.partition_key, at)?);
            }
        }
        Self::from_schemas(schemas)
    }

    /// Builds a catalog from schemas that are already parsed (e.g. read back from a store).
    pub fn from_schemas(schemas: Vec<Schema>) -> Result<Self, ParseError> {
        let mut by_id = HashMap::with_capacity(schemas.len());
        for (n, s) in schemas.iter().enumerate() {
            if let Some(first) = by_id.insert(s.id.clone(), n) {
                return Err(ParseError {
                    location: format!("id {:?}", s.id),
                    message: format!(
                        "duplicate id: entries {first} and {n} (in file order) both use it"
                    ),
                });
            }
        }
        Ok(Self { schemas, by_id })
    }

    pub fn get(&self, id: &str) -> Option<&Schema> {
        self.by_id.get(id).map(|&n| &self.schemas[n])
    }

    pub fn schemas(&self) -> &[Schema] {
        &self.schemas
    }

    /// Every pool some schema runs on, sorted, without repeats.
    pub fn pools(&self) -> Vec<String> {
        let mut pools: Vec<String> = self.schemas.iter().map(|s| s.pool.clone()).collect();
        pools.sort();
        pools.dedup();
        pools
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Catalog, ParseError> {
        Catalog::parse(text)
    }

    #[test]
    fn reads_cloudo_format_with_string_booleans_and_csv_tags() {
        let c = parse(
            r#"[{"partition_key": "generic", "entity": [
                {"id": "a", "name": "A", "runbook": "check_sys.sh", "worker": "Runbook",
                 "oncall": "true", "require_approval": false, "tags": "x, y", "run_args": "a 'b c'"},
                {"id": "b", "runbook": "b.sh", "oncall": "FALSE", "timeout": 5, "enabled": "false",
                 "monitor_condition": "Resolved", "severity": "Sev0-Sev2"}]}]"#,
        )
        .expect("valid catalog");
        let a = c.get("a").expect("a");
        assert!(a.oncall && !a.require_approval);
        assert_eq!(a.tags, vec!["x", "y"]);
        assert_eq!(a.argv(), vec!["a", "b c"]);
        assert_eq!(a.timeout_secs, DEFAULT_TIMEOUT_SECS);
        let b = c.get("b").expect("b");
        assert_eq!(a.monitor_condition, ConditionFilter::Any);
        assert_eq!((b.name.as_str(), b.pool.as_str()), ("b", DEFAULT_POOL));
        assert_eq!((b.timeout_secs, b.enabled, b.oncall), (5, false, false));
        assert_eq!(b.monitor_condition.to_string(), "Resolved");
        assert_eq!(
            b.severity.map(|s| s.to_string()).as_deref(),
            Some("Sev0-Sev2")
        );
        assert_eq!(c.pools(), vec!["Runbook", "default"]);
    }

    #[test]
    fn names_the_entry_and_field_of_a_bad_value() {
        let e = parse(
            r#"[{"partition_key": "p", "entity": [{"id": "ok", "runbook": "x"}]},
                {"partition_key": "q", "entity": [{"id": "bad", "runbook": "x", "oncall": "yes"}]}]"#,
        )
        .expect_err("oncall yes is refused");
        assert_eq!(
            e.location,
            r#"entry [1].entity[0] (id "bad"), field "oncall""#
        );
        assert!(e.message.contains("\"yes\""), "{}", e.message);
    }

    #[test]
    fn refuses_missing_fields_unknown_fields_duplicates_and_bad_args() {
        let missing = parse(r#"[{"partition_key": "p", "entity": [{"id": "x"}]}]"#)
            .expect_err("runbook is required");
        assert!(missing.message.contains("runbook"), "{missing}");

        let typo = parse(
            r#"[{"partition_key": "p", "entity": [{"id": "x", "runbook": "r", "timout": 3}]}]"#,
        )
        .expect_err("unknown field");
        assert!(typo.message.contains("timout"), "{typo}");

        let dup = parse(
            r#"[{"partition_key": "p", "entity": [{"id": "x", "runbook": "r"}]},
                {"partition_key": "q", "entity": [{"id": "x", "runbook": "s"}]}]"#,
        )
        .expect_err("duplicate id");
        assert!(dup.message.contains("duplicate"), "{dup}");

        let args = parse(r#"[{"partition_key": "p", "entity": [{"id": "x", "runbook": "r", "run_args": "'open"}]}]"#)
            .expect_err("unbalanced quote");
        assert_eq!(
            args.location,
            r#"entry [0].entity[0] (id "x"), field "run_args""#
        );

        for limits in [
            r#"{"memory_mb": 0}"#,
            r#"{"memory_mb": 17592186044417}"#,
            r#"{"pids": 5000000}"#,
        ] {
            let e = parse(&format!(
                r#"[{{"partition_key": "p", "entity": [{{"id": "x", "runbook": "r", "limits": {limits}}}]}}]"#
            ))
            .expect_err(limits);
            assert!(e.location.ends_with(r#"field "limits""#), "{e}");
        }

        let timeout = parse(
            r#"[{"partition_key": "p", "entity": [{"id": "x", "runbook": "r", "timeout": 0}]}]"#,
        )
        .expect_err("zero timeout");
        assert!(
            timeout.location.ends_with(r#"field "timeout""#),
            "{timeout}"
        );

        for (fields, field) in [
            (r#""schedule": "61 * * * *""#, "schedule"),
            (
                r#""schedule": "0 3 * * *", "schedule_tz": "Mars/Base""#,
                "schedule_tz",
            ),
            (r#""schedule_tz": "UTC""#, "schedule_tz"),
            (r#""max_concurrency": 0"#, "max_concurrency"),
        ] {
            let e = parse(&format!(
                r#"[{{"partition_key": "p", "entity": [{{"id": "x", "runbook": "r", {fields}}}]}}]"#
            ))
            .expect_err(fields);
            assert!(e.location.ends_with(&format!("field {field:?}")), "{e}");
        }

        let shape = parse(r#"{"id": "x"}"#).expect_err("not an array");
        assert!(shape.location.starts_with("top level"), "{shape}");
    }
}
