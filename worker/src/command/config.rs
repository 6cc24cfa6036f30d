//! Configuration of a process that runs runbooks, resolved once: command line and
//! environment (clap), then the TOML file, then defaults. `cloudo serve` resolves the same
//! [`WorkerConfig`] as part of its own.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::args::{AzureArgs, Backend, CommonArgs, LogFormat};
use super::azure::AzureBackend;
use crate::secrets::Secret;
use crate::{Choice, ResolvedLimits, SandboxOptions};

/// What a process that runs runbooks needs, validated.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub data_dir: PathBuf,
    pub runbooks: PathBuf,
    pub log_format: LogFormat,
    pub concurrency: usize,
    pub output_cap: usize,
    pub max_deliveries: u32,
    pub git: Option<GitSource>,
    pub sandbox: SandboxOptions,
    /// Runbook secrets by name (values never printed).
    pub secrets: HashMap<String, Secret>,
    /// `Some` with `--backend azure`.
    pub azure: Option<AzureBackend>,
}

/// Runbooks from git.
#[derive(Debug, Clone)]
pub struct GitSource {
    pub url: String,
    pub reference: Option<String>,
    pub prefix: String,
    pub refresh: Duration,
    pub ssh_key: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    /// From `CLOUDO_GIT_TOKEN` only (a flag would show in `ps`).
    pub token: Option<Secret>,
}

/// The worker's keys of the TOML file (the same names as the long options). `serve` reads
/// them from the same file, flattened beside its own keys.
#[derive(Debug, Default, Deserialize)]
pub struct WorkerFile {
    pub data_dir: Option<PathBuf>,
    pub runbooks: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub concurrency: Option<usize>,
    pub output_cap: Option<usize>,
    pub kill_grace: Option<u64>,
    pub max_deliveries: Option<u32>,
    pub runbooks_git: Option<String>,
    pub runbooks_ref: Option<String>,
    pub runbooks_path: Option<String>,
    pub runbooks_refresh: Option<u64>,
    pub git_ssh_key: Option<PathBuf>,
    pub git_known_hosts: Option<PathBuf>,
    pub sandbox: Option<String>,
    pub sandbox_image: Option<String>,
    pub sandbox_pull: Option<bool>,
    pub sandbox_network: Option<String>,
    pub limit_memory_mb: Option<u64>,
    pub limit_pids: Option<u64>,
    pub limit_cpu: Option<f64>,
    pub secrets_file: Option<PathBuf>,
    pub backend: Option<Backend>,
    pub azure_storage_account: Option<String>,
    pub azure_credential: Option<String>,
    pub azure_prefix: Option<String>,
}

/// A TOML file with the keys of `T` and whatever else it holds (`other`, for the caller to
/// refuse or to report).
#[derive(Debug, Deserialize)]
pub struct TomlFile<T> {
    #[serde(flatten)]
    pub known: T,
    #[serde(flatten)]
    pub other: BTreeMap<String, toml::Value>,
}

impl<T: DeserializeOwned + Default> TomlFile<T> {
    /// The file at `path`, or only defaults without one.
    pub fn read(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self {
                known: T::default(),
                other: BTreeMap::new(),
            });
        };
        read_toml(path)
    }
}

/// A TOML configuration file, with the file's name in every error.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
}

