//! Running one job: its payload, the runbook resolved and run in a sandbox, and the
//! outcome turned into the execution's final change.

use std::time::Duration;

use cloudo_core::{Job, Status, StatusChange, env, schema::split_args};
use tokio_util::sync::CancellationToken;

use super::{PoolConfig, PoolParts};
use crate::output::LiveOutput;
use crate::reporter::{ReportError, RunRef};
use crate::sandbox::limits::resolve_limits;
use crate::sandbox::{RunOutcome, RunSpec};
use crate::secrets::{MaskSet, Secret};

/// The trigger's body: in the job, or fetched from the orchestrator when it was too large
/// to travel in the message.
pub(super) async fn payload(
    job: &Job,
    run: &RunRef,
    parts: &PoolParts,
) -> Result<Option<String>, String> {
    if job.payload.is_some() || job.payload_bytes == 0 {
        return Ok(job.payload.clone());
    }
    let mut delay = Duration::from_millis(100);
    for _ in 0..6 {
        match parts.reporter.payload(&job.exec_id, run).await {
            Ok(p) => return Ok(p),
            Err(ReportError::Refused(why) | ReportError::Gone(why)) => return Err(why),
            Err(ReportError::Retry(why)) => {
                tracing::warn!(exec_id = %job.exec_id, reason = %why, "cannot fetch the payload yet");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    Err("the orchestrator did not answer".into())
}

/// Resolves and runs the runbook; always returns the final state change.
pub(super) async fn execute(
    job: &Job,
    run: &RunRef,
    config: &PoolConfig,
    parts: &PoolParts,
    (live, cancel): (LiveOutput, CancellationToken),
) -> StatusChange {
    let runbook = match parts
        .runbooks
        .resolve(&job.runbook, job.runbook_ref.as_deref())
        .await
    {
        Ok(r) => r,
        Err(e) => return StatusChange::to(Status::Error).reason(e.0),
    };
    let Some(args) = split_args(&job.run_args) else {
        return StatusChange::to(Status::Error).reason("run_args cannot be split into arguments");
    };
    let sandbox = match parts.sandboxes.pick(job.runtime.sandbox.as_deref()) {
        Ok(s) => s,
        Err(why) => {
            let mut change = StatusChange::to(Status::Error).reason(why);
            change.runbook_commit.clone_from(&runbook.commit);
            return change;
        }
    };
    let limits = resolve_limits(&job.runtime.limits, &parts.sandboxes.defaults);
    let payload = match payload(job, run, parts).await {
        Ok(p) => p,
        Err(why) => {
            let mut change = StatusChange::to(Status::Error)
                .reason(format!("cannot fetch the trigger's payload: {why}"));
            change.runbook_commit.clone_from(&runbook.commit);
            return change;
        }
    };
    let mut run_env = env::runbook_env(job, payload.as_deref());
    for name in &job.secrets {
        match parts.secrets.get(name) {
            Some(v) => {
                run_env.insert(name.clone(), v.expose().to_string());
            }
            None => {
                let mut change = StatusChange::to(Status::Error).reason(format!(
                    "secret {name} is not available on this worker (set CLOUDO_SECRET_{name} or put it in the secrets file)"
                ));
                change.runbook_commit.clone_from(&runbook.commit);
                return change;
            }
        }
    }
    // The alert's AKS cluster: a private kubeconfig the sandbox gives the runbook.
    let (files, kube_token): (Vec<_>, Option<Secret>) = match kube_file(job, parts).await {
        Ok(Some((f, token))) => (vec![f], Some(token)),
        Ok(None) => (Vec::new(), None),
        Err(why) => {
            let mut change = StatusChange::to(Status::Error).reason(why);
            change.runbook_commit.clone_from(&runbook.commit);
            return change;
        }
    };
    // Azure access: a grant for this run only, revoked when `grant` drops (the run ended).
    let grant = match azure_grant(job, parts, &files) {
        Ok(g) => g,
        Err(why) => {
            let mut change = StatusChange::to(Status::Error).reason(why);
            change.runbook_commit.clone_from(&runbook.commit);
            return change;
        }
    };
    if let Some(g) = &grant {
        run_env.extend(g.env.iter().cloned());
        if let Some(sub) = job
            .runtime
            .azure
            .as_ref()
            .and(job.env.get("RESOURCE_ID"))
            .and_then(|r| cloudo_core::schema::access::subscription_of(r))
        {
            run_env.insert("AZURE_SUBSCRIPTION_ID".into(), sub);
        }
    }
    let spec = RunSpec {
        exec_id: job.exec_id.to_string(),
        runbook: runbook.path.clone(),
        args,
        env: run_env,
        timeout: Duration::from_secs(job.timeout_secs.max(1)),
        output_cap: config.output_cap,
        network: job.runtime.network,
        limits,
        image: job.runtime.image.clone(),
        live: Some(live),
        cancel,
        payload,
        // The schema's secrets, and what the worker gives the run: its endpoint secret and
        // its cluster token.
        secrets: MaskSet::new(
            job.secrets
                .iter()
                .filter_map(|n| parts.secrets.get(n).map(Secret::expose))
                .chain(grant.as_ref().map(|g| g.link.secret.expose()))
                .chain(kube_token.as_ref().map(Secret::expose)),
        ),
        files,
        broker: grant.as_ref().map(|g| g.link.clone()),
    };
    let mut change = match sandbox.run(spec).await {
        Ok(outcome) => outcome_change(job, outcome, limits.memory_mb),
        Err(e) => StatusChange::to(Status::Error).reason(e.0),
    };
    change.sandbox = Some(sandbox.name().to_string());
    change.runbook_commit.clone_from(&runbook.commit);
    // `runbook` (and its private copy) lives until here.
    drop(runbook);
    drop(grant);
    change
}

/// The run's grant, if its schema has Azure or AKS access: tokens for the first, the
/// kubeconfig (for sandboxes that fetch it through the relay) for the second.
fn azure_grant(
    job: &Job,
    parts: &PoolParts,
    files: &[crate::sandbox::RunFile],
) -> Result<Option<crate::access::RunGrant>, String> {
    let access = job.runtime.azure.as_ref();
    if access.is_none() && files.is_empty() {
        return Ok(None);
    }
    let broker = parts
        .tokens
        .as_ref()
        .ok_or("this worker's token endpoint is not running; Azure access is unavailable")?;
    broker.grant(job.exec_id.as_str(), access, files).map(Some)
}

/// The run's kubeconfig, if its schema has `aks: true`: the cluster from the alert (or the
/// schema), the user a token for the AKS server application. The sandbox puts it where
/// only the runbook reads it, and it goes with the run.
async fn kube_file(
    job: &Job,
    parts: &PoolParts,
) -> Result<Option<(crate::sandbox::RunFile, Secret)>, String> {
    let Some(aks) = &job.runtime.aks else {
        return Ok(None);
    };
    let cluster = aks.cluster_for(&job.env)?;
    let broker = parts
        .tokens
        .as_ref()
        .ok_or("this worker's token endpoint is not running; AKS access is unavailable")?;
    let identity = broker.runbook_identity(
        job.runtime
            .azure
            .as_ref()
            .and_then(|a| a.identity.as_deref()),
    )?;
    let namespace = job.env.get("AKS_NAMESPACE").map(String::as_str);
    let (text, token) = broker
        .aks()
        .kubeconfig_for(&cluster, identity.as_deref(), namespace)
        .await
        .map_err(|e| format!("no kubeconfig for {cluster}: {e}"))?;
    tracing::info!(exec_id = %job.exec_id, cluster = %cluster, namespace = namespace.unwrap_or(""), "kubeconfig issued");
    let file = crate::sandbox::RunFile {
        name: "kubeconfig",
        env: "KUBECONFIG",
        content: Secret::new(text),
    };
    Ok(Some((file, Secret::new(token))))
}

/// Maps a run's outcome to the execution's final state. The reason names the cause:
/// timeout, memory limit (oom), exit code, signal (152 / SIGXCPU: the CPU-time limit).
pub fn outcome_change(job: &Job, o: RunOutcome, memory_mb: u64) -> StatusChange {
    let (status, reason) = if o.cancelled {
        (
            Status::Stopped,
            Some("stopped: the orchestrator asked this run to stop".to_string()),
        )
    } else if o.timed_out {
        (
            Status::Timeout,
            Some(format!("killed after the {} s timeout", job.timeout_secs)),
        )
    } else if o.oom {
        (
            Status::Failed,
            Some(format!(
                "killed: out of memory (the {memory_mb} MiB limit; oom)"
            )),
        )
    } else if o.exit_code == Some(152) || o.signal == Some(libc::SIGXCPU) {
        (
            Status::Failed,
            Some("killed: CPU-time limit reached (SIGXCPU)".to_string()),
        )
    } else if o.exit_code == Some(0) {
        (Status::Succeeded, None)
    } else if let Some(code) = o.exit_code {
        (Status::Failed, Some(format!("exit code {code}")))
    } else if let Some(sig) = o.signal {
        (Status::Failed, Some(format!("killed by signal {sig}")))
    } else {
        (
            Status::Error,
            Some("ended without an exit status".to_string()),
        )
    };
    let mut reason = reason;
    if o.output_truncated {
        let note = format!("output truncated ({} bytes written)", o.output_bytes);
        reason = Some(match reason {
            Some(r) => format!("{r}; {note}"),
            None => note,
        });
    }
    StatusChange {
        to: status,
        reason,
        exit_code: o.exit_code,
        signal: o.signal,
        output: Some(o.output),
        output_truncated: o.output_truncated,
        worker_id: None,
        runbook_commit: None,
        sandbox: None,
        oom: o.oom,
        only_from: None,
        only_attempt: None,
    }
}
