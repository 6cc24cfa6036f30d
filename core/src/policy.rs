//! What a schema allows of its runs beyond what to run: how many at once
//! (`max_concurrency` per `concurrency_key`), how many per hour, where (guardrails:
//! allowed namespaces, resource groups, subscriptions), and whether they only simulate
//! (`dry_run`). The catalog reads it per schema; guardrails also come from the
//! orchestrator's configuration, for every schema.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::alert::{ArmId, ClusterId};

/// The most runs a concurrency key, a rate window or a pool can be limited to.
pub const MAX_LIMIT: u32 = 10_000;

/// What happens to a run whose concurrency key is busy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConcurrencyPolicy {
    /// It waits, in order, until a slot is free.
    #[default]
    Queue,
    /// It is recorded `skipped` with the reason.
    Skip,
}

/// Where runs may act. An empty list allows anything; a trailing `*` matches any rest.
/// Resource groups and subscriptions compare without case (as Azure does), namespaces
/// exactly. A run whose context names no namespace (resource group, subscription) is not
/// held to that list: nothing in its variables points it anywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Guardrails {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_resource_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_subscriptions: Vec<String>,
    /// AKS clusters by name (`AKS_CLUSTER`, or the name of a `managedClusters` resource).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_clusters: Vec<String>,
}

impl Guardrails {
    pub fn is_empty(&self) -> bool {
        self.allowed_namespaces.is_empty()
            && self.allowed_resource_groups.is_empty()
            && self.allowed_subscriptions.is_empty()
            && self.allowed_clusters.is_empty()
    }

    /// Why a run with these variables falls outside, if it does (`whose` names the
    /// guardrails in the reason: "the schema's", "the orchestrator's").
    pub fn refuses(&self, env: &BTreeMap<String, String>, whose: &str) -> Option<String> {
        // Most schemas have none: nothing to parse on the ingest path.
        if self.is_empty() {
            return None;
        }
        let var = |k: &str| env.get(k).map(String::as_str).unwrap_or_default();
        let subscription = ArmId::parse(var("RESOURCE_ID"))
            .map(|a| a.subscription)
            .unwrap_or_default();
        // The cluster an `aks` run would act on (the same the worker derives), else the
        // names an alert gives.
        let aks = ClusterId::of_alert(env);
        let cluster = match (&aks, var("AKS_CLUSTER")) {
            (Some(c), _) => c.name.as_str(),
            (None, "")
                if var("RESOURCE_TYPE")
                    .eq_ignore_ascii_case("Microsoft.ContainerService/managedClusters") =>
            {
                var("RESOURCE_NAME")
            }
            (None, c) => c,
        };
        let (cluster_group, cluster_subscription) = aks
            .as_ref()
            .map(|c| (c.resource_group.as_str(), c.subscription.as_str()))
            .unwrap_or_default();
        let checks: [(&str, &str, &[String], bool); 6] = [
            (
                "namespace",
                var("AKS_NAMESPACE"),
                &self.allowed_namespaces,
                true,
            ),
            (
                "resource group",
                var("RESOURCE_RG"),
                &self.allowed_resource_groups,
                false,
            ),
            (
                "subscription",
                &subscription,
                &self.allowed_subscriptions,
                false,
            ),
            ("cluster", cluster, &self.allowed_clusters, false),
            (
                "cluster's resource group",
                cluster_group,
                &self.allowed_resource_groups,
                false,
            ),
            (
                "cluster's subscription",
                cluster_subscription,
                &self.allowed_subscriptions,
                false,
            ),
        ];
        checks
            .into_iter()
            .find_map(|(what, value, allowed, exact)| {
                (!value.is_empty()
                    && !allowed.is_empty()
                    && !allowed.iter().any(|a| matches(a, value, exact)))
                .then(|| {
                    format!(
                        "guardrail: {what} {value:?} is not in {whose} allowed list ({})",
                        allowed.join(", ")
                    )
                })
            })
    }
}

