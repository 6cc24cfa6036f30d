//! Command-line interface: every option, with its environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
pub use cloudo_worker::command::args::{AzureArgs, Backend, CommonArgs, WorkerArgs};

use crate::commands::client::args::{
    ClientArgs, CompletionsArgs, DecideArgs, ExecArgs, LoginArgs, LogsArgs, LsArgs, RoutesArgs,
    SchemasArgs, TriggerArgs,
};

/// ClouDO in Rust: runbook automation for on-call teams.
///
/// An alert or a person asks for a runbook; cloudo records the execution durably, runs the
/// runbook in a sandbox with the alert's context in its environment, and keeps its status
/// and output.
#[derive(Debug, Parser)]
#[command(name = "cloudo", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole engine in one process: HTTP API, embedded store and queue (SQLite),
    /// and an in-process worker pool.
    Serve(Box<ServeArgs>),
    /// Run a standalone worker: consume one pool's queue (Azure Storage), run the runbooks,
    /// report to the orchestrator over HTTP with a worker key (CLOUDO_WORKER_KEY).
    Worker(Box<WorkerArgs>),
    /// Manage API keys in the data dir's database (works with the server running or not),
    /// or through a server's API with --url.
    Keys(Box<KeysArgs>),
    /// Run a schema's runbook now; --follow prints its output and exits with its outcome.
    Trigger(Box<TriggerArgs>),
    /// An execution's output; --follow goes on until it ends.
    Logs(LogsArgs),
    /// Recent executions, newest first.
    Ls(LsArgs),
    /// One execution: status, times, runbook, variables, notifications.
    Show(ExecArgs),
    /// Stop a running or waiting execution.
    Cancel(ExecArgs),
    /// Approve an execution that waits for approval.
    Approve(DecideArgs),
    /// Reject an execution that waits for approval.
    Reject(DecideArgs),
    /// The catalog: list, show, apply a file, or validate one offline.
    Schemas(SchemasArgs),
    /// Routing rules: test what an alert would run.
    Routes(RoutesArgs),
    /// Convert ClouDO's ROUTING_RULES JSON to notification routes (YAML on stdout), offline.
    /// `--notify-routes` also takes ClouDO's file as it is.
    ImportRouting(ImportRoutingArgs),
    /// Worker pools and the workers serving them.
    Workers(ClientArgs),
    /// Schedules, with their next and last runs.
    Schedules(ClientArgs),
    /// Save a server's address and a key (asked for, not echoed) in the config file.
    Login(LoginArgs),
    /// Print a shell completion script: `cloudo completions bash > /etc/bash_completion.d/cloudo`.
    Completions(CompletionsArgs),
}

#[derive(Debug, clap::Args)]
pub struct ImportRoutingArgs {
    /// ClouDO's ROUTING_RULES JSON (`-` for stdin).
    pub file: std::path::PathBuf,
    /// Print JSON instead of YAML.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    /// Folder of the database [default: ./data].
    #[arg(long, env = "CLOUDO_DATA_DIR", value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// `sqlite` (the data dir's database) or `azure` (the shared tables; the same
    /// CLOUDO_AZURE_* settings as `serve`) [default: sqlite].
    #[arg(long, env = "CLOUDO_BACKEND", value_enum, global = true)]
    pub backend: Option<Backend>,

    #[arg(
        long,
        env = "CLOUDO_AZURE_STORAGE_ACCOUNT",
        value_name = "NAME",
        global = true
    )]
    pub azure_storage_account: Option<String>,

    #[arg(
        long,
        env = "CLOUDO_AZURE_CREDENTIAL",
        value_name = "KIND",
        global = true
    )]
    pub azure_credential: Option<String>,

    #[arg(
        long,
        env = "CLOUDO_AZURE_PREFIX",
        value_name = "PREFIX",
        global = true
    )]
    pub azure_prefix: Option<String>,

    /// Manage the keys of this server through its API (an admin key) instead of a database.
    #[arg(long, value_name = "URL", global = true)]
    pub url: Option<String>,

    /// The admin key for --url [default: CLOUDO_KEY, else the `cloudo login` file's].
    #[arg(
        long,
        env = "CLOUDO_KEY",
        hide_env_values = true,
        global = true,
        value_name = "KEY"
    )]
    pub key: Option<String>,

    /// With --url: print JSON.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it (it is shown only this once).
    Create {
        /// A name for the key (what the audit log shows).
        #[arg(long)]
        name: String,
        /// ingest, viewer, operator or admin.
        #[arg(long)]
        role: String,
        /// Expiry, RFC 3339 (e.g. 2027-01-01T00:00:00Z).
        #[arg(long, value_name = "TIME")]
        expires_at: Option<String>,
        /// The pool of a worker key.
        #[arg(long)]
        pool: Option<String>,
        /// Limit the key to schemas: id:<schema id>, partition:<partition key> or
        /// tag:<tag>; repeat or comma-separate [default: every schema].
        #[arg(long, value_delimiter = ',', value_name = "SELECTOR")]
        scope: Vec<String>,
    },
    /// List keys (names, roles, expiry, last use; never the keys).
    List,
    /// Revoke (delete) a key.
    Revoke { name: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    /// Commits survive a crash of the process (WAL, synchronous=NORMAL).
    Normal,
    /// Commits are fsynced: they also survive a power cut (synchronous=FULL), at a cost.
    Full,
}

