//! What a schema's runbook may reach in Azure: nothing unless the schema opts in
//! (`azure: true`), then tokens for its `azure_scopes` only (Azure Resource Manager by
//! default), as the worker identity it names (`azure_identity`, a client id) or the
//! worker's own. Issued per run by the worker's token endpoint (worker `access/`).

use serde::{Deserialize, Serialize};

pub use crate::alert::{ClusterId, is_guid};

/// Azure Resource Manager: the scope a runbook gets when the schema names none.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

/// A schema's Azure access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AzureAccess {
    /// Client id of the worker's user-assigned identity to act as; `None`: its default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Scopes tokens may be asked for (`<resource>/.default`).
    pub scopes: Vec<String>,
}

/// The resource of a scope or resource URI, as the managed-identity protocol names it:
/// `https://management.azure.com/.default`, `https://management.azure.com/` and
/// `https://management.azure.com` are one.
pub fn resource_of(scope: &str) -> String {
    let s = scope.trim();
    let s = s.strip_suffix("/.default").unwrap_or(s);
    s.trim_end_matches('/').to_ascii_lowercase()
}

impl AzureAccess {
    /// Does it allow a token for `resource` (a resource URI or a scope)?
    pub fn allows(&self, resource: &str) -> bool {
        let want = resource_of(resource);
        !want.is_empty() && self.scopes.iter().any(|s| resource_of(s) == want)
    }

    /// From the catalog fields; `Err` names what is wrong.
    pub fn parse(
        azure: bool,
        identity: Option<String>,
        scopes: Vec<String>,
    ) -> Result<Option<Self>, (&'static str, String)> {
        if !azure {
            if identity.is_some() {
                return Err(("azure_identity", "needs \"azure\": true".into()));
            }
            if !scopes.is_empty() {
                return Err(("azure_scopes", "needs \"azure\": true".into()));
            }
            return Ok(None);
        }
        let identity = identity
            .map(|i| i.trim().to_string())
            .filter(|i| !i.is_empty());
        if let Some(id) = &identity
            && !is_guid(id)
        {
            return Err((
                "azure_identity",
                format!(
                    "{id:?} is not a client id (a GUID such as 00000000-0000-0000-0000-000000000000)"
                ),
            ));
        }
        let scopes = if scopes.is_empty() {
            vec![ARM_SCOPE.to_string()]
        } else {
            scopes
        };
        for s in &scopes {
            let ok = (s.starts_with("https://") || is_guid(s.split('/').next().unwrap_or("")))
                && s.len() <= 512
                && !s.contains(char::is_whitespace);
            if !ok {
                return Err((
                    "azure_scopes",
                    format!("{s:?} is not a scope (e.g. {ARM_SCOPE})"),
                ));
            }
        }
        Ok(Some(Self { identity, scopes }))
    }
}

/// A schema's AKS access (`aks: true`): the cluster comes from the alert, else `cluster`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AksAccess {
    /// The schema's own cluster (`aks_cluster`), a `managedClusters` resource id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

impl AksAccess {
    pub fn parse(
        aks: bool,
        cluster: Option<String>,
    ) -> Result<Option<Self>, (&'static str, String)> {
        let cluster = cluster
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty());
        if !aks {
            return match cluster {
                Some(_) => Err(("aks_cluster", "needs \"aks\": true".into())),
                None => Ok(None),
            };
        }
        let cluster = match cluster {
            None => None,
            Some(c) => match ClusterId::within(&c) {
                Some(id) if id.path().eq_ignore_ascii_case(&c) => Some(id.path()),
                _ => {
                    return Err((
                        "aks_cluster",
                        format!(
                            "{c:?} is not a managedClusters resource id (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.ContainerService/managedClusters/<name>)"
                        ),
                    ));
                }
            },
        };
        Ok(Some(Self { cluster }))
    }

    /// The cluster a run acts on: the alert's ([`ClusterId::of_alert`]), else the schema's
    /// `aks_cluster`. Guardrails judge the same cluster (`policy::Guardrails::refuses`).
    pub fn cluster_for(
        &self,
        env: &std::collections::BTreeMap<String, String>,
    ) -> Result<ClusterId, String> {
        ClusterId::of_alert(env)
            .or_else(|| self.cluster.as_deref().and_then(ClusterId::within))
            .ok_or_else(|| {
                "no AKS cluster for this run: the alert names none (a managedClusters RESOURCE_ID, \
                 or AKS_CLUSTER with its resource group and subscription) and the schema has no \
                 aks_cluster"
                    .to_string()
            })
    }
}

