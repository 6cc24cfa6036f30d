//! The `process` sandbox: the runbook as a plain child process.
//!
//! Isolation it gives: an empty environment plus the contract, a fresh private working
//! directory (also `HOME`) removed afterwards, its own process group killed as a whole at
//! the timeout and at exit. Where the host lets it create cgroups, each run also gets a
//! tracking group (no limits) the child is born in (it joins before `exec`): what
//! left the process group (`env -i setsid daemon &`) is found there and killed at the
//! timeout and at exit. Without cgroups, strays are found by the `CLOUDO_EXEC_ID` in their
//! environment, which a runbook can clear (the start-up log says so). It runs as the
//! server's own user and does not restrict the filesystem, the network or resources; the
//! bwrap and docker sandboxes do.

use async_trait::async_trait;
use std::process::Command;

use super::cgroup::{Cgroups, RunCgroup};
use super::spawn::Plan;
use super::supervisor::{self, Limits};
use super::{RunOutcome, RunSpec, Sandbox, SandboxError, interpreter};

#[derive(Debug, Clone)]
pub struct ProcessSandbox {
    pub kill_grace: std::time::Duration,
    /// Where runs get tracking groups, when the host allows it.
    pub cgroups: Option<Cgroups>,
}

impl ProcessSandbox {
    /// With tracking cgroups when this host allows them (else says what that means).
    pub fn new(kill_grace: std::time::Duration) -> Self {
        let cgroups = match Cgroups::detect() {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e,
                    "process sandbox: no cgroups here, so a runbook's processes are found by \
                     CLOUDO_EXEC_ID only, which a runbook can clear (env -i) to outlive its \
                     run; use bwrap or docker to contain runbooks");
                None
            }
        };
        Self {
            kill_grace,
            cgroups,
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
            .prefix(&super::run_dir_prefix())
            .tempdir()
            .map_err(|e| SandboxError(format!("cannot create a working directory: {e}")))?;
        let (program, mut args) = interpreter(&spec.runbook)?;
        args.extend(spec.args);
        let payload_file = write_payload(workdir.path(), spec.payload.as_deref())
            .map_err(|e| SandboxError(format!("cannot write the payload file: {e}")))?;
        let mut cmd = Command::new(&program);
        cmd.args(&args)
            .env_clear()
            .envs(&spec.env)
            .env("HOME", workdir.path())
            .env(super::PAYLOAD_FILE_VAR, &payload_file)
            .current_dir(workdir.path());
        for f in &spec.files {
            let path = write_private(workdir.path(), f)
                .map_err(|e| SandboxError(format!("cannot write the {}: {e}", f.name)))?;
            cmd.env(f.env, path);
        }
        let limits = Limits {
            timeout: spec.timeout,
            kill_grace: self.kill_grace,
            output_cap: spec.output_cap,
            live: spec.live.clone(),
            secrets: spec.secrets.clone(),
            cancel: spec.cancel.clone(),
        };
        // Started without a fork, born in its tracking group (see `spawn`). Prepared
        // before the group exists, so that a refusal here leaves no group behind.
        let mut plan = Plan::from_cleared(&cmd)
            .map_err(|e| SandboxError(format!("cannot start {}: {e}", program.display())))?;
        let tracking = self.cgroups.as_ref().and_then(|c| {
            c.create_tracking(&format!("{}-{}", spec.exec_id, super::cgroup::owner_tag()))
                .map_err(|e| tracing::warn!(error = %e, "cannot create a tracking cgroup"))
                .ok()
        });
        plan.cgroups = tracking
            .as_ref()
            .map(RunCgroup::procs_files)
            .unwrap_or_default();
        let outcome = supervisor::run(
            &plan,
            &limits,
            tracking.as_ref().map(|t| t as &dyn supervisor::Tracker),
        )
        .await
        .map_err(|e| SandboxError(format!("cannot start {}: {e}", program.display())));
        match tracking {
            // Empties (anything still starting up is killed) and removes the group.
            Some(t) => t.finish().await,
            // At a timeout, also what left the process group: found by its exec id.
            None if outcome.as_ref().is_ok_and(|o| o.timed_out) => {
                let id = spec.exec_id.clone();
                let _ = tokio::task::spawn_blocking(move || supervisor::kill_strays(&id)).await;
            }
            None => {}
        }
        // Removed here, not on drop in a blocking context; a failure only leaves a temp dir.
        if let Err(e) = workdir.close() {
            tracing::warn!(error = %e, "could not remove a runbook working directory");
        }
        outcome
    }
}

/// Writes the payload (empty when there is none) to `.cloudo/payload.json` in the run's
/// private directory; returns its path.
/// A run file in the working directory's `.cloudo`, mode 0600 (the runbook runs as the
/// worker's user here; the folder goes with the run).
fn write_private(dir: &std::path::Path, f: &super::RunFile) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(".cloudo").join(f.name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(f.content.expose().as_bytes())?;
    Ok(path)
}

fn write_payload(
    dir: &std::path::Path,
    payload: Option<&str>,
) -> std::io::Result<std::path::PathBuf> {
    let folder = dir.join(".cloudo");
    std::fs::create_dir(&folder)?;
    let file = folder.join("payload.json");
    std::fs::write(&file, payload.unwrap_or_default())?;
    Ok(file)
}
