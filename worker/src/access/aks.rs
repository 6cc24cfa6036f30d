//! A kubeconfig for a run of a schema with `aks: true`: the cluster's server and CA come from
//! Azure Resource Manager (`listClusterUserCredential`, with the worker's credential, cached
//! per cluster for a few minutes); the user is a short-lived Entra token for the AKS server
//! application (Azure RBAC for Kubernetes decides what it may do), so nothing runs an exec
//! plugin and nothing is created in the cluster. The file is private and goes with the run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use cloudo_azure::runbook_tokens::RunbookTokens;
use cloudo_core::alert::ClusterId;

use crate::lazy_client::LazyClient;
use serde::Deserialize;

/// The AKS server application every AKS cluster with Entra integration accepts tokens for.
pub const AKS_SCOPE: &str = "6dae42f8-4368-4678-94ff-3960e28e3630/.default";
/// Azure Resource Manager's scope.
const ARM_SCOPE: &str = "https://management.azure.com/.default";
/// How long a cluster's server and CA are reused.
const CACHE_FOR: Duration = Duration::from_secs(300);
const API_VERSION: &str = "2024-05-01";

/// Where a cluster is and the CA its server certificate chains to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    pub server: String,
    /// Base64 PEM, as kubeconfigs carry it.
    pub ca_data: Option<String>,
}

#[derive(Deserialize)]
struct Credentials {
    kubeconfigs: Vec<Kubeconfig>,
}

#[derive(Deserialize)]
struct Kubeconfig {
    value: String,
}

#[derive(Deserialize)]
struct KubeconfigDoc {
    clusters: Vec<NamedCluster>,
}

#[derive(Deserialize)]
struct NamedCluster {
    cluster: ClusterEntry,
}

#[derive(Deserialize)]
struct ClusterEntry {
    server: String,
    #[serde(default, rename = "certificate-authority-data")]
    ca_data: Option<String>,
}

/// The first cluster of a kubeconfig as `listClusterUserCredential` returns it (base64 YAML).
pub fn cluster_of(base64_yaml: &str) -> Result<ClusterInfo, String> {
    let yaml = base64::engine::general_purpose::STANDARD
        .decode(base64_yaml.trim())
        .map_err(|e| format!("the cluster's kubeconfig is not base64: {e}"))?;
    let yaml = String::from_utf8(yaml).map_err(|_| "the cluster's kubeconfig is not UTF-8")?;
    let doc: KubeconfigDoc = serde_saphyr::from_str(&yaml)
        .map_err(|e| format!("the cluster's kubeconfig cannot be read: {e}"))?;
    let c = doc
        .clusters
        .into_iter()
        .next()
        .ok_or("the cluster's kubeconfig names no cluster")?
        .cluster;
    if !c.server.starts_with("https://") {
        return Err(format!("the cluster's server {:?} is not https", c.server));
    }
    Ok(ClusterInfo {
        server: c.server,
        ca_data: c.ca_data,
    })
}

/// The runbook's kubeconfig (JSON, which kubectl reads as YAML): one cluster, one user with
/// `token`, one context with `namespace` as the default.
pub fn kubeconfig(c: &ClusterInfo, token: &str, namespace: Option<&str>) -> String {
    let mut cluster = serde_json::json!({ "server": c.server });
    if let Some(ca) = &c.ca_data {
        cluster["certificate-authority-data"] = serde_json::json!(ca);
    }
    let mut context = serde_json::json!({ "cluster": "aks", "user": "runbook" });
    if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
        context["namespace"] = serde_json::json!(ns);
    }
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "aks", "cluster": cluster }],
        "users": [{ "name": "runbook", "user": { "token": token } }],
        "contexts": [{ "name": "aks", "context": context }],
        "current-context": "aks",
    })
    .to_string()
}

/// A cluster (its lower-cased id) as seen by an identity.
type CacheKey = (String, Option<String>);

/// Fetches clusters' coordinates and tokens for runs.
pub struct AksAccessor {
    arm_url: String,
    http: LazyClient,
    tokens: Arc<RunbookTokens>,
    cache: Mutex<HashMap<CacheKey, (Instant, ClusterInfo)>>,
}

impl std::fmt::Debug for AksAccessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AksAccessor")
            .field("arm_url", &self.arm_url)
            .finish_non_exhaustive()
    }
}