/// The subscription of an Azure resource id (`/subscriptions/<guid>/...`).
pub fn subscription_of(resource_id: &str) -> Option<String> {
    crate::alert::ArmId::parse(resource_id)
        .map(|a| a.subscription)
        .filter(|s| is_guid(s))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn scopes_default_to_arm_and_match_however_written() {
        let a = AzureAccess::parse(true, None, vec![]).unwrap().unwrap();
        assert_eq!(a.scopes, vec![ARM_SCOPE]);
        assert!(a.allows("https://management.azure.com/"));
        assert!(a.allows("https://management.azure.com"));
        assert!(a.allows("https://Management.azure.com/.default"));
        assert!(!a.allows("https://vault.azure.net"));
        assert!(!a.allows(""));
    }

    #[test]
    fn bad_fields_are_named() {
        assert_eq!(AzureAccess::parse(false, None, vec![]), Ok(None));
        assert_eq!(
            AzureAccess::parse(false, Some("x".into()), vec![])
                .unwrap_err()
                .0,
            "azure_identity"
        );
        assert_eq!(
            AzureAccess::parse(true, Some("not-a-guid".into()), vec![])
                .unwrap_err()
                .0,
            "azure_identity"
        );
        assert_eq!(
            AzureAccess::parse(true, None, vec!["ftp://x".into()])
                .unwrap_err()
                .0,
            "azure_scopes"
        );
        let ok = AzureAccess::parse(
            true,
            Some("11111111-2222-3333-4444-555555555555".into()),
            vec!["https://vault.azure.net/.default".into()],
        )
        .unwrap()
        .unwrap();
        assert!(ok.allows("https://vault.azure.net"));
        assert!(!ok.allows("https://management.azure.com"));
    }

    #[test]
    fn the_cluster_comes_from_the_alert_else_the_schema() {
        let sub = "11111111-2222-3333-4444-555555555555";
        let id = format!(
            "/subscriptions/{sub}/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/aks1"
        );
        let env = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let own = format!(
            "/subscriptions/{sub}/resourceGroups/rg9/providers/Microsoft.ContainerService/managedClusters/own"
        );
        let a = AksAccess::parse(true, Some(own.clone())).unwrap().unwrap();
        // A cluster, or something inside it.
        assert_eq!(
            a.cluster_for(&env(&[("RESOURCE_ID", &id)])).unwrap().path(),
            id
        );
        let inside = format!("{id}/agentPools/np1");
        assert_eq!(
            a.cluster_for(&env(&[("RESOURCE_ID", &inside)]))
                .unwrap()
                .path(),
            id
        );
        // AKS_CLUSTER with the alert's group and subscription.
        let vm = format!(
            "/subscriptions/{sub}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm"
        );
        let e = env(&[
            ("RESOURCE_ID", &vm),
            ("RESOURCE_RG", "rg1"),
            ("AKS_CLUSTER", "aks1"),
        ]);
        assert_eq!(a.cluster_for(&e).unwrap().path(), id);
        // Else the schema's.
        assert_eq!(a.cluster_for(&env(&[])).unwrap().path(), own);
        let none = AksAccess::parse(true, None).unwrap().unwrap();
        assert!(
            none.cluster_for(&env(&[]))
                .unwrap_err()
                .contains("no AKS cluster")
        );
        assert_eq!(
            AksAccess::parse(true, Some("x".into())).unwrap_err().0,
            "aks_cluster"
        );
        assert_eq!(
            AksAccess::parse(false, Some(own)).unwrap_err().0,
            "aks_cluster"
        );
    }

    #[test]
    fn subscriptions_come_from_resource_ids() {
        assert_eq!(
            subscription_of("/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg/providers/x/y/z")
                .as_deref(),
            Some("11111111-2222-3333-4444-555555555555")
        );
        assert_eq!(subscription_of("/subscriptions/nope/x"), None);
        assert_eq!(subscription_of(""), None);
    }
}
