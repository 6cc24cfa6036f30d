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
/// directly (it needs its executable bit and a shebang). Returns program and leading args;
/// interpreters are looked up once in the runbook `PATH` and given as absolute paths.
pub fn interpreter(runbook: &Path) -> Result<(PathBuf, Vec<String>), SandboxError> {
    let script = runbook.display().to_string();
    let find = |name: &str| {
        find_in_path(name).ok_or_else(|| {
            SandboxError(format!(
                "{name} is needed to run {} and is not installed (looked in {})",
                runbook.display(),
                cloudo_core::env::RUNBOOK_PATH
            ))
        })
    };
    Ok(match runbook.extension().and_then(|e| e.to_str()) {
        Some("sh") => (find("bash")?, vec![script]),
        Some("py") => (find("python3")?, vec![script]),
        _ => (runbook.to_path_buf(), Vec::new()),
    })
}

/// The first executable `name` in the runbook `PATH`, cached.
fn find_in_path(name: &str) -> Option<PathBuf> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Option<PathBuf>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .entry(name.to_string())
        .or_insert_with(|| {
            use std::os::unix::fs::PermissionsExt;
            cloudo_core::env::RUNBOOK_PATH
                .split(':')
                .map(|dir| Path::new(dir).join(name))
                .find(|p| {
                    std::fs::metadata(p)
                        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                })
        })
        .clone()
}
