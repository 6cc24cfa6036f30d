//! Where configuration comes from besides the command line: the TOML file (the same keys
//! as the long options), the secrets file and `CLOUDO_SECRET_<NAME>` variables, and checked
//! durations.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use cloudo_worker::secrets::Secret;

use crate::commands::cli::{Backend, LogFormat, SqliteSync};

/// A duration option in seconds, refused outside `range` (durations feed date and instant
/// arithmetic, where a huge value would overflow).
pub(super) fn seconds(
    name: &str,
    value: u64,
    range: std::ops::RangeInclusive<u64>,
) -> anyhow::Result<Duration> {
    if range.contains(&value) {
        return Ok(Duration::from_secs(value));
    }
    let (lo, hi) = range.into_inner();
    if lo == 0 {
        bail!("{name} must be at most {hi} seconds, got {value}");
    }
    bail!("{name} must be between {lo} and {hi} seconds, got {value}");
}

/// `--secrets-file` (a JSON object) plus `CLOUDO_SECRET_<NAME>` variables.
pub(super) fn load_secrets(file: Option<&Path>) -> anyhow::Result<HashMap<String, Secret>> {
    let mut out = HashMap::new();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read secrets file {}", path.display()))?;
        let map: HashMap<String, String> = serde_json::from_str(&text).with_context(|| {
            format!(
                "secrets file {}: expected a JSON object of strings",
                path.display()
            )
        })?;
        for (k, v) in map {
            out.insert(k, Secret::new(v));
        }
    }
    for (k, v) in std::env::vars() {
        if let Some(name) = k.strip_prefix("CLOUDO_SECRET_")
            && !name.is_empty()
        {
            out.insert(name.to_string(), Secret::new(v));
        }
    }
    if let Some(bad) = out
        .keys()
        .find(|n| !cloudo_core::schema::valid_secret_name(n))
    {
        bail!(
            "secret name {bad:?} is not usable (upper-case letters, digits, '_'; not PATH, HOME, LD_*, or a contract prefix)"
        );
    }
    Ok(out)
}

/// A secret from the environment only (a flag would show in `ps`).
pub(super) fn env_secret(name: &str) -> Option<Secret> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Secret::new)
}

/// The TOML file: the same keys as the long options.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) listen: Option<SocketAddr>,
    pub(super) data_dir: Option<PathBuf>,
    pub(super) catalog: Option<PathBuf>,
    pub(super) runbooks: Option<PathBuf>,
    pub(super) log_format: Option<LogFormat>,
    pub(super) concurrency: Option<usize>,
    pub(super) output_cap: Option<usize>,
    pub(super) kill_grace: Option<u64>,
    pub(super) lost_after: Option<u64>,
    pub(super) queue_timeout: Option<u64>,
    pub(super) max_deliveries: Option<u32>,
    pub(super) body_limit: Option<usize>,
    pub(super) header_timeout: Option<u64>,
    pub(super) max_client_connections: Option<usize>,
    pub(super) max_alerts: Option<usize>,
    pub(super) public_url: Option<String>,
    pub(super) sqlite_sync: Option<SqliteSync>,
    pub(super) routes: Option<PathBuf>,
    pub(super) dedup_window: Option<u64>,
    pub(super) compat_lowercase_resource: Option<bool>,
    pub(super) runbooks_git: Option<String>,
    pub(super) runbooks_ref: Option<String>,
    pub(super) runbooks_path: Option<String>,
    pub(super) runbooks_refresh: Option<u64>,
    pub(super) git_ssh_key: Option<PathBuf>,
    pub(super) sandbox: Option<String>,
    pub(super) sandbox_image: Option<String>,
    pub(super) sandbox_pull: Option<bool>,
    pub(super) sandbox_network: Option<String>,
    pub(super) limit_memory_mb: Option<u64>,
    pub(super) limit_pids: Option<u64>,
    pub(super) limit_cpu: Option<f64>,
    pub(super) secrets_file: Option<PathBuf>,
    pub(super) ingest_rate: Option<u32>,
    pub(super) entra_tenant: Option<String>,
    pub(super) entra_audience: Option<String>,
    pub(super) entra_jwks_url: Option<String>,
    pub(super) worker_pools: Option<Vec<String>>,
    pub(super) backend: Option<Backend>,
    pub(super) azure_storage_account: Option<String>,
    pub(super) azure_credential: Option<String>,
    pub(super) azure_prefix: Option<String>,
    pub(super) notify_routes: Option<PathBuf>,
    pub(super) opsgenie_api_url: Option<String>,
    pub(super) slack_api_url: Option<String>,
    pub(super) slack_channel: Option<String>,
    pub(super) notify_max_attempts: Option<u32>,
    pub(super) notify_backoff_ms: Option<u64>,
}

pub(super) fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
}
