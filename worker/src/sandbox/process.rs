//! The `process` sandbox: the runbook as a plain child process.
//!
//! Isolation it gives: an empty environment plus the contract, a fresh private working
//! directory (also `HOME`) removed afterwards, its own process group killed as a whole at
//! the timeout and at exit; at a timeout also any process that left the group (`setsid`)
//! but still carries the run's `CLOUDO_EXEC_ID`. It does not restrict the filesystem, the
//! network or resources; the bwrap and docker sandboxes do.

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
            live: spec.live.clone(),
        };
        let outcome = supervisor::run(cmd, &limits)
            .await
            .map_err(|e| SandboxError(format!("cannot start {}: {e}", program.display())));
        // At a timeout, also what left the process group (setsid): found by its exec id.
        if outcome.as_ref().is_ok_and(|o| o.timed_out) {
            let id = spec.exec_id.clone();
            let _ = tokio::task::spawn_blocking(move || supervisor::kill_strays(&id)).await;
        }
        // Removed here, not on drop in a blocking context; a failure only leaves a temp dir.
        if let Err(e) = workdir.close() {
            tracing::warn!(error = %e, "could not remove a runbook working directory");
        }
        outcome
    }
}
