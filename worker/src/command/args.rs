//! The command line of a process that runs runbooks: `cloudo-worker` (and `cloudo worker`),
//! and the options `cloudo serve` shares with it. Every option has its environment variable.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// `cloudo-worker`: a standalone worker only.
#[derive(Debug, Parser)]
#[command(
    name = "cloudo-worker",
    version,
    about = "A standalone cloudo worker",
    long_about
)]
pub struct WorkerCli {
    #[command(flatten)]
    pub worker: WorkerArgs,
}

/// Options of `cloudo worker`. The worker key comes from CLOUDO_WORKER_KEY only (a flag
/// would show in `ps`). Runbook, sandbox, secret and Azure options are those of `serve`;
/// the TOML file (`--config`) may hold them too.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// The pool to serve (a schema's `worker` field); the key must be of this pool.
    #[arg(long, env = "CLOUDO_WORKER_POOL", value_name = "POOL")]
    pub pool: String,

    /// Base URL of the orchestrator (or of the load balancer in front of several); several,
    /// comma-separated, are tried in turn when one is unreachable.
    #[arg(
        long,
        env = "CLOUDO_ORCHESTRATOR_URL",
        value_name = "URL",
        value_delimiter = ',',
        required = true
    )]
    pub orchestrator: Vec<String>,

    /// Serve Prometheus metrics (`GET /metrics`: runs, running, this pool's queue depth
    /// and oldest message age) on this address, e.g. 0.0.0.0:9464 [default: off].
    #[arg(long, env = "CLOUDO_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,

    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub azure: AzureArgs,
}

