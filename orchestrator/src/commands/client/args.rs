//! The client commands' command line (they talk to a server over HTTP).

use std::path::PathBuf;

use clap::Subcommand;

/// Where the server is and how to talk to it; every client command takes these.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientArgs {
    /// The server [default: the `cloudo login` file's, else http://127.0.0.1:7071].
    #[arg(long, env = "CLOUDO_URL", global = true, value_name = "URL")]
    pub url: Option<String>,

    /// The API key [default: the `cloudo login` file's]. Prefer CLOUDO_KEY or `cloudo
    /// login`: a key typed on the command line stays in the shell's history.
    #[arg(
        long,
        env = "CLOUDO_KEY",
        hide_env_values = true,
        global = true,
        value_name = "KEY"
    )]
    pub key: Option<String>,

    /// Print JSON for scripts instead of tables and text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct TriggerArgs {
    /// The schema (catalog entry) to run.
    pub schema: String,
    /// A value for the runbook, `NAME=VALUE` (repeatable): sent as the JSON body
    /// `{"NAME": "VALUE", ...}`, which the runbook reads from CLOUDO_PAYLOAD(_FILE).
    #[arg(long = "arg", value_name = "NAME=VALUE")]
    pub args: Vec<String>,
    /// A JSON file sent as the body instead (`-` reads stdin).
    #[arg(long, value_name = "FILE", conflicts_with = "args")]
    pub body: Option<PathBuf>,
    /// The runbook simulates (CLOUDO_DRY_RUN=1).
    #[arg(long)]
    pub dry_run: bool,
    /// Print the output as it is written and exit with the outcome (0 succeeded, the
    /// runbook's exit code when it failed, 124 timeout, 125 error, 126 lost, 129 rejected,
    /// 130 stopped, 131 not run).
    #[arg(long, short)]
    pub follow: bool,
    /// The same key within the dedup window runs once (a retried CI job does not run twice).
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The execution's id.
    pub exec: String,
    /// Go on printing as it is written, until it ends; exit with its outcome.
    #[arg(long, short)]
    pub follow: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Only executions in this status (e.g. failed, running, pending).
    #[arg(long)]
    pub status: Option<String>,
    /// Only executions of this schema.
    #[arg(long)]
    pub schema: Option<String>,
    /// How many, newest first.
    #[arg(long, short = 'n', default_value_t = 20)]
    pub limit: usize,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// The execution's id.
    pub exec: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, clap::Args)]
pub struct DecideArgs {
    /// The execution waiting for approval.
    pub exec: String,
    /// Why (kept with the decision and in the audit log).
    #[arg(long, short)]
    pub comment: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, clap::Args)]
pub struct SchemasArgs {
    #[command(subcommand)]
    pub command: SchemasCommand,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum SchemasCommand {
    /// The catalog's entries.
    List,
    /// One entry, as stored.
    Show { id: String },
    /// Replace the whole catalog with a file in ClouDO's format (admin).
    Apply { file: PathBuf },
    /// Check a catalog file offline, with the errors start-up would give.
    Validate { file: PathBuf },
}

#[derive(Debug, clap::Args)]
pub struct RoutesArgs {
    #[command(subcommand)]
    pub command: RoutesCommand,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum RoutesCommand {
    /// What an alert (an Azure Monitor or Alertmanager payload in a file, `-` for stdin)
    /// would run, without running anything.
    Test { alert: PathBuf },
}

/// The key is asked for without echo on a terminal, or read as one line of stdin.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The server to save.
    #[arg(long, env = "CLOUDO_URL", value_name = "URL")]
    pub url: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}
