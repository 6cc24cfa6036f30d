//! Configuration of `cloudo serve`, resolved once: command line and environment (clap),
//! then the TOML file, then defaults. The rest of the program only sees [`ServeConfig`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

use cloudo_worker::secrets::Secret;
use cloudo_worker::{Choice, ResolvedLimits, SandboxOptions};

use crate::commands::cli::{Backend, LogFormat, ServeArgs, SqliteSync};

mod azure;
mod sources;
pub use azure::AzureBackend;
use sources::{FileConfig, env_secret, load_secrets, read_file, seconds};

/// Everything `serve` needs, validated.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub catalog: PathBuf,
    pub runbooks: PathBuf,
    pub log_format: LogFormat,
    pub concurrency: usize,
    pub output_cap: usize,
    pub lost_after: Duration,
    pub queue_timeout: Duration,
    pub max_deliveries: u32,
    pub body_limit: usize,
    /// Header timeout and connections per client of the HTTP server.
    pub connections: crate::api::server::ConnectionLimits,
    /// Most alerts one request may carry (an Alertmanager group).
    pub max_alerts: usize,
    /// Base of links to executions: `--public-url`, else `http://<listen>`.
    pub public_url: String,
    /// Whether `public_url` was given (else it follows the address actually bound).
    pub public_url_given: bool,
    pub sqlite_sync: SqliteSync,
    pub routes: Option<PathBuf>,
    pub dedup_window: Duration,
    pub compat_lowercase_resource: bool,
    pub git: Option<GitSource>,
    pub sandbox: SandboxOptions,
    pub dev_no_auth: bool,
    /// From `CLOUDO_ADMIN_KEY` only.
    pub admin_key: Option<Secret>,
    /// Runbook secrets by name (values never printed).
    pub secrets: HashMap<String, Secret>,
    pub ingest_rate: u32,
    pub entra: Option<crate::api::entra::EntraConfig>,
    /// `None`: every pool of the catalog.
    pub worker_pools: Option<Vec<String>>,
    /// `Some` with `--backend azure`.
    pub azure: Option<AzureBackend>,
    pub notify: crate::services::notify::NotifySettings,
}

impl ServeConfig {
    /// The base of links to executions once listening on `bound` (port 0 picks one).
    pub fn public_url_at(&self, bound: SocketAddr) -> String {
        if self.public_url_given {
            self.public_url.clone()
        } else {
            format!("http://{bound}")
        }
    }

    /// Every secret value this process holds, for the log redaction layer.
    pub fn known_secrets(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .secrets
            .values()
            .map(|s| s.expose().to_string())
            .collect();
        out.extend(self.admin_key.iter().map(|k| k.expose().to_string()));
        if let Some(t) = self.git.as_ref().and_then(|g| g.token.as_ref()) {
            out.push(t.expose().to_string());
        }
        out.extend(self.azure.as_ref().and_then(AzureBackend::secret));
        let n = &self.notify;
        for s in [&n.opsgenie_key, &n.slack_token, &n.slack_webhook]
            .into_iter()
            .flatten()
        {
            out.push(s.expose().to_string());
        }
        out
    }
}

/// Runbooks from git.
#[derive(Debug, Clone)]
pub struct GitSource {
    pub url: String,
    pub reference: Option<String>,
    pub prefix: String,
    pub refresh: Duration,
    pub ssh_key: Option<PathBuf>,
    /// From `CLOUDO_GIT_TOKEN` only (a flag would show in `ps`).
    pub token: Option<Secret>,
}

