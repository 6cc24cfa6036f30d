//! The `process` sandbox: the runbook as a plain child process.
//!
//! Isolation it gives: an empty environment plus the contract, a fresh private working
//! directory (also `HOME`) removed afterwards, its own process group killed as a whole at
//! the timeout and at exit, death with the worker. It does not restrict the filesystem or
//! the network; the bwrap and docker sandboxes do.

use async_trait::async_trait;
use tokio::process::Command;

use super::{RunOutcome, RunSpec, Sandbox, SandboxError, interpreter};
use crate::supervisor::{self, Limits};

#[derive(Debug, Clone)]
pub struct ProcessSandbox {
    pub kill_grace: std::time::Duration,
}

impl Default for ProcessSandbox {
    fn default() -> Self {
        Self {
            kill_grace: std::time::Duration::from_secs(5),
        }
    }
}

#[async_trait]
impl Sandbox for ProcessSandbox {
    fn name(&self) -> &'static str {
        "process"
    }

    async fn run(&self, spec: RunSpec) -> Result<RunOutcome, SandboxError> {
        let workdir = tempfile::Builder::new()
            .prefix("cloudo-run-")
            .tempdir()
            .map_err(|e| SandboxError(format!("cannot create a working directory: {e}")))?;
        let (program, mut args) = interpreter(&spec.runbook)?;
        args.extend(spec.args);
        let mut cmd = Command::new(&program);
        cmd.args(&args)
            .env_clear()
            .envs(&spec.env)
            .env("HOME", workdir.path())
            .current_dir(workdir.path());
        let limits = Limits {
            timeout: spec.timeout,
            kill_grace: self.kill_grace,
            output_cap: spec.output_cap,
        };
        let outcome = supervisor::run(cmd, &limits)
            .await
            .map_err(|e| SandboxError(format!("cannot start {}: {e}", program.display())));
        // Removed here, not on drop in a blocking context; a failure only leaves a temp dir.
        if let Err(e) = workdir.close() {
            tracing::warn!(error = %e, "could not remove a runbook working directory");
        }
        outcome
    }
}