impl WorkerConfig {
    pub fn resolve(args: CommonArgs, azure: AzureArgs, file: WorkerFile) -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let concurrency = args.concurrency.or(file.concurrency).unwrap_or(cores * 4);
        if concurrency == 0 || concurrency > 4096 {
            bail!("concurrency must be between 1 and 4096, got {concurrency}");
        }
        let output_cap = args.output_cap.or(file.output_cap).unwrap_or(1 << 20);
        if !(1024..=256 << 20).contains(&output_cap) {
            bail!("output-cap must be between 1 KiB and 256 MiB, got {output_cap}");
        }
        let git = match args.runbooks_git.or(file.runbooks_git) {
            None => None,
            Some(url) => Some(GitSource {
                url,
                reference: args.runbooks_ref.or(file.runbooks_ref),
                prefix: args
                    .runbooks_path
                    .or(file.runbooks_path)
                    .unwrap_or_default(),
                refresh: seconds(
                    "runbooks-refresh",
                    args.runbooks_refresh
                        .or(file.runbooks_refresh)
                        .unwrap_or(60),
                    5..=86_400,
                )?,
                ssh_key: args.git_ssh_key.or(file.git_ssh_key),
                known_hosts: args.git_known_hosts.or(file.git_known_hosts),
                token: env_secret("CLOUDO_GIT_TOKEN"),
            }),
        };
        let choice: Choice = args
            .sandbox
            .or(file.sandbox)
            .as_deref()
            .unwrap_or("auto")
            .parse()
            .map_err(anyhow::Error::msg)?;
        let defaults = ResolvedLimits {
            memory_mb: args.limit_memory_mb.or(file.limit_memory_mb).unwrap_or(512),
            pids: args.limit_pids.or(file.limit_pids).unwrap_or(256),
            cpu: args.limit_cpu.or(file.limit_cpu).unwrap_or(1.0),
        };
        {
            use cloudo_core::schema::{MAX_CPU, MAX_MEMORY_MB, MAX_PIDS};
            if !(4..=MAX_MEMORY_MB).contains(&defaults.memory_mb)
                || !(4..=MAX_PIDS).contains(&defaults.pids)
                || defaults.cpu.is_nan()
                || defaults.cpu <= 0.0
                || defaults.cpu > MAX_CPU
            {
                bail!(
                    "limits: memory 4 to {MAX_MEMORY_MB} MiB, pids 4 to {MAX_PIDS}, cpu above 0 \
                     and at most {MAX_CPU}"
                );
            }
        }
        let sandbox = SandboxOptions {
            choice,
            kill_grace: seconds(
                "kill-grace",
                args.kill_grace.or(file.kill_grace).unwrap_or(5),
                0..=3600,
            )?,
            image: args
                .sandbox_image
                .or(file.sandbox_image)
                .unwrap_or_else(|| "cloudo-runbook:latest".into()),
            pull: args.sandbox_pull.or(file.sandbox_pull).unwrap_or(false),
            docker_network: args.sandbox_network.or(file.sandbox_network),
            defaults,
        };
        Ok(Self {
            data_dir: args
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| "data".into()),
            runbooks: args
                .runbooks
                .or(file.runbooks)
                .unwrap_or_else(|| "runbooks".into()),
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Human),
            concurrency,
            output_cap,
            max_deliveries: args
                .max_deliveries
                .or(file.max_deliveries)
                .unwrap_or(5)
                .max(1),
            git,
            sandbox,
            secrets: load_secrets(args.secrets_file.or(file.secrets_file).as_deref())?,
            azure: match azure.backend.or(file.backend).unwrap_or(Backend::Sqlite) {
                Backend::Sqlite => None,
                Backend::Azure => Some(AzureBackend::resolve(
                    azure.azure_storage_account.or(file.azure_storage_account),
                    azure.azure_credential.or(file.azure_credential),
                    azure.azure_prefix.or(file.azure_prefix),
                )?),
            },
        })
    }

    /// Every secret value this configuration holds, for the log redaction layer.
    pub fn known_secrets(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .secrets
            .values()
            .map(|s| s.expose().to_string())
            .collect();
        if let Some(t) = self.git.as_ref().and_then(|g| g.token.as_ref()) {
            out.push(t.expose().to_string());
        }
        out.extend(self.azure.as_ref().and_then(AzureBackend::secret));
        out
    }
}

/// A duration option in seconds, refused outside `range` (durations feed date and instant
/// arithmetic, where a huge value would overflow).
pub fn seconds(
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
pub fn load_secrets(file: Option<&Path>) -> anyhow::Result<HashMap<String, Secret>> {
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
pub fn env_secret(name: &str) -> Option<Secret> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Secret::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_file_gives_the_worker_its_keys_and_names_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cloudo.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nconcurrency = 3\nlimit_cpu = 0.5\nsandbox = \"process\"\n",
        )
        .expect("write");
        let file = TomlFile::<WorkerFile>::read(Some(&path)).expect("valid");
        assert_eq!(file.other.keys().collect::<Vec<_>>(), ["listen"]);
        let args = CommonArgs {
            concurrency: Some(5),
            ..Default::default()
        };
        let cfg = WorkerConfig::resolve(args, AzureArgs::default(), file.known).expect("valid");
        assert_eq!(cfg.concurrency, 5, "the command line wins");
        assert_eq!(cfg.sandbox.defaults.cpu, 0.5);
        assert_eq!(cfg.output_cap, 1 << 20);

        std::fs::write(&path, "concurrency = \"many\"\n").expect("write");
        let e = TomlFile::<WorkerFile>::read(Some(&path)).expect_err("a string is refused");
        assert!(format!("{e:#}").contains("cloudo.toml"), "{e:#}");
    }
}