impl ServeConfig {
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.common.config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7071)));
        let concurrency = args
            .common
            .concurrency
            .or(file.concurrency)
            .unwrap_or(cores * 4);
        if concurrency == 0 || concurrency > 4096 {
            bail!("concurrency must be between 1 and 4096, got {concurrency}");
        }
        let output_cap = args
            .common
            .output_cap
            .or(file.output_cap)
            .unwrap_or(1 << 20);
        if !(1024..=256 << 20).contains(&output_cap) {
            bail!("output-cap must be between 1 KiB and 256 MiB, got {output_cap}");
        }
        let lost_after = seconds(
            "lost-after",
            args.lost_after.or(file.lost_after).unwrap_or(90),
            6..=86_400,
        )?;
        let dedup_window = seconds(
            "dedup-window",
            args.dedup_window.or(file.dedup_window).unwrap_or(600),
            0..=604_800,
        )?;
        let queue_timeout = seconds(
            "queue-timeout",
            args.queue_timeout.or(file.queue_timeout).unwrap_or(3600),
            1..=2_592_000,
        )?;
        let connections = crate::api::server::ConnectionLimits {
            header_timeout: seconds(
                "header-timeout",
                args.header_timeout.or(file.header_timeout).unwrap_or(20),
                1..=600,
            )?,
            per_client: args
                .max_client_connections
                .or(file.max_client_connections)
                .unwrap_or(512),
        };
        if connections.per_client == 0 {
            bail!("max-client-connections must be at least 1");
        }
        let max_alerts = args.max_alerts.or(file.max_alerts).unwrap_or(5000);
        if !(1..=100_000).contains(&max_alerts) {
            bail!("max-alerts must be between 1 and 100000, got {max_alerts}");
        }
        let git = match args.common.runbooks_git.or(file.runbooks_git) {
            None => None,
            Some(url) => {
                let refresh = seconds(
                    "runbooks-refresh",
                    args.common
                        .runbooks_refresh
                        .or(file.runbooks_refresh)
                        .unwrap_or(60),
                    5..=86_400,
                )?;
                Some(GitSource {
                    url,
                    reference: args.common.runbooks_ref.or(file.runbooks_ref),
                    prefix: args
                        .common
                        .runbooks_path
                        .or(file.runbooks_path)
                        .unwrap_or_default(),
                    refresh,
                    ssh_key: args.common.git_ssh_key.or(file.git_ssh_key),
                    token: std::env::var("CLOUDO_GIT_TOKEN")
                        .ok()
                        .filter(|t| !t.is_empty())
                        .map(Secret::new),
                })
            }
        };
        let choice: Choice = args
            .common
            .sandbox
            .or(file.sandbox)
            .as_deref()
            .unwrap_or("auto")
            .parse()
            .map_err(anyhow::Error::msg)?;
        let defaults = ResolvedLimits {
            memory_mb: args
                .common
                .limit_memory_mb
                .or(file.limit_memory_mb)
                .unwrap_or(512),
            pids: args.common.limit_pids.or(file.limit_pids).unwrap_or(256),
            cpu: args.common.limit_cpu.or(file.limit_cpu).unwrap_or(1.0),
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
        let kill_grace = seconds(
            "kill-grace",
            args.common.kill_grace.or(file.kill_grace).unwrap_or(5),
            0..=3600,
        )?;
        let sandbox = SandboxOptions {
            choice,
            kill_grace,
            image: args
                .common
                .sandbox_image
                .or(file.sandbox_image)
                .unwrap_or_else(|| "cloudo-runbook:latest".into()),
            pull: args
                .common
                .sandbox_pull
                .or(file.sandbox_pull)
                .unwrap_or(false),
            docker_network: args.common.sandbox_network.or(file.sandbox_network),
            defaults,
        };
        let public_url_given = args.public_url.is_some() || file.public_url.is_some();
        let public_url = args
            .public_url
            .or(file.public_url)
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_string();
        Ok(Self {
            listen,
            data_dir: args
                .common
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| "data".into()),
            catalog: args
                .catalog
                .or(file.catalog)
                .unwrap_or_else(|| "schemas/schemas.json".into()),
            runbooks: args
                .common
                .runbooks
                .or(file.runbooks)
                .unwrap_or_else(|| "runbooks".into()),
            log_format: args
                .common
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Human),
            concurrency,
            output_cap,
            lost_after,
            queue_timeout,
            max_deliveries: args
                .common
                .max_deliveries
                .or(file.max_deliveries)
                .unwrap_or(5)
                .max(1),
            body_limit: args.body_limit.or(file.body_limit).unwrap_or(1 << 20),
            connections,
            max_alerts,
            public_url,
            public_url_given,
            sqlite_sync: args
                .sqlite_sync
                .or(file.sqlite_sync)
                .unwrap_or(SqliteSync::Normal),
            routes: args.routes.or(file.routes),
            dedup_window,
            compat_lowercase_resource: args
                .compat_lowercase_resource
                .or(file.compat_lowercase_resource)
                .unwrap_or(true),
            git,
            sandbox,
            dev_no_auth: args.dev_no_auth.unwrap_or(false),
            ingest_rate: args.ingest_rate.or(file.ingest_rate).unwrap_or(200),
            worker_pools: args.worker_pools.or(file.worker_pools),
            entra: match (
                args.entra_tenant.or(file.entra_tenant),
                args.entra_audience.or(file.entra_audience),
            ) {
                (None, None) => None,
                (Some(tenant), Some(audience)) => Some(crate::api::entra::EntraConfig {
                    jwks_url: args
                        .entra_jwks_url
                        .or(file.entra_jwks_url)
                        .unwrap_or_else(|| {
                            format!(
                                "https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys"
                            )
                        }),
                    tenant,
                    audience,
                }),
                _ => bail!("--entra-tenant and --entra-audience go together"),
            },
            secrets: load_secrets(args.common.secrets_file.or(file.secrets_file).as_deref())?,
            notify: crate::services::notify::NotifySettings {
                opsgenie_url: crate::services::notify::opsgenie_base(
                    args.opsgenie_api_url
                        .or(file.opsgenie_api_url)
                        .as_deref()
                        .unwrap_or("us"),
                ),
                opsgenie_key: env_secret("CLOUDO_OPSGENIE_API_KEY"),
                slack_url: args
                    .slack_api_url
                    .or(file.slack_api_url)
                    .unwrap_or_else(|| "https://slack.com/api".into())
                    .trim_end_matches('/')
                    .to_string(),
                slack_token: env_secret("CLOUDO_SLACK_TOKEN"),
                slack_channel: args.slack_channel.or(file.slack_channel),
                slack_webhook: env_secret("CLOUDO_SLACK_WEBHOOK_URL"),
                routes_file: args.notify_routes.or(file.notify_routes),
                max_attempts: args
                    .notify_max_attempts
                    .or(file.notify_max_attempts)
                    .unwrap_or(8)
                    .clamp(1, 100),
                backoff: Duration::from_millis(
                    args.notify_backoff_ms
                        .or(file.notify_backoff_ms)
                        .unwrap_or(1000)
                        .clamp(10, 600_000),
                ),
            },
            azure: match args
                .azure
                .backend
                .or(file.backend)
                .unwrap_or(Backend::Sqlite)
            {
                Backend::Sqlite => None,
                Backend::Azure => Some(AzureBackend::resolve(
                    args.azure
                        .azure_storage_account
                        .or(file.azure_storage_account),
                    args.azure.azure_credential.or(file.azure_credential),
                    args.azure.azure_prefix.or(file.azure_prefix),
                )?),
            },
            admin_key: std::env::var("CLOUDO_ADMIN_KEY")
                .ok()
                .filter(|k| !k.is_empty())
                .map(Secret::new),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_beats_file_beats_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("cloudo.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nconcurrency = 3\ncatalog = \"c.json\"\n",
        )
        .expect("write");
        let args = ServeArgs {
            common: crate::commands::cli::CommonArgs {
                config: Some(file.clone()),
                concurrency: Some(7),
                ..Default::default()
            },
            ..ServeArgs::default()
        };
        let c = ServeConfig::resolve(args).expect("valid");
        assert_eq!(c.concurrency, 7);
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.catalog, PathBuf::from("c.json"));
        assert_eq!(c.runbooks, PathBuf::from("runbooks"));
        assert_eq!(c.public_url, "http://127.0.0.1:9000");

        std::fs::write(&file, "concurency = 3\n").expect("write");
        let e = ServeConfig::resolve(ServeArgs {
            common: crate::commands::cli::CommonArgs {
                config: Some(file),
                ..Default::default()
            },
            ..ServeArgs::default()
        })
        .expect_err("typo refused");
        assert!(format!("{e:#}").contains("concurency"), "{e:#}");
    }
}
