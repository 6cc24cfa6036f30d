//! Configuration of `cloudo serve`, resolved once: command line and environment (clap),
//! then the TOML file, then defaults. The rest of the program only sees [`ServeConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

use cloudo_worker::command::config::{WorkerConfig, env_secret, read_toml, seconds};

use crate::commands::cli::{ServeArgs, SqliteSync};

mod file;
mod oidc;
use file::FileConfig;

/// Everything `serve` needs, validated: what its in-process workers need (`worker`, the
/// same as a standalone worker's), and the orchestrator's own settings.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub worker: WorkerConfig,
    pub listen: SocketAddr,
    /// `--catalog`, else `schemas/schemas.json` when it exists, else none (the stored one).
    pub catalog: Option<PathBuf>,
    pub lost_after: Duration,
    pub queue_timeout: Duration,
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
    pub dev_no_auth: bool,
    /// Keys the environment gives (`CLOUDO_ADMIN_KEY`, `CLOUDO_INGEST_KEY`,
    /// `CLOUDO_WORKER_KEY_<POOL>`), never flags.
    pub given_keys: Vec<crate::services::access::GivenKey>,
    pub ingest_rate: u32,
    pub entra: Option<crate::api::entra::EntraConfig>,
    /// `None`: every pool of the catalog.
    pub worker_pools: Option<Vec<String>>,
    pub notify: crate::services::notify::NotifySettings,
    /// Where every schema's runs may act (the file's `[guardrails]`).
    pub guardrails: cloudo_core::policy::Guardrails,
    /// Running runbooks per pool, across its workers (`--pool-capacity`).
    pub pool_capacity: std::collections::BTreeMap<String, u32>,
    /// `--schedules`: the schedules file, if any.
    pub schedules: Option<PathBuf>,
    /// How long a console session lasts from sign-in.
    pub session_ttl: Duration,
    /// Single sign-on to the console, when configured.
    pub oidc: Option<crate::api::oidc::OidcConfig>,
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
        let mut out = self.worker.known_secrets();
        out.extend(
            self.given_keys
                .iter()
                .map(|k| k.secret.expose().to_string()),
        );
        out.extend(
            self.oidc
                .iter()
                .map(|o| o.client_secret.expose().to_string()),
        );
        let n = &self.notify;
        for s in [
            &n.opsgenie_key,
            &n.slack_token,
            &n.slack_webhook,
            &n.slack_signing_secret,
        ]
        .into_iter()
        .flatten()
        {
            out.push(s.expose().to_string());
        }
        out
    }
}

impl ServeConfig {
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Self> {
        let file: FileConfig = match &args.common.config {
            Some(p) => read_toml(p)?,
            None => FileConfig::default(),
        };
        if let Some(key) = file.other.keys().next() {
            bail!("config file: unknown key {key:?} (the keys are the long options, with _ for -)");
        }
        let (file, worker) = (file.serve, file.worker);
        let worker = WorkerConfig::resolve(args.common, args.azure, worker)?;
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7071)));
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
        let public_url_given = args.public_url.is_some() || file.public_url.is_some();
        let public_url = args
            .public_url
            .or(file.public_url)
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_string();
        let guardrails = file.guardrails.unwrap_or_default();
        let as_policy = cloudo_core::policy::Policy {
            guardrails: guardrails.clone(),
            ..Default::default()
        };
        if let Err((field, message)) = as_policy.check() {
            bail!("config file: guardrails.{field}: {message}");
        }
        let pool_capacity = match args.pool_capacity {
            Some(pairs) => pool_capacities(&pairs)?,
            None => file.pool_capacity.unwrap_or_default(),
        };
        if let Some((pool, n)) = pool_capacity
            .iter()
            .find(|(_, n)| !(1..=cloudo_core::policy::MAX_LIMIT).contains(*n))
        {
            bail!(
                "pool-capacity {pool}={n}: must be between 1 and {}",
                cloudo_core::policy::MAX_LIMIT
            );
        }
        let session_ttl = seconds(
            "session-ttl",
            args.session_ttl.or(file.session_ttl).unwrap_or(8 * 3600),
            300..=604_800,
        )?;
        let oidc = oidc::resolve(oidc::OidcInput {
            issuer: args.oidc_issuer.or(file.oidc_issuer),
            client_id: args.oidc_client_id.or(file.oidc_client_id),
            role_claim: args.oidc_role_claim.or(file.oidc_role_claim),
            roles: args.oidc_roles,
            file_roles: file.oidc_roles,
            scopes: args.oidc_scopes.or(file.oidc_scopes),
            name: args.oidc_name.or(file.oidc_name),
        })?;
        Ok(Self {
            oidc,
            session_ttl,
            guardrails,
            pool_capacity,
            schedules: args.schedules.or(file.schedules),
            worker,
            listen,
            catalog: args.catalog.or(file.catalog).or_else(|| {
                let default = PathBuf::from("schemas/schemas.json");
                default.exists().then_some(default)
            }),
            lost_after,
            queue_timeout,
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
                slack_signing_secret: env_secret("CLOUDO_SLACK_SIGNING_SECRET"),
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
            given_keys: crate::services::access::keys_from_env(),
        })
    }
}

/// `POOL=N` pairs.
fn pool_capacities(pairs: &[String]) -> anyhow::Result<std::collections::BTreeMap<String, u32>> {
    let mut out = std::collections::BTreeMap::new();
    for p in pairs.iter().filter(|p| !p.trim().is_empty()) {
        let Some((pool, n)) = p.split_once('=') else {
            bail!("pool-capacity {p:?}: expected POOL=N");
        };
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("pool-capacity {p:?}: N must be a whole number"))?;
        out.insert(pool.trim().to_string(), n);
    }
    Ok(out)
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
        assert_eq!(c.worker.concurrency, 7);
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.catalog, Some(PathBuf::from("c.json")));
        assert_eq!(c.worker.runbooks, PathBuf::from("runbooks"));
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
