//! The `docker` sandbox: a container through the Docker Engine API (bollard), against
//! `DOCKER_HOST` or the default socket; Docker Engine and Podman's compatible API.
//!
//! Per run: the image of the schema or the worker's default (never pulled unless the
//! worker allows it), the runbook's folder bind-mounted read-only at `/runbook`, the
//! contract as environment, `network_mode: none` unless the schema allows network,
//! read-only root, tmpfs `/tmp` as working directory, all capabilities dropped,
//! no-new-privileges, an init process, uid 65534, memory (= memory + swap), pids, CPU quota
//! and CPU-time limits. Output is attached before start and streamed into the capture; the
//! wall-clock timeout kills the container; the container is always removed. A run with
//! Azure access or run files (a kubeconfig) starts through the relay (`relay`), with the
//! token endpoint's socket mapped in.
//!
//! A worker killed mid-run cannot do that. So each container carries its own deadline
//! (label `cloudo.deadline`: start + timeout + a margin), and every docker sandbox on the
//! daemon removes cloudo containers past theirs, at start and every minute: a runbook
//! outlives a dead worker by at most its timeout plus the margin and a sweep period.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, ResourcesUlimits};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    KillContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::{
    PAYLOAD_FILE_VAR, PAYLOAD_PATH, RunOutcome, RunSpec, Sandbox, SandboxError, relay,
    run_dir_prefix, write_world_readable,
};
use crate::output::{RunOutput, Stream};

mod janitor;
use janitor::{DEADLINE_LABEL, EXEC_LABEL, remove, remove_orphans, unix_now};

#[derive(Debug, Clone)]
pub struct DockerSandbox {
    docker: Docker,
    default_image: String,
    pull: bool,
    /// Network mode for schemas that allow network (default: the daemon's default).
    network: Option<String>,
}

/// How long to keep draining output after the container stopped.
const DRAIN: Duration = Duration::from_secs(5);

/// Past its timeout, the worker that owns a container kills it, drains, inspects and
/// removes it; this much longer and nobody will.
const ORPHAN_MARGIN: Duration = Duration::from_secs(60);
/// How often a docker sandbox looks for orphans.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

fn err(what: &str) -> impl Fn(bollard::errors::Error) -> SandboxError + '_ {
    move |e| SandboxError(format!("docker: {what}: {e}"))
}

impl DockerSandbox {
    /// Connects (DOCKER_HOST or the default socket), negotiates the API version and checks
    /// that the default image is there (or may be pulled).
    pub async fn connect(
        default_image: &str,
        pull: bool,
        network: Option<String>,
    ) -> Result<Self, String> {
        let docker = Docker::connect_with_defaults()
            .map_err(|e| format!("cannot connect to the Docker API: {e}"))?
            .negotiate_version()
            .await
            .map_err(|e| format!("Docker API not answering: {e}"))?;
        docker
            .ping()
            .await
            .map_err(|e| format!("Docker API not answering: {e}"))?;
        let me = Self {
            docker,
            default_image: default_image.to_string(),
            pull,
            network,
        };
        if !pull && me.docker.inspect_image(default_image).await.is_err() {
            return Err(format!(
                "image {default_image} is not present and pulling is off (--sandbox-pull)"
            ));
        }
        me.remove_orphans().await;
        let janitor = me.docker.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SWEEP_EVERY).await;
                remove_orphans(&janitor).await;
            }
        });
        Ok(me)
    }

    /// Removes the cloudo containers past their deadline (their worker died); returns how
    /// many.
    pub async fn remove_orphans(&self) -> usize {
        remove_orphans(&self.docker).await
    }

    pub fn describe(&self) -> String {
        format!("docker (image {})", self.default_image)
    }

    async fn ensure_image(&self, image: &str) -> Result<(), SandboxError> {
        if self.docker.inspect_image(image).await.is_ok() {
            return Ok(());
        }
        if !self.pull {
            return Err(SandboxError(format!(
                "image {image} is not present on the worker, and pulling is off (--sandbox-pull)"
            )));
        }
        let opts = CreateImageOptionsBuilder::default()
            .from_image(image)
            .build();
        let mut progress = self.docker.create_image(Some(opts), None, None);
        while let Some(step) = progress.next().await {
            step.map_err(err("pull"))?;
        }
        Ok(())
    }
}

