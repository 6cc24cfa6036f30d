//! Alerts: what Azure Monitor and Alertmanager send, normalised into one [`Alert`], and the
//! runbook variables derived from it.
//!
//! Parsers never panic and never fail on missing or null fields (they are normal in real
//! payloads); they fail only on a wrong shape, with the JSON path of what was wrong.

pub mod alertmanager;
mod arm;
pub mod azure;
mod json;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use arm::{ArmId, ClusterId, is_guid};

/// A payload that is not what its endpoint expects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct AlertError {
    /// JSON path of the offending value, e.g. `$.data.essentials`.
    pub path: String,
    pub message: String,
}

impl AlertError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Fired or Resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Condition {
    Fired,
    Resolved,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Fired => "Fired",
            Condition::Resolved => "Resolved",
        }
    }

    /// `Fired`/`Resolved` in any case; Alertmanager's `firing`/`resolved` too.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "fired" | "firing" => Some(Condition::Fired),
            "resolved" => Some(Condition::Resolved),
            _ => None,
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Azure's severities, Sev0 (critical) to Sev4 (verbose).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Severity(u8);

impl Severity {
    pub fn new(level: u8) -> Option<Self> {
        (level <= 4).then_some(Self(level))
    }

    pub fn level(self) -> u8 {
        self.0
    }

    /// Prometheus-style words: `critical` Sev0, `error`/`high` Sev1, `warning`/`medium`
    /// Sev2, `info`/`low` Sev3, `none`/`debug`/`verbose` Sev4.
    pub fn from_word(s: &str) -> Option<Self> {
        if let Ok(s) = s.parse() {
            return Some(s);
        }
        let level = match s.trim().to_ascii_lowercase().as_str() {
            "critical" | "fatal" | "page" => 0,
            "error" | "high" | "major" => 1,
            "warning" | "warn" | "medium" | "minor" => 2,
            "info" | "informational" | "low" => 3,
            "none" | "debug" | "verbose" => 4,
            _ => return None,
        };
        Some(Self(level))
    }
}

impl FromStr for Severity {
    type Err = ();

    /// `Sev0`..`Sev4` (any case) or a bare digit.
    fn from_str(s: &str) -> Result<Self, ()> {
        let t = s.trim();
        // `get` rather than slicing: the input is anyone's, and byte 3 need
        // not be a character boundary.
        let digits = match (t.get(..3), t.get(3..)) {
            (Some(p), Some(rest)) if p.eq_ignore_ascii_case("sev") => rest,
            _ => t,
        };
        digits.parse::<u8>().ok().and_then(Severity::new).ok_or(())
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sev{}", self.0)
    }
}

/// Where an alert came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertSource {
    AzureMonitor,
    Alertmanager,
}

/// One alert, normalised. Strings are empty when the payload did not say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Alert {
    pub source: Option<AlertSource>,
    /// Azure `essentials.alertId`; Alertmanager `fingerprint`.
    pub id: String,
    /// Azure `essentials.alertRule`; Alertmanager label `alertname`.
    pub rule: String,
    pub severity: Option<Severity>,
    pub signal_type: String,
    pub monitoring_service: String,
    pub condition: Option<Condition>,
    pub fired_at: String,
    pub resolved_at: String,
    /// Azure `alertTargetIDs`.
    pub target_ids: Vec<String>,
    pub configuration_items: Vec<String>,
    /// `alertContext.resourceId` / `resourceGroup` / `resourceName`, when present.
    pub context_resource_id: String,
    pub context_resource_group: String,
    pub context_resource_name: String,
    /// Original names and values, in payload order.
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    pub dimensions: Vec<(String, String)>,
    /// Other derived variables (full names), e.g. `ALERT_IMPACTED_SERVICES`.
    pub extra: Vec<(String, String)>,
    /// Same alert, same state: the same key (Azure: alert id + condition; Alertmanager:
    /// fingerprint + status + startsAt). `None` when the payload has nothing stable.
    pub dedup_key: Option<String>,
}

/// The resource an alert is about, derived from its ARM id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    pub id: String,
    pub group: String,
    pub name: String,
    pub subscription: String,
    pub kind: String,
}

/// Largest value of one derived variable.
pub const MAX_VALUE: usize = 4096;
/// Most `ALERT_LABEL_*` (likewise annotations, dimensions) variables per alert.
pub const MAX_PER_FAMILY: usize = 128;

/// `AKS_*` variables and the label / annotation / dimension names they come from (lower
/// case), in order of preference. The Prometheus label `job` is the scrape job, never a
/// Kubernetes Job, so it is not a source of `AKS_JOB`.
const AKS_SOURCES: &[(&str, &[&str])] = &[
    (
        "AKS_CLUSTER",
        &[
            "cluster",
            "cluster_name",
            "clustername",
            "kubernetes_cluster",
        ],
    ),
    (
        "AKS_NAMESPACE",
        &["namespace", "kubernetes_namespace", "k8s_namespace"],
    ),
    (
        "AKS_POD",
        &["pod", "kubernetes_pod_name", "pod_name", "podname"],
    ),
    ("AKS_DEPLOYMENT", &["deployment", "kubernetes_deployment"]),
    ("AKS_JOB", &["job_name", "kubernetes_job_name"]),
    (
        "AKS_HPA",
        &[
            "horizontalpodautoscaler",
            "kubernetes_horizontalpodautoscaler",
            "hpa",
        ],
    ),
    (
        "AKS_CONTAINER",
        &[
            "container",
            "container_name",
            "containername",
            "kubernetes_container_name",
        ],
    ),
    (
        "AKS_NODE",
        &["node", "node_name", "nodename", "kubernetes_node"],
    ),
];

