//! ClouDO's catalog format as it is read: the raw groups and entries, their loose fields
//! (`"true"` strings, comma-separated tags), their validation into [`Schema`]s, and error
//! locations that name the entry and the field.

use std::fmt;

use serde::{Deserialize, Deserializer};

use super::*;

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
pub(super) fn describe_path(text: &str, path: &str) -> String {
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
pub(super) struct RawGroup {
    pub(super) partition_key: String,
    pub(super) entity: Vec<RawEntity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEntity {
    pub(super) id: String,
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
    /// Seconds a request waits for its approvals before it is rejected as expired.
    #[serde(default)]
    approval_timeout: Option<u64>,
    /// Distinct approvals a request needs.
    #[serde(default)]
    approvals_required: Option<u32>,
    /// Whether the requester may approve their own request.
    #[serde(default, deserialize_with = "boolish")]
    self_approval: Option<bool>,
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
    #[serde(default, deserialize_with = "boolish")]
    azure: Option<bool>,
    #[serde(default)]
    azure_identity: Option<String>,
    #[serde(default, deserialize_with = "tags")]
    azure_scopes: Vec<String>,
    #[serde(default, deserialize_with = "boolish")]
    aks: Option<bool>,
    #[serde(default)]
    aks_cluster: Option<String>,
    #[serde(default)]
    secrets: Vec<String>,
    /// Requeue (instead of ending `lost`) this many times when the worker is lost.
    #[serde(default)]
    retry_on_lost: Option<u32>,
    /// Opsgenie priority of manual runs that fail (`P1`..`P5`; default P3).
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    max_concurrency: Option<u32>,
    #[serde(default)]
    concurrency_key: Option<String>,
    #[serde(default)]
    concurrency_policy: Option<crate::policy::ConcurrencyPolicy>,
    #[serde(default)]
    max_runs_per_hour: Option<u32>,
    #[serde(default)]
    max_runs_per_hour_per_resource: Option<u32>,
    #[serde(default, deserialize_with = "tags")]
    allowed_namespaces: Vec<String>,
    #[serde(default, deserialize_with = "tags")]
    allowed_resource_groups: Vec<String>,
    #[serde(default, deserialize_with = "tags")]
    allowed_subscriptions: Vec<String>,
    #[serde(default, deserialize_with = "tags")]
    allowed_clusters: Vec<String>,
    #[serde(default, deserialize_with = "boolish")]
    dry_run: Option<bool>,
    /// A cron expression: the schema runs on it (`schedule_tz`, default UTC).
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    schedule_tz: Option<String>,
    #[serde(default)]
    verify: Option<crate::verify::Verify>,
}

impl RawEntity {
    pub(super) fn validate(
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
        let azure = super::access::AzureAccess::parse(
            self.azure.unwrap_or(false),
            self.azure_identity.clone(),
            self.azure_scopes.clone(),
        )
        .map_err(|(field, message)| bad_owned(field, message))?;
        let aks =
            super::access::AksAccess::parse(self.aks.unwrap_or(false), self.aks_cluster.clone())
                .map_err(|(field, message)| bad_owned(field, message))?;
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
        let approval = crate::approval::ApprovalPolicy {
            timeout_secs: self
                .approval_timeout
                .unwrap_or(crate::approval::DEFAULT_TIMEOUT_SECS),
            required: self.approvals_required.unwrap_or(1),
            self_approval: self.self_approval.unwrap_or(false),
        };
        if !(1..=crate::approval::MAX_TIMEOUT_SECS).contains(&approval.timeout_secs) {
            return Err(bad_owned(
                "approval_timeout",
                format!(
                    "must be between 1 and {} seconds",
                    crate::approval::MAX_TIMEOUT_SECS
                ),
            ));
        }
        if !(1..=crate::approval::MAX_REQUIRED).contains(&approval.required) {
            return Err(bad_owned(
                "approvals_required",
                format!("must be between 1 and {}", crate::approval::MAX_REQUIRED),
            ));
        }
        if self.retry_on_lost.is_some_and(|n| n > 10) {
            return Err(bad("retry_on_lost", "must be between 0 and 10"));
        }
        if timeout_secs == 0 || timeout_secs > MAX_TIMEOUT_SECS {
            return Err(bad(
                "timeout",
                &format!("must be between 1 and {MAX_TIMEOUT_SECS} seconds"),
            ));
        }
        let policy = crate::policy::Policy {
            limits: crate::policy::RunLimits {
                max_concurrency: self.max_concurrency,
                concurrency_key: self.concurrency_key.filter(|k| !k.trim().is_empty()),
                concurrency_policy: self.concurrency_policy.unwrap_or_default(),
                max_runs_per_hour: self.max_runs_per_hour,
                max_runs_per_hour_per_resource: self.max_runs_per_hour_per_resource,
            },
            guardrails: crate::policy::Guardrails {
                allowed_namespaces: self.allowed_namespaces,
                allowed_resource_groups: self.allowed_resource_groups,
                allowed_subscriptions: self.allowed_subscriptions,
                allowed_clusters: self.allowed_clusters,
            },
            dry_run: self.dry_run.unwrap_or(false),
        };
        policy.check().map_err(|(f, m)| bad_owned(f, m))?;
        let schedule = self.schedule.filter(|s| !s.trim().is_empty());
        crate::schedule::check_own(&self.id, schedule.as_deref(), self.schedule_tz.as_deref())
            .map_err(|(f, m)| bad_owned(f, m))?;
        if let Some(v) = &self.verify {
            v.check().map_err(|m| bad_owned("verify", m))?;
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
            approval,
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
                azure,
                aks,
            },
            secrets: self.secrets,
            retry_on_lost: self.retry_on_lost.unwrap_or(0),
            priority,
            policy,
            schedule,
            schedule_tz: self.schedule_tz,
            verify: self.verify,
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