#[async_trait]
impl Sandbox for DockerSandbox {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn run(&self, spec: RunSpec) -> Result<RunOutcome, SandboxError> {
        let image = spec
            .image
            .clone()
            .unwrap_or_else(|| self.default_image.clone());
        self.ensure_image(&image).await?;
        let folder = spec
            .runbook
            .parent()
            .ok_or_else(|| SandboxError("runbook has no folder".into()))?;
        let file = spec
            .runbook
            .file_name()
            .ok_or_else(|| SandboxError("runbook has no file name".into()))?;
        let inside = Path::new("/runbook").join(file).display().to_string();
        let mut cmd = match spec.runbook.extension().and_then(|e| e.to_str()) {
            Some("sh") => vec!["bash".to_string(), inside],
            Some("py") => vec!["python3".to_string(), inside],
            _ => vec![inside],
        };
        cmd.extend(spec.args.iter().cloned());
        let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        env.push("HOME=/tmp".into());
        env.push(format!("{PAYLOAD_FILE_VAR}={PAYLOAD_PATH}"));
        let mut binds = Vec::new();
        relay::for_container(&spec, &mut cmd, &mut env, &mut binds)?;
        // The payload file, bind-mounted read-only (a file, not the run's folder).
        let run_dir = tempfile::Builder::new()
            .prefix(&run_dir_prefix())
            .tempdir()
            .map_err(|e| SandboxError(format!("cannot create the run's folder: {e}")))?;
        let payload = run_dir.path().join("payload.json");
        write_world_readable(&payload, spec.payload.as_deref().unwrap_or_default())
            .map_err(|e| SandboxError(format!("cannot write the payload file: {e}")))?;
        let cpu_secs =
            (spec.timeout.as_secs().max(1) * (spec.limits.cpu.ceil().max(1.0) as u64)) as i64;
        let ulimit = |name: &str, soft: i64, hard: i64| ResourcesUlimits {
            name: Some(name.into()),
            soft: Some(soft),
            hard: Some(hard),
        };
        let memory = (spec.limits.memory_mb << 20) as i64;
        let host = HostConfig {
            binds: Some({
                binds.push(format!("{}:/runbook:ro", folder.display()));
                binds.push(format!("{}:{PAYLOAD_PATH}:ro", payload.display()));
                binds
            }),
            network_mode: Some(if spec.network {
                self.network.clone().unwrap_or_else(|| "default".into())
            } else {
                "none".into()
            }),
            readonly_rootfs: Some(true),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_string(),
                format!("rw,nosuid,nodev,size={}m,mode=1777", spec.limits.memory_mb),
            )])),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            init: Some(true),
            memory: Some(memory),
            memory_swap: Some(memory),
            pids_limit: Some(spec.limits.pids as i64),
            nano_cpus: Some((spec.limits.cpu * 1e9) as i64),
            // Podman replaces its defaults with any ulimit sent: always send nofile/nproc.
            ulimits: Some(vec![
                ulimit("cpu", cpu_secs, cpu_secs + 1),
                ulimit("nofile", 4096, 4096),
                ulimit("nproc", 4096, 4096),
            ]),
            ..Default::default()
        };
        let deadline = unix_now() + (spec.timeout + DRAIN + ORPHAN_MARGIN).as_secs();
        let body = ContainerCreateBody {
            image: Some(image),
            labels: Some(HashMap::from([
                (DEADLINE_LABEL.to_string(), deadline.to_string()),
                (EXEC_LABEL.to_string(), spec.exec_id.to_string()),
            ])),
            cmd: Some(cmd),
            env: Some(env),
            working_dir: Some("/tmp".into()),
            user: Some("65534:65534".into()),
            network_disabled: Some(!spec.network),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            host_config: Some(host),
            ..Default::default()
        };
        let started = Instant::now();
        let name = format!("cloudo-{}", spec.exec_id);
        let opts = CreateContainerOptionsBuilder::default().name(&name).build();
        let id = self
            .docker
            .create_container(Some(opts), body)
            .await
            .map_err(err("create"))?
            .id;
        let result = self.run_created(&id, &spec, started).await;
        remove(&self.docker, &id).await;
        drop(run_dir);
        result
    }
}