fn lookup<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case(key) && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// `microsoft.resourceid` -> `MICROSOFT_RESOURCEID`.
pub fn env_suffix(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn cap(v: &str) -> String {
    crate::env::truncate(v, MAX_VALUE).to_string()
}

impl Alert {
    pub fn label(&self, key: &str) -> Option<&str> {
        lookup(&self.labels, key)
    }

    pub fn dimension(&self, key: &str) -> Option<&str> {
        lookup(&self.dimensions, key)
    }

    /// The resource: the first ARM id of `alertTargetIDs`, else the label
    /// `microsoft.resourceid`, else `alertContext.resourceId`.
    pub fn resource(&self) -> Resource {
        let id = self
            .target_ids
            .iter()
            .map(String::as_str)
            .chain(self.label("microsoft.resourceid"))
            .chain(Some(self.context_resource_id.as_str()))
            .find(|id| ArmId::parse(id).is_some())
            .unwrap_or_default()
            .to_string();
        let arm = ArmId::parse(&id).unwrap_or_default();
        let group = Some(arm.resource_group.as_str())
            .filter(|g| !g.is_empty())
            .or(Some(self.context_resource_group.as_str()).filter(|g| !g.is_empty()))
            .or(self.label("resourcegroup"))
            .unwrap_or_default()
            .to_string();
        let name = Some(arm.name.as_str())
            .filter(|n| !n.is_empty())
            .or(self
                .configuration_items
                .first()
                .map(String::as_str)
                .filter(|n| !n.is_empty()))
            .or(Some(self.context_resource_name.as_str()).filter(|n| !n.is_empty()))
            .or(self.label("resourcename"))
            .unwrap_or_default()
            .to_string();
        Resource {
            id,
            group,
            name,
            subscription: arm.subscription,
            kind: arm.kind,
        }
    }

    /// `AKS_*` values, in [`AKS_SOURCES`] order: labels, then annotations, then dimensions
    /// (Container insights `ControllerName` counts as a deployment or job when
    /// `ControllerKind` says so).
    pub fn aks(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (var, keys) in AKS_SOURCES {
            let found = [&self.labels, &self.annotations, &self.dimensions]
                .into_iter()
                .find_map(|pairs| keys.iter().find_map(|k| lookup(pairs, k)));
            let found = found.or_else(|| {
                let kind = self.dimension("controllerkind")?;
                let wanted = match *var {
                    "AKS_DEPLOYMENT" => "deployment",
                    "AKS_JOB" => "job",
                    _ => return None,
                };
                kind.eq_ignore_ascii_case(wanted)
                    .then(|| self.dimension("controllername"))
                    .flatten()
            });
            out.push((*var, found.map(cap).unwrap_or_default()));
        }
        out
    }

    /// The runbook variables this alert gives. `lowercase_resource` keeps ClouDO's
    /// lower-casing of `RESOURCE_RG` and `RESOURCE_NAME`.
    pub fn env(&self, lowercase_resource: bool) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            env.insert(k.to_string(), cap(v));
        };
        put(
            "MONITOR_CONDITION",
            self.condition.map(Condition::as_str).unwrap_or_default(),
        );
        put("ALERT_ID", &self.id);
        put("ALERT_RULE", &self.rule);
        put(
            "ALERT_SEVERITY",
            &self.severity.map(|s| s.to_string()).unwrap_or_default(),
        );
        put("ALERT_SIGNAL_TYPE", &self.signal_type);
        put("ALERT_MONITORING_SERVICE", &self.monitoring_service);
        put("ALERT_FIRED_AT", &self.fired_at);
        put("ALERT_RESOLVED_AT", &self.resolved_at);
        let r = self.resource();
        let lower = |s: &str| {
            if lowercase_resource {
                s.to_lowercase()
            } else {
                s.to_string()
            }
        };
        put("RESOURCE_ID", &r.id);
        put("RESOURCE_RG", &lower(&r.group));
        put("RESOURCE_NAME", &lower(&r.name));
        put("RESOURCE_SUBSCRIPTION", &r.subscription);
        put("RESOURCE_TYPE", &r.kind);
        for (k, v) in self.aks() {
            put(k, &v);
        }
        for (prefix, pairs) in [
            ("ALERT_LABEL_", &self.labels),
            ("ALERT_ANNOTATION_", &self.annotations),
            ("ALERT_DIMENSION_", &self.dimensions),
        ] {
            let mut n = 0;
            for (k, v) in pairs {
                if n == MAX_PER_FAMILY {
                    break;
                }
                let name = format!("{prefix}{}", env_suffix(k));
                if name.len() > prefix.len() && name.len() <= 128 && !env.contains_key(&name) {
                    env.insert(name, cap(v));
                    n += 1;
                }
            }
        }
        for (k, v) in &self.extra {
            env.insert(k.clone(), cap(v));
        }
        env
    }

    /// Candidate schema ids in ClouDO's fallback order: the last path segment of the
    /// alert rule, then of the alert id.
    pub fn fallback_schema_ids(&self) -> Vec<String> {
        [&self.rule, &self.id]
            .into_iter()
            .filter_map(|s| s.rsplit('/').next())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests;