fn matches(pattern: &str, value: &str, exact: bool) -> bool {
    let (p, v) = if exact {
        (pattern.to_string(), value.to_string())
    } else {
        (pattern.to_ascii_lowercase(), value.to_ascii_lowercase())
    };
    match p.strip_suffix('*') {
        Some(prefix) => v.starts_with(prefix),
        None => p == v,
    }
}

/// How many runs of a schema may run at once and per hour. Fixed on each execution when
/// it is recorded ([`crate::Execution::limits`]), so the hub holds it to them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunLimits {
    /// Runs with the same concurrency key that may run at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// The variable whose value is the concurrency key (`RESOURCE_ID` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_key: Option<String>,
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,
    /// Runs of the schema per sliding hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_runs_per_hour: Option<u32>,
    /// Runs of the schema per sliding hour on one resource (`RESOURCE_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_runs_per_hour_per_resource: Option<u32>,
}

impl RunLimits {
    pub fn is_empty(&self) -> bool {
        self.max_concurrency.is_none()
            && self.max_runs_per_hour.is_none()
            && self.max_runs_per_hour_per_resource.is_none()
    }

    /// The concurrency key's variable.
    pub fn key_variable(&self) -> &str {
        self.concurrency_key.as_deref().unwrap_or("RESOURCE_ID")
    }
}

/// A schema's limits, guardrails and dry-run default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Policy {
    #[serde(default, flatten)]
    pub limits: RunLimits,
    #[serde(default, skip_serializing_if = "Guardrails::is_empty")]
    pub guardrails: Guardrails,
    /// Runs simulate (`CLOUDO_DRY_RUN=1`) unless a trigger says otherwise.
    #[serde(default)]
    pub dry_run: bool,
}