impl AksAccessor {
    /// `CLOUDO_AZURE_ARM_URL`, else Azure's public cloud.
    pub fn new(tokens: Arc<RunbookTokens>) -> Self {
        let arm_url = std::env::var("CLOUDO_AZURE_ARM_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "https://management.azure.com".into());
        // No redirects: the request carries the worker's ARM token.
        let http = LazyClient::new(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .redirect(reqwest::redirect::Policy::none())
        });
        Self {
            arm_url: arm_url.trim_end_matches('/').to_string(),
            http,
            tokens,
            cache: Mutex::default(),
        }
    }

    async fn cluster(
        &self,
        cluster: &ClusterId,
        identity: Option<&str>,
    ) -> Result<ClusterInfo, String> {
        let key = (
            cluster.path().to_ascii_lowercase(),
            identity.map(str::to_string),
        );
        if let Ok(c) = self.cache.lock()
            && let Some((at, info)) = c.get(&key)
            && at.elapsed() < CACHE_FOR
        {
            return Ok(info.clone());
        }
        let arm = self.tokens.token(ARM_SCOPE, identity).await?;
        // The path is rebuilt from the cluster id's checked parts.
        let url = format!(
            "{}{}/listClusterUserCredential?api-version={API_VERSION}",
            self.arm_url,
            cluster.path()
        );
        let res = self
            .http
            .get()?
            .post(&url)
            .bearer_auth(&arm.secret)
            .header("content-length", "0")
            .send()
            .await
            .map_err(|e| format!("Azure Resource Manager is unreachable: {e}"))?;
        let status = res.status();
        if !status.is_success() {
            // Only ARM's error code: its message may describe resources the run may not see.
            let code = res
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|b| b["error"]["code"].as_str().map(str::to_string))
                .filter(|c| c.len() <= 80 && c.bytes().all(|b| b.is_ascii_alphanumeric()))
                .unwrap_or_default();
            return Err(format!(
                "Azure Resource Manager refused the cluster's credentials ({status}{}{code})",
                if code.is_empty() { "" } else { ": " }
            ));
        }
        let creds: Credentials = res
            .json()
            .await
            .map_err(|e| format!("Azure Resource Manager's answer cannot be read: {e}"))?;
        let first = creds
            .kubeconfigs
            .first()
            .ok_or("Azure Resource Manager returned no kubeconfig")?;
        let info = cluster_of(&first.value)?;
        if let Ok(mut c) = self.cache.lock() {
            c.insert(key, (Instant::now(), info.clone()));
        }
        Ok(info)
    }

    /// The kubeconfig text for a run on `cluster` as `identity`, in `namespace`, and the
    /// token in it (for masking).
    pub async fn kubeconfig_for(
        &self,
        cluster: &ClusterId,
        identity: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<(String, String), String> {
        let info = self.cluster(cluster, identity).await?;
        let token = self.tokens.token(AKS_SCOPE, identity).await?;
        Ok((kubeconfig(&info, &token.secret, namespace), token.secret))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_comes_from_arms_kubeconfig_and_the_runbooks_has_only_a_token() {
        let yaml = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Q0E=\n    server: https://aks1.hcp.westeurope.azmk8s.io:443\n  name: aks1\nusers:\n- name: clusterUser\n  user:\n    exec:\n      command: kubelogin\n";
        let b64 = base64::engine::general_purpose::STANDARD.encode(yaml);
        let c = cluster_of(&b64).unwrap();
        assert_eq!(c.server, "https://aks1.hcp.westeurope.azmk8s.io:443");
        assert_eq!(c.ca_data.as_deref(), Some("Q0E="));
        let k: serde_json::Value =
            serde_json::from_str(&kubeconfig(&c, "tok", Some("payments"))).unwrap();
        assert_eq!(k["users"][0]["user"], serde_json::json!({"token": "tok"}));
        assert_eq!(k["contexts"][0]["context"]["namespace"], "payments");
        assert_eq!(k["current-context"], "aks");
        assert!(cluster_of("not base64!").is_err());
        let http = base64::engine::general_purpose::STANDARD
            .encode("clusters:\n- cluster:\n    server: http://plain\n");
        assert!(cluster_of(&http).unwrap_err().contains("not https"));
    }
}
