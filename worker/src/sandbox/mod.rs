//! The `Sandbox` port: run one resolved runbook with a given environment and limits.
//!
//! Implementations: [`process::ProcessSandbox`] (a plain process in its own group, clean
//! environment, private working directory). bubblewrap and Docker sandboxes plug in here.

pub mod process;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The runbook file.
    pub runbook: PathBuf,
    /// argv after the program (from `run_args`).
    pub args: Vec<String>,
    /// The whole environment but `HOME`, which the sandbox sets to its working directory.
    pub env: BTreeMap<String, String>,
    pub timeout: Duration,
    pub output_cap: usize,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Killed by us at the wall-clock limit.
    pub timed_out: bool,
    /// stdout and stderr interleaved in the order they were written, capped.
    pub output: String,
    pub output_truncated: bool,
    /// Bytes the runbook wrote in all.
    pub output_bytes: u64,
    pub duration: Duration,
}

/// The runbook could not be started at all.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SandboxError(pub String);

#[async_trait]
pub trait Sandbox: Send + Sync + 'static {
    /// A short name for logs and execution records (`process`, `bwrap`, `docker`).
    fn name(&self) -> &'static str;
    async fn run(&self, spec: RunSpec) -> Result<RunOutcome, SandboxError>;
}

/// How a runbook file is started: `.sh` with bash, `.py` with python3, anything else
/// directly (it needs its executable bit and a shebang). Returns program and leading args.
pub fn interpreter(runbook: &Path) -> (PathBuf, Vec<String>) {
    let script = runbook.display().to_string();
    match runbook.extension().and_then(|e| e.to_str()) {
        Some("sh") => (PathBuf::from("bash"), vec![script]),
        Some("py") => (PathBuf::from("python3"), vec![script]),
        _ => (runbook.to_path_buf(), Vec::new()),
    }
}
