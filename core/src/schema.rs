//! The catalog: which runbooks exist and how to run them ("schemas", in ClouDO's words).
//!
//! The file format is ClouDO's, `[{"partition_key": ..., "entity": [{id, name, ...}]}]`, with
//! its looseness kept where real catalogs rely on it (`"true"`/`"false"` strings, `tags` as a
//! comma string) and none of its silent failures: a bad catalog is refused with the file, the
//! entry and the field named.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use crate::routing::{ConditionFilter, SeverityRange};

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
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
}

/// Sandboxes a schema may name.
pub const SANDBOXES: [&str; 3] = ["process", "bwrap", "docker"];

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
        }
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

/// A catalog parse failure without the file name (see [`CatalogError::Invalid`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub location: String,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Turns serde's `[1].entity[0].oncall` into `entry [1].entity[0] (id "x"), field "oncall"`.
fn describe_path(text: &str, path: &str) -> String {
    let Some((entry, field)) = path
        .rsplit_once('.')
        .filter(|(e, _)| e.contains(".entity["))
    else {
        return if path == "." || path.is_empty() {
            "top level (expected a JSON array of {partition_key, entity} groups)".to_string()
        } else {
            format!("at {path}")
        };
    };
    let id = entry_id(text, entry)
        .map(|id| format!(" (id {id:?})"))
        .unwrap_or_default();
    format!("entry {entry}{id}, field {field:?}")
}

/// Looks up the `id` of the entry at `[g].entity[i]`, to name it in an error.
fn entry_id(text: &str, entry: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let (g, rest) = entry.strip_prefix('[')?.split_once(']')?;
    let i = rest.strip_prefix(".entity[")?.strip_suffix(']')?;
    let e = v
        .get(g.parse::<usize>().ok()?)?
        .get("entity")?
        .get(i.parse::<usize>().ok()?)?;
    e.get("id")?.as_str().map(str::to_string)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    partition_key: String,
    entity: Vec<RawEntity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntity {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    runbook: String,
    #[serde(default)]
    run_args: Option<String>,
    #[serde(default)]
    worker: Option<String>,
    #[serde(default, deserialize_with = "boolish")]
    oncall: Option<bool>,
    #[serde(default, deserialize_with = "boolish")]
    require_approval: Option<bool>,
    #[serde(default, deserialize_with = "tags")]
    tags: Vec<String>,
    #[serde(default)]
    timeout: Option<u64>,
    #[serde(default, deserialize_with = "boolish")]
    enabled: Option<bool>,
    #[serde(default)]
    monitor_condition: Option<ConditionFilter>,
    #[serde(default)]
    severity: Option<SeverityRange>,
    #[serde(default, rename = "ref")]
    git_ref: Option<String>,
    #[serde(default)]
    sandbox: Option<String>,
    #[serde(default, deserialize_with = "boolish")]
    network: Option<bool>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    limits: Option<Limits>,
    #[serde(default)]
    secrets: Vec<String>,
    /// Requeue (instead of ending `lost`) this many times when the worker is lost.
    #[serde(default)]
    retry_on_lost: Option<u32>,
    /// Opsgenie priority of manual runs that fail (`P1`..`P5`; default P3).
    #[serde(default)]
    priority: Option<String>,
}

/// May a secret be called this? Upper-case names that cannot shadow the contract or the
/// process variables.
pub fn valid_secret_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && !n.as_bytes()[0].is_ascii_digit()
        && ![
            "CLOUDO_",
            "RESOURCE_",
            "AKS_",
            "ALERT_",
            "MONITOR_",
            "LD_",
            "BASH_",
        ]
        .iter()
        .any(|p| n.starts_with(p))
        && ![
            "PATH",
            "HOME",
            "LANG",
            "SHELL",
            "IFS",
            "ENV",
            "PYTHONPATH",
            "PYTHONSTARTUP",
        ]
        .contains(&n)
}