impl Policy {
    /// Checks the numbers and names; `Err((field, message))`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let range = |field, n: Option<u32>| match n {
            Some(n) if n == 0 || n > MAX_LIMIT => {
                Err((field, format!("must be between 1 and {MAX_LIMIT}")))
            }
            _ => Ok(()),
        };
        let l = &self.limits;
        range("max_concurrency", l.max_concurrency)?;
        range("max_runs_per_hour", l.max_runs_per_hour)?;
        range(
            "max_runs_per_hour_per_resource",
            l.max_runs_per_hour_per_resource,
        )?;
        if let Some(k) = &l.concurrency_key
            && !crate::env::is_contract_name(k)
        {
            return Err((
                "concurrency_key",
                format!(
                    "{k:?} is not a runbook variable (upper case, starting RESOURCE_, AKS_, \
                     ALERT_, MONITOR_, CLOUDO_ or K8S_)"
                ),
            ));
        }
        for (field, list) in [
            ("allowed_namespaces", &self.guardrails.allowed_namespaces),
            (
                "allowed_resource_groups",
                &self.guardrails.allowed_resource_groups,
            ),
            (
                "allowed_subscriptions",
                &self.guardrails.allowed_subscriptions,
            ),
            ("allowed_clusters", &self.guardrails.allowed_clusters),
        ] {
            if list.iter().any(|p| p.trim().is_empty() || p.len() > 256) {
                return Err((field, "entries must be 1 to 256 characters".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn guardrails_judge_namespace_group_and_subscription() {
        let g = Guardrails {
            allowed_namespaces: vec!["payments".into(), "team-*".into()],
            allowed_resource_groups: vec!["rg-prod".into()],
            allowed_subscriptions: vec!["0000-AAAA".into()],
            allowed_clusters: vec!["aks-prod-*".into()],
        };
        let aks = env(&[("AKS_CLUSTER", "aks-dev-1")]);
        assert!(
            g.refuses(&aks, "x")
                .expect("cluster")
                .contains("cluster \"aks-dev-1\"")
        );
        let target = env(&[
            (
                "RESOURCE_TYPE",
                "microsoft.containerservice/managedclusters",
            ),
            ("RESOURCE_NAME", "AKS-Prod-WEU"),
        ]);
        assert_eq!(
            g.refuses(&target, "x"),
            None,
            "clusters compare without case"
        );
        let id = "/subscriptions/0000-aaaa/resourceGroups/RG-PROD/providers/Microsoft.Compute/virtualMachines/vm1";
        let ok = env(&[
            ("AKS_NAMESPACE", "team-a"),
            ("RESOURCE_RG", "RG-PROD"),
            ("RESOURCE_ID", id),
        ]);
        assert_eq!(g.refuses(&ok, "the schema's"), None);
        let ns = env(&[("AKS_NAMESPACE", "Payments")]);
        let why = g
            .refuses(&ns, "the schema's")
            .expect("namespaces are exact");
        assert!(why.contains("namespace \"Payments\""), "{why}");
        let rg = env(&[("RESOURCE_RG", "rg-dev")]);
        assert!(g.refuses(&rg, "x").expect("rg").contains("resource group"));
        let other = id.replace("0000-aaaa", "1111");
        let sub = env(&[("RESOURCE_ID", other.as_str())]);
        assert!(g.refuses(&sub, "x").expect("sub").contains("subscription"));
        assert_eq!(
            g.refuses(&env(&[]), "x"),
            None,
            "no context, nothing to hold"
        );
        assert!(
            g.refuses(&env(&[("AKS_NAMESPACE", "team")]), "x").is_some(),
            "team-* needs the dash"
        );
    }

    /// The cluster judged is the one an `aks` run acts on: the managedClusters id in
    /// RESOURCE_ID wins over a label, and a node pool's alert is held to the list too.
    #[test]
    fn guardrails_judge_the_cluster_the_worker_would_use() {
        let g = Guardrails {
            allowed_clusters: vec!["aks-dev-*".into()],
            allowed_resource_groups: vec!["rg-dev".into()],
            ..Guardrails::default()
        };
        let sub = "00000000-1111-2222-3333-444444444444";
        let prod = format!(
            "/subscriptions/{sub}/resourceGroups/rg-dev/providers/Microsoft.ContainerService/managedClusters/aks-prod"
        );
        let label = env(&[("AKS_CLUSTER", "aks-dev-1"), ("RESOURCE_ID", prod.as_str())]);
        let why = g.refuses(&label, "x").expect("the id's cluster is judged");
        assert!(why.contains("\"aks-prod\""), "{why}");
        let pool = format!("{prod}/agentPools/np1");
        assert!(
            g.refuses(&env(&[("RESOURCE_ID", pool.as_str())]), "x")
                .is_some()
        );
        let other_group = prod
            .replace("rg-dev", "rg-prod")
            .replace("aks-prod", "aks-dev-2");
        let why = g
            .refuses(
                &env(&[
                    ("RESOURCE_ID", other_group.as_str()),
                    ("RESOURCE_RG", "rg-dev"),
                ]),
                "x",
            )
            .expect("the cluster's own group is judged");
        assert!(why.contains("cluster's resource group"), "{why}");
        let dev = prod.replace("aks-prod", "aks-dev-2");
        assert_eq!(g.refuses(&env(&[("RESOURCE_ID", dev.as_str())]), "x"), None);
    }

    #[test]
    fn checks_numbers_and_key_names() {
        let with = |limits: RunLimits| Policy {
            limits,
            ..Policy::default()
        };
        let p = with(RunLimits {
            max_concurrency: Some(0),
            ..RunLimits::default()
        });
        assert_eq!(p.check().map_err(|e| e.0), Err("max_concurrency"));
        let p = with(RunLimits {
            concurrency_key: Some("PATH".into()),
            ..RunLimits::default()
        });
        assert_eq!(p.check().map_err(|e| e.0), Err("concurrency_key"));
        let p = with(RunLimits {
            max_concurrency: Some(2),
            concurrency_key: Some("AKS_NAMESPACE".into()),
            ..RunLimits::default()
        });
        assert_eq!(p.check(), Ok(()));
        assert_eq!(p.limits.key_variable(), "AKS_NAMESPACE");
    }
}