/// Options of `cloudo serve`. Each may also come from its environment variable or from the
/// TOML file given with `--config` (same names, with `_` for `-`); the command line wins,
/// then the environment, then the file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub azure: AzureArgs,

    /// Address and port to listen on [default: 127.0.0.1:7071].
    #[arg(long, env = "CLOUDO_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Catalog file in ClouDO's format; stored, replacing the stored catalog, at each start
    /// [default: schemas/schemas.json when it exists, else the stored catalog].
    #[arg(long, env = "CLOUDO_CATALOG", value_name = "FILE")]
    pub catalog: Option<PathBuf>,

    /// A running execution whose worker sent no heartbeat for this long is marked lost
    /// [default: 90; with the reaper's sweep every lost-after / 4, a silent run ends within
    /// about 113 s].
    #[arg(long, env = "CLOUDO_LOST_AFTER", value_name = "SECS")]
    pub lost_after: Option<u64>,

    /// An execution still waiting for a worker this long after it was queued ends `error`
    /// (no worker serves its pool, or its job was lost) instead of running late; at most
    /// 30 days [default: 3600].
    #[arg(long, env = "CLOUDO_QUEUE_TIMEOUT", value_name = "SECS")]
    pub queue_timeout: Option<u64>,

    /// Largest request body accepted, in bytes [default: 1048576].
    #[arg(long, env = "CLOUDO_BODY_LIMIT", value_name = "BYTES")]
    pub body_limit: Option<usize>,

    /// Seconds a client has to send a request's headers; slower ones are cut with 408
    /// [default: 20].
    #[arg(long, env = "CLOUDO_HEADER_TIMEOUT", value_name = "SECS")]
    pub header_timeout: Option<u64>,

    /// Open connections one client address may hold; more are answered 429 [default: 512].
    #[arg(long, env = "CLOUDO_MAX_CLIENT_CONNECTIONS", value_name = "N")]
    pub max_client_connections: Option<usize>,

    /// Most alerts one request may carry (an Alertmanager group); more are refused with 413
    /// [default: 5000].
    #[arg(long, env = "CLOUDO_MAX_ALERTS", value_name = "N")]
    pub max_alerts: Option<usize>,

    /// Base URL used in links to executions [default: http://<listen>].
    #[arg(long, env = "CLOUDO_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Routing rules file (YAML or JSON); replaces the rules stored through the API at start.
    #[arg(long, env = "CLOUDO_ROUTES", value_name = "FILE")]
    pub routes: Option<PathBuf>,

    /// Seconds within which the same alert (or Idempotency-Key) is not run again
    /// [default: 600; 0 turns dedup off].
    #[arg(long, env = "CLOUDO_DEDUP_WINDOW", value_name = "SECS")]
    pub dedup_window: Option<u64>,

    /// Lower-case RESOURCE_RG and RESOURCE_NAME as ClouDO did [default: true].
    #[arg(long, env = "CLOUDO_COMPAT_LOWERCASE_RESOURCE", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub compat_lowercase_resource: Option<bool>,

    /// Turn authentication off (every request is an admin). For a laptop only; a warning
    /// is logged at every start. The bootstrap admin key comes from CLOUDO_ADMIN_KEY, or
    /// is generated and printed once when no key exists.
    #[arg(long, env = "CLOUDO_DEV_NO_AUTH", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set, value_name = "BOOL")]
    pub dev_no_auth: Option<bool>,

    /// Pools the in-process workers serve, comma-separated [default: every pool of the
    /// catalog]. Other pools wait for standalone workers; `none` serves no pool.
    #[arg(
        long,
        env = "CLOUDO_WORKER_POOLS",
        value_name = "POOLS",
        value_delimiter = ','
    )]
    pub worker_pools: Option<Vec<String>>,

    /// Caps a pool's running runbooks across all its workers (`POOL=N`, repeatable, or
    /// comma-separated); the excess waits in order.
    #[arg(
        long,
        env = "CLOUDO_POOL_CAPACITY",
        value_name = "POOL=N",
        value_delimiter = ','
    )]
    pub pool_capacity: Option<Vec<String>>,

    /// Requests a second one client may make to the ingest routes (bursts of twice that);
    /// over it: 429 with Retry-After. 0 turns the limit off [default: 200].
    #[arg(long, env = "CLOUDO_INGEST_RATE", value_name = "N")]
    pub ingest_rate: Option<u32>,

    /// Entra ID tenant whose "Secure Webhook" tokens the ingest routes accept (Azure action
    /// groups with Entra authentication). Needs --entra-audience.
    #[arg(long, env = "CLOUDO_ENTRA_TENANT", value_name = "TENANT_ID")]
    pub entra_tenant: Option<String>,

    /// Audience the tokens must carry: the Application ID URI or client id of the app
    /// registration the action group targets.
    #[arg(long, env = "CLOUDO_ENTRA_AUDIENCE", value_name = "AUDIENCE")]
    pub entra_audience: Option<String>,

    /// Where the tenant's signing keys are [default:
    /// https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys].
    #[arg(long, env = "CLOUDO_ENTRA_JWKS_URL", value_name = "URL")]
    pub entra_jwks_url: Option<String>,

    /// SQLite commit durability [default: normal].
    #[arg(long, env = "CLOUDO_SQLITE_SYNC", value_enum)]
    pub sqlite_sync: Option<SqliteSync>,

    /// Notification routing (teams, their Slack channels and Opsgenie keys by reference,
    /// rules), YAML or JSON; replaces what the API stored, at each start.
    #[arg(long, env = "CLOUDO_NOTIFY_ROUTES", value_name = "FILE")]
    pub notify_routes: Option<PathBuf>,

    /// Schedules (`{"schedules": [{id, schema, cron, tz, run_args, enabled, catch_up}]}`),
    /// YAML or JSON; replaces what the API stored, at each start.
    #[arg(long, env = "CLOUDO_SCHEDULES", value_name = "FILE")]
    pub schedules: Option<PathBuf>,

    /// How long a console sign-in lasts, in seconds (the session cookie's Max-Age and the
    /// server-side expiry), 300 to 604800 [default: 28800, 8 hours].
    #[arg(long, env = "CLOUDO_SESSION_TTL", value_name = "SECS")]
    pub session_ttl: Option<u64>,

    /// OpenID Connect issuer for single sign-on to the console (e.g.
    /// https://login.microsoftonline.com/<tenant>/v2.0). Needs --oidc-client-id,
    /// CLOUDO_OIDC_CLIENT_SECRET (environment only) and --oidc-roles.
    #[arg(long, env = "CLOUDO_OIDC_ISSUER", value_name = "URL")]
    pub oidc_issuer: Option<String>,

    /// The console's client (application) id at the provider.
    #[arg(long, env = "CLOUDO_OIDC_CLIENT_ID", value_name = "ID")]
    pub oidc_client_id: Option<String>,

    /// The ID token claim whose values map to roles [default: groups; Entra app roles:
    /// roles].
    #[arg(long, env = "CLOUDO_OIDC_ROLE_CLAIM", value_name = "CLAIM")]
    pub oidc_role_claim: Option<String>,

    /// Claim value to role, `VALUE=ROLE` (viewer, operator, admin), repeatable or
    /// comma-separated; a user gets the highest role any of their values maps to.
    #[arg(
        long,
        env = "CLOUDO_OIDC_ROLES",
        value_name = "VALUE=ROLE",
        value_delimiter = ','
    )]
    pub oidc_roles: Option<Vec<String>>,

    /// Scopes asked for [default: openid profile email].
    #[arg(long, env = "CLOUDO_OIDC_SCOPES", value_name = "SCOPES")]
    pub oidc_scopes: Option<String>,

    /// What the console's sign-in button names [default: single sign-on].
    #[arg(long, env = "CLOUDO_OIDC_NAME", value_name = "NAME")]
    pub oidc_name: Option<String>,

    /// Opsgenie alert API: `us`, `eu`, `jsm` (Jira Service Management Operations) or a base
    /// URL [default: us]. The default team's key: CLOUDO_OPSGENIE_API_KEY (environment only).
    #[arg(long, env = "CLOUDO_OPSGENIE_API_URL", value_name = "URL")]
    pub opsgenie_api_url: Option<String>,

    /// Slack Web API base URL [default: https://slack.com/api]. Bot token:
    /// CLOUDO_SLACK_TOKEN, or an incoming webhook: CLOUDO_SLACK_WEBHOOK_URL (environment only).
    #[arg(long, env = "CLOUDO_SLACK_API_URL", value_name = "URL")]
    pub slack_api_url: Option<String>,

    /// The default team's Slack channel.
    #[arg(long, env = "CLOUDO_SLACK_CHANNEL", value_name = "CHANNEL")]
    pub slack_channel: Option<String>,

    /// Attempts to deliver a notification before it is recorded as failed [default: 8].
    #[arg(long, env = "CLOUDO_NOTIFY_MAX_ATTEMPTS", value_name = "N")]
    pub notify_max_attempts: Option<u32>,

    /// First retry delay of a notification, milliseconds; doubles per attempt, with jitter,
    /// up to 5 minutes [default: 1000].
    #[arg(long, env = "CLOUDO_NOTIFY_BACKOFF_MS", value_name = "MS")]
    pub notify_backoff_ms: Option<u64>,
}