impl RawEntity {
    fn validate(
        self,
        partition_key: &str,
        at: impl Fn(&str) -> String,
    ) -> Result<Schema, ParseError> {
        let bad = |field: &str, message: &str| ParseError {
            location: at(field),
            message: message.to_string(),
        };
        let bad_owned = |field: &str, message: String| ParseError {
            location: at(field),
            message,
        };
        if self.id.trim().is_empty() {
            return Err(bad("id", "must not be empty"));
        }
        if self.id.len() > 256 || self.id.contains('/') || self.id.chars().any(char::is_control) {
            return Err(bad(
                "id",
                "must be at most 256 characters, without '/' or control characters",
            ));
        }
        if self.runbook.trim().is_empty() {
            return Err(bad("runbook", "must not be empty"));
        }
        let run_args = self.run_args.unwrap_or_default();
        if split_args(&run_args).is_none() {
            return Err(bad(
                "run_args",
                "cannot be split into arguments (an unclosed quote?)",
            ));
        }
        let limits = self.limits.unwrap_or_default();
        let timeout_secs = limits
            .timeout
            .or(self.timeout)
            .unwrap_or(DEFAULT_TIMEOUT_SECS);
        if let Some(bad) = self.secrets.iter().find(|n| !valid_secret_name(n)) {
            return Err(bad_owned(
                "secrets",
                format!(
                    "{bad:?} is not a usable secret name (upper-case letters, digits, '_'; not PATH, HOME, LD_*, or a contract prefix)"
                ),
            ));
        }
        if let Some(s) = &self.sandbox
            && !SANDBOXES.contains(&s.as_str())
        {
            return Err(bad("sandbox", "must be one of process, bwrap, docker"));
        }
        if limits
            .memory_mb
            .is_some_and(|m| m == 0 || m > MAX_MEMORY_MB)
            || limits.pids.is_some_and(|p| p == 0 || p > MAX_PIDS)
        {
            return Err(bad(
                "limits",
                &format!(
                    "memory_mb must be between 1 and {MAX_MEMORY_MB}, pids between 1 and {MAX_PIDS}"
                ),
            ));
        }
        if limits
            .cpu
            .is_some_and(|c| c.is_nan() || c <= 0.0 || c > MAX_CPU)
        {
            return Err(bad(
                "limits",
                &format!("cpu must be between 0 and {MAX_CPU} cores"),
            ));
        }
        let priority = match self.priority.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) if matches!(p, "P1" | "P2" | "P3" | "P4" | "P5") => Some(p.to_string()),
            Some(_) => return Err(bad("priority", "must be one of P1, P2, P3, P4, P5")),
        };
        if self.retry_on_lost.is_some_and(|n| n > 10) {
            return Err(bad("retry_on_lost", "must be between 0 and 10"));
        }
        if timeout_secs == 0 || timeout_secs > MAX_TIMEOUT_SECS {
            return Err(bad(
                "timeout",
                &format!("must be between 1 and {MAX_TIMEOUT_SECS} seconds"),
            ));
        }
        let worker = self
            .worker
            .filter(|w| !w.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_POOL.to_string());
        if !worker
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(bad(
                "worker",
                "a pool name may use only letters, digits, '-', '_' and '.'",
            ));
        }
        Ok(Schema {
            name: self.name.unwrap_or_else(|| self.id.clone()),
            id: self.id,
            partition_key: partition_key.to_string(),
            description: self.description.unwrap_or_default(),
            runbook: self.runbook,
            run_args,
            pool: worker,
            oncall: self.oncall.unwrap_or(false),
            require_approval: self.require_approval.unwrap_or(false),
            tags: self.tags,
            timeout_secs,
            enabled: self.enabled.unwrap_or(true),
            monitor_condition: self.monitor_condition.unwrap_or_default(),
            severity: self.severity,
            git_ref: self.git_ref.filter(|r| !r.trim().is_empty()),
            runtime: Runtime {
                sandbox: self.sandbox,
                network: self.network.unwrap_or(false),
                image: self.image.filter(|i| !i.trim().is_empty()),
                limits,
            },
            secrets: self.secrets,
            retry_on_lost: self.retry_on_lost.unwrap_or(0),
            priority,
        })
    }
}

/// `true`, `false`, `"true"`, `"false"` (any case), or null.
fn boolish<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B {
        Bool(bool),
        Str(String),
    }
    match Option::<B>::deserialize(d)? {
        None => Ok(None),
        Some(B::Bool(b)) => Ok(Some(b)),
        Some(B::Str(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(B::Str(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(B::Str(s)) => Err(serde::de::Error::custom(format!(
            "expected true/false or \"true\"/\"false\", got {s:?}"
        ))),
    }
}

/// A list of strings, or ClouDO's comma-separated string.
fn tags<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum T {
        List(Vec<String>),
        Csv(String),
    }
    Ok(match Option::<T>::deserialize(d)? {
        None => Vec::new(),
        Some(T::List(v)) => v,
        Some(T::Csv(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
    })
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

        let shape = parse(r#"{"id": "x"}"#).expect_err("not an array");
        assert!(shape.location.starts_with("top level"), "{shape}");
    }
}