/// Options of every process that runs runbooks (`serve` and `worker`): files, runbooks,
/// sandbox and limits, secrets, concurrency.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CommonArgs {
    /// TOML configuration file.
    #[arg(long, env = "CLOUDO_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Folder for the database and other state [default: ./data].
    #[arg(long, env = "CLOUDO_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Folder the runbooks are read from [default: runbooks/].
    #[arg(long, env = "CLOUDO_RUNBOOKS", value_name = "DIR")]
    pub runbooks: Option<PathBuf>,

    /// Git repository to take runbooks from (file://, https://, ssh://) instead of the
    /// --runbooks folder. HTTPS credentials: the CLOUDO_GIT_TOKEN environment variable.
    #[arg(long, env = "CLOUDO_RUNBOOKS_GIT", value_name = "URL")]
    pub runbooks_git: Option<String>,

    /// Branch, tag or commit of --runbooks-git [default: the remote's default branch].
    #[arg(long, env = "CLOUDO_RUNBOOKS_REF", value_name = "REF")]
    pub runbooks_ref: Option<String>,

    /// Folder of the runbooks inside the repository, e.g. src/runbooks [default: the root].
    #[arg(long, env = "CLOUDO_RUNBOOKS_PATH", value_name = "PATH")]
    pub runbooks_path: Option<String>,

    /// Seconds between fetches of --runbooks-git [default: 60].
    #[arg(long, env = "CLOUDO_RUNBOOKS_REFRESH", value_name = "SECS")]
    pub runbooks_refresh: Option<u64>,

    /// SSH private key for ssh:// runbook repositories.
    #[arg(long, env = "CLOUDO_GIT_SSH_KEY", value_name = "FILE")]
    pub git_ssh_key: Option<PathBuf>,

    /// known_hosts file for ssh:// runbook repositories (instead of the user's
    /// ~/.ssh/known_hosts): ssh refuses a host whose key it does not list.
    #[arg(long, env = "CLOUDO_GIT_KNOWN_HOSTS", value_name = "FILE")]
    pub git_known_hosts: Option<PathBuf>,

    /// Sandbox for runbooks: process, bwrap, docker, or auto (the strongest available)
    /// [default: auto]. A schema's `sandbox` field overrides it per runbook.
    #[arg(long, env = "CLOUDO_SANDBOX", value_name = "KIND")]
    pub sandbox: Option<String>,

    /// Default container image of the docker sandbox [default: cloudo-runbook:latest].
    #[arg(long, env = "CLOUDO_SANDBOX_IMAGE", value_name = "IMAGE")]
    pub sandbox_image: Option<String>,

    /// Let the docker sandbox pull missing images (never by default).
    #[arg(long, env = "CLOUDO_SANDBOX_PULL", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub sandbox_pull: Option<bool>,

    /// Docker network for runbooks whose schema allows network [default: the daemon's default].
    #[arg(long, env = "CLOUDO_SANDBOX_NETWORK", value_name = "NAME")]
    pub sandbox_network: Option<String>,

    /// Default memory limit of a runbook, MiB (bwrap, docker) [default: 512].
    #[arg(long, env = "CLOUDO_LIMIT_MEMORY_MB", value_name = "MIB")]
    pub limit_memory_mb: Option<u64>,

    /// Default process limit of a runbook (bwrap, docker) [default: 256].
    #[arg(long, env = "CLOUDO_LIMIT_PIDS", value_name = "N")]
    pub limit_pids: Option<u64>,

    /// Default CPU quota of a runbook, in cores (bwrap, docker) [default: 1].
    #[arg(long, env = "CLOUDO_LIMIT_CPU", value_name = "CORES")]
    pub limit_cpu: Option<f64>,

    /// Log output format [default: human].
    #[arg(long, env = "CLOUDO_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Runbooks run at the same time by the in-process worker pool [default: cores x 4].
    #[arg(long, env = "CLOUDO_CONCURRENCY", value_name = "N")]
    pub concurrency: Option<usize>,

    /// Bytes of output kept per execution; beyond it the middle is dropped and marked
    /// [default: 1048576].
    #[arg(long, env = "CLOUDO_OUTPUT_CAP", value_name = "BYTES")]
    pub output_cap: Option<usize>,

    /// Seconds between SIGTERM and SIGKILL when a runbook hits its timeout [default: 5].
    #[arg(long, env = "CLOUDO_KILL_GRACE", value_name = "SECS")]
    pub kill_grace: Option<u64>,

    /// Deliveries of one job before it goes to the dead-letter queue [default: 5].
    #[arg(long, env = "CLOUDO_MAX_DELIVERIES", value_name = "N")]
    pub max_deliveries: Option<u32>,

    /// Secrets for runbooks that name them (`"secrets": ["NAME"]`): a JSON object of
    /// NAME -> value, read at start. Environment variables CLOUDO_SECRET_<NAME> add to it.
    #[arg(long, env = "CLOUDO_SECRETS_FILE", value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
}

/// Where the shared state lives (`serve`, `worker`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AzureArgs {
    /// Where executions and jobs live: `sqlite` (embedded, one process) or `azure` (Table
    /// Storage and Storage Queues, shared by many orchestrators and workers). Azure needs
    /// CLOUDO_AZURE_STORAGE_CONNECTION_STRING or --azure-storage-account [default: sqlite].
    #[arg(long, env = "CLOUDO_BACKEND", value_enum)]
    pub backend: Option<Backend>,

    /// Storage account reached with an Entra ID credential (instead of a connection
    /// string, which comes from CLOUDO_AZURE_STORAGE_CONNECTION_STRING only).
    #[arg(long, env = "CLOUDO_AZURE_STORAGE_ACCOUNT", value_name = "NAME")]
    pub azure_storage_account: Option<String>,

    /// Credential for --azure-storage-account: auto (workload identity when its variables
    /// are set, managed identity where one is advertised, else Azure CLI / azd), workload,
    /// managed, developer [default: auto].
    #[arg(long, env = "CLOUDO_AZURE_CREDENTIAL", value_name = "KIND")]
    pub azure_credential: Option<String>,

    /// Prefix of table and queue names, letters and digits [default: cloudo].
    #[arg(long, env = "CLOUDO_AZURE_PREFIX", value_name = "PREFIX")]
    pub azure_prefix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// SQLite store and queue in the data dir.
    Sqlite,
    /// Azure Table Storage and Storage Queues.
    Azure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}