impl DockerSandbox {
    async fn run_created(
        &self,
        id: &str,
        spec: &RunSpec,
        started: Instant,
    ) -> Result<RunOutcome, SandboxError> {
        let attach = AttachContainerOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .stream(true)
            .logs(false)
            .build();
        let mut output = self
            .docker
            .attach_container(id, Some(attach))
            .await
            .map_err(err("attach"))?
            .output;
        self.docker
            .start_container(id, None)
            .await
            .map_err(err("start"))?;

        let mut sink = RunOutput::new(spec.output_cap, spec.live.clone(), &spec.secrets);
        let deadline = tokio::time::sleep_until(tokio::time::Instant::now() + spec.timeout);
        tokio::pin!(deadline);
        let (mut timed_out, mut cancelled) = (false, false);
        loop {
            tokio::select! {
                frame = output.next() => match frame {
                    Some(Ok(f)) => push_frame(&mut sink, f),
                    Some(Err(_)) | None => break,
                },
                stop = stopped(deadline.as_mut(), &spec.cancel) => {
                    cancelled = stop;
                    timed_out = !stop;
                    self.kill(id).await;
                    // Keep draining briefly: the stream ends when the container is gone.
                    let drain = tokio::time::Instant::now() + DRAIN;
                    loop {
                        tokio::select! {
                            frame = output.next() => match frame {
                                Some(Ok(f)) => push_frame(&mut sink, f),
                                Some(Err(_)) | None => break,
                            },
                            _ = tokio::time::sleep_until(drain) => break,
                        }
                    }
                    break;
                }
            }
        }
        // The exit status from the Engine's wait, which answers once the container has
        // stopped (at once if it has). A stream that broke early leaves it running: the
        // deadline and a cancel still stop it then.
        let code = if timed_out || cancelled {
            self.wait_killed(id).await?
        } else {
            tokio::select! {
                code = wait_exit(&self.docker, id) => code?,
                stop = stopped(deadline.as_mut(), &spec.cancel) => {
                    cancelled = stop;
                    timed_out = !stop;
                    self.kill(id).await;
                    self.wait_killed(id).await?
                }
            }
        };
        let exit_code = i32::try_from(code).ok();
        // An out-of-memory kill is a SIGKILL (137): only then is it worth asking which.
        let oom = code == 137 && !timed_out && !cancelled && self.oom_killed(id).await;
        let (text, output_truncated, output_bytes) = sink.finish();
        Ok(RunOutcome {
            // A container killed by a signal exits 128+N.
            signal: exit_code.filter(|c| *c > 128 && *c < 160).map(|c| c - 128),
            exit_code,
            timed_out,
            cancelled,
            output: text,
            output_truncated,
            output_bytes,
            duration: started.elapsed(),
            oom,
        })
    }
}

impl DockerSandbox {
    async fn kill(&self, id: &str) {
        let kill = KillContainerOptionsBuilder::default()
            .signal("SIGKILL")
            .build();
        let _ = self.docker.kill_container(id, Some(kill)).await;
    }

    /// The exit code of a container just killed.
    async fn wait_killed(&self, id: &str) -> Result<i64, SandboxError> {
        tokio::time::timeout(DRAIN, wait_exit(&self.docker, id))
            .await
            .map_err(|_| SandboxError("docker: the container did not stop".into()))?
    }

    async fn oom_killed(&self, id: &str) -> bool {
        match self.docker.inspect_container(id, None).await {
            Ok(c) => c.state.and_then(|s| s.oom_killed) == Some(true),
            Err(e) => {
                tracing::warn!(container = id, error = %e, "docker: cannot inspect a killed container");
                false
            }
        }
    }
}

/// Why a run must stop, when it must: cancelled (`true`) or out of time (`false`).
async fn stopped(
    deadline: std::pin::Pin<&mut tokio::time::Sleep>,
    cancel: &tokio_util::sync::CancellationToken,
) -> bool {
    tokio::select! {
        _ = deadline => false,
        _ = cancel.cancelled() => true,
    }
}

/// The exit code of container `id`, once it is not running (`POST /containers/{id}/wait`).
async fn wait_exit(docker: &Docker, id: &str) -> Result<i64, SandboxError> {
    let opts = WaitContainerOptionsBuilder::default()
        .condition("not-running")
        .build();
    match docker.wait_container(id, Some(opts)).next().await {
        Some(Ok(r)) => Ok(r.status_code),
        // bollard reports a non-zero exit as an error carrying the code.
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(e)) => Err(err("wait")(e)),
        None => Err(SandboxError(
            "docker: wait ended without an exit code".into(),
        )),
    }
}

/// A frame of the attach stream, on the stream it came from (each masked on its own).
fn push_frame(sink: &mut RunOutput, frame: bollard::container::LogOutput) {
    use bollard::container::LogOutput;
    match frame {
        LogOutput::StdErr { message } => sink.push(Stream::Stderr, &message),
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            sink.push(Stream::Stdout, &message)
        }
        LogOutput::StdIn { .. } => {}
    }
}
