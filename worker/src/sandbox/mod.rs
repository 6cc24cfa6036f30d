//! The `Sandbox` port: run one resolved runbook with a given environment and limits.
//!
//! Implementations: [`process::ProcessSandbox`] (a plain process in its own group, clean
//! environment, private working directory), [`bwrap::BwrapSandbox`] (namespaces, read-only
//! root, cgroup limits) and [`docker::DockerSandbox`] (a container through the Docker Engine
//! API). [`Sandboxes`] holds the ones a worker has and picks one per run.

pub mod bwrap;
pub mod cgroup;
pub mod docker;
pub mod leftovers;
pub mod limits;
pub mod process;
pub mod relay;
mod spawn;
pub mod supervisor;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use limits::ResolvedLimits;

/// What to run.
#[derive(Clone)]
pub struct RunSpec {
    /// The execution, for naming cgroups and containers.
    pub exec_id: String,
    /// The runbook file; its folder is what the sandbox exposes (read-only).
    pub runbook: PathBuf,
    /// argv after the program (from `run_args`).
    pub args: Vec<String>,
    /// The whole environment but `HOME`, which the sandbox sets to its working directory.
    pub env: BTreeMap<String, String>,
    pub timeout: Duration,
    pub output_cap: usize,
    /// Network access (ignored by `process`, which cannot take it away).
    pub network: bool,
    pub limits: ResolvedLimits,
    /// Container image (docker); `None` for the worker's default.
    pub image: Option<String>,
    /// Where output also goes while the run lasts (the live view), if anywhere.
    pub live: Option<crate::output::LiveOutput>,
    /// The trigger's body, given to the runbook as the file `CLOUDO_PAYLOAD_FILE` names
    /// (also in `CLOUDO_PAYLOAD` when small: see `cloudo_core::env`).
    pub payload: Option<String>,
    /// Values to mask in the output (the secrets this run was given).
    pub secrets: crate::secrets::MaskSet,
    /// Stops the run when cancelled (SIGTERM, grace, SIGKILL; or the container killed):
    /// it then ends with `cancelled` set.
    pub cancel: tokio_util::sync::CancellationToken,
    /// Private files for the runbook (a kubeconfig), gone with the run.
    pub files: Vec<RunFile>,
    /// The worker's token endpoint, for sandboxes with a network of their own (the run has
    /// Azure or AKS access).
    pub broker: Option<BrokerLink>,
}

/// How a sandbox with its own network gives a run the worker's token endpoint: it maps
/// `socket` in at [`relay::SOCKET_PATH`] and `relay` at [`relay::RELAY_PATH`], and starts the
/// runbook through the relay (which fetches the run's files over the socket when the
/// sandbox cannot give them itself).
#[derive(Clone)]
pub struct BrokerLink {
    /// The endpoint's Unix socket on the worker's host.
    pub socket: PathBuf,
    /// The relay program (the worker's own binary).
    pub relay: PathBuf,
    /// The run's secret (the relay fetches files with it).
    pub secret: crate::secrets::Secret,
    /// The run may have tokens (`IDENTITY_HEADER` is in its environment).
    pub tokens: bool,
}

impl std::fmt::Debug for BrokerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerLink")
            .field("socket", &self.socket)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RunSpec {
    /// Names the variables, never their values (secrets among them).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunSpec")
            .field("exec_id", &self.exec_id)
            .field("runbook", &self.runbook)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("network", &self.network)
            .field("limits", &self.limits)
            .field("image", &self.image)
            .field("files", &self.files)
            .field("broker", &self.broker)
            .finish_non_exhaustive()
    }
}

/// A file only the runbook may read, gone with the run; its path goes in variable `env`.
#[derive(Clone)]
pub struct RunFile {
    /// The file's name (`kubeconfig`).
    pub name: &'static str,
    /// The variable that names its path (`KUBECONFIG`).
    pub env: &'static str,
    pub content: crate::secrets::Secret,
}

impl std::fmt::Debug for RunFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunFile")
            .field("name", &self.name)
            .field("env", &self.env)
            .finish_non_exhaustive()
    }
}

/// Makes this process's memory and `/proc/<pid>/environ` unreadable to other processes of
/// its user (`PR_SET_DUMPABLE` 0): runbooks in the process sandbox run as that user, and the
/// environment holds the worker's key and, on Azure, its managed identity's header. Children
/// become dumpable again when they exec. Call first thing in `main`.
#[allow(unsafe_code)]
pub fn protect_process() {
    // SAFETY: prctl(PR_SET_DUMPABLE) takes integers and touches only this process.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        eprintln!(
            "cloudo: cannot make this process non-dumpable: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The variable naming the file that holds the trigger's payload (always set; the file is
/// empty when the trigger had no body).
pub const PAYLOAD_FILE_VAR: &str = "CLOUDO_PAYLOAD_FILE";
/// Where the isolating sandboxes put the payload file.
pub const PAYLOAD_PATH: &str = "/run/cloudo/payload.json";

/// The prefix of the temporary folders of this process's runs (`cloudo-run-<pid>-`): one
/// left behind by a process that is gone belongs to no live run.
pub fn run_dir_prefix() -> String {
    format!("cloudo-run-{}-", cgroup::owner_tag())
}

/// Writes `text` to `path`, readable by the sandbox's unprivileged user (mode 0444).
pub(crate) fn write_world_readable(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444))
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Killed by us at the wall-clock limit.
    pub timed_out: bool,
    /// Stopped by us because the run was cancelled.
    pub cancelled: bool,
    /// stdout and stderr interleaved in the order they were written, capped.
    pub output: String,
    pub output_truncated: bool,
    /// Bytes the runbook wrote in all.
    pub output_bytes: u64,
    pub duration: Duration,
    /// Killed for reaching its memory limit.
    pub oom: bool,
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
pub(crate) fn find_in_path(name: &str) -> Option<PathBuf> {
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

#[allow(unsafe_code)]
fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Which sandbox a worker uses by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Process,
    Bwrap,
    Docker,
    /// The strongest available: docker, then bwrap, then process.
    Auto,
}

impl std::str::FromStr for Choice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "process" => Ok(Choice::Process),
            "bwrap" => Ok(Choice::Bwrap),
            "docker" => Ok(Choice::Docker),
            "auto" => Ok(Choice::Auto),
            other => Err(format!(
                "unknown sandbox {other:?}; use process, bwrap, docker or auto"
            )),
        }
    }
}

/// Options for building the sandboxes.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    pub choice: Choice,
    pub kill_grace: Duration,
    pub image: String,
    pub pull: bool,
    pub docker_network: Option<String>,
    pub defaults: ResolvedLimits,
}

/// The sandboxes a worker has, and its default.
pub struct Sandboxes {
    default: &'static str,
    available: HashMap<&'static str, Arc<dyn Sandbox>>,
    /// Why the missing ones are missing (for the reason of a run that asks for one).
    missing: HashMap<&'static str, String>,
    pub defaults: ResolvedLimits,
}

impl std::fmt::Debug for Sandboxes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandboxes")
            .field("default", &self.default)
            .field("available", &self.available.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Sandboxes {
    /// Detects what this host offers. An explicit choice that is not available is an error;
    /// `auto` takes the strongest available and says which.
    pub async fn build(o: SandboxOptions) -> Result<Self, String> {
        let mut available: HashMap<&'static str, Arc<dyn Sandbox>> = HashMap::new();
        let mut missing = HashMap::new();
        let process = process::ProcessSandbox::new(o.kill_grace);
        // What a worker killed mid-run left behind on this host.
        let removed = leftovers::remove(&std::env::temp_dir(), process.cgroups.as_ref()).await;
        if removed != leftovers::Removed::default() {
            tracing::info!(
                folders = removed.folders,
                cgroups = removed.cgroups,
                "removed what runs of stopped workers left behind"
            );
        }
        available.insert("process", Arc::new(process));
        match bwrap::BwrapSandbox::detect(o.kill_grace) {
            Ok(b) => {
                tracing::info!(sandbox = %b.describe(), "bwrap sandbox available");
                available.insert("bwrap", Arc::new(b));
            }
            Err(e) => {
                missing.insert("bwrap", e);
            }
        }
        match docker::DockerSandbox::connect(&o.image, o.pull, o.docker_network.clone()).await {
            Ok(d) => {
                tracing::info!(sandbox = %d.describe(), "docker sandbox available");
                available.insert("docker", Arc::new(d));
            }
            Err(e) => {
                missing.insert("docker", e);
            }
        }
        let default = match o.choice {
            Choice::Process => "process",
            Choice::Bwrap => "bwrap",
            Choice::Docker => "docker",
            Choice::Auto => ["docker", "bwrap", "process"]
                .into_iter()
                .find(|s| available.contains_key(s))
                .unwrap_or("process"),
        };
        if let Some(why) = missing.get(default) {
            return Err(format!("sandbox {default} is not available: {why}"));
        }
        if default == "process" {
            tracing::warn!(
                uid = current_uid(),
                "runbooks run in the process sandbox: no filesystem, network or resource \
                 isolation, and as this server's own user, so they can read its data folder \
                 and, through /proc, its environment; use bwrap or docker for runbooks you do \
                 not fully trust"
            );
        }
        tracing::info!(default, "sandbox chosen");
        Ok(Self {
            default,
            available,
            missing,
            defaults: o.defaults,
        })
    }

    /// Only the process sandbox (tests, minimal set-ups).
    pub fn process_only(kill_grace: Duration, defaults: ResolvedLimits) -> Self {
        let mut available: HashMap<&'static str, Arc<dyn Sandbox>> = HashMap::new();
        available.insert(
            "process",
            Arc::new(process::ProcessSandbox::new(kill_grace)),
        );
        Self {
            default: "process",
            available,
            missing: HashMap::new(),
            defaults,
        }
    }

    pub fn default_name(&self) -> &'static str {
        self.default
    }

    /// The sandbox a run asked for, or the default.
    pub fn pick(&self, wanted: Option<&str>) -> Result<Arc<dyn Sandbox>, String> {
        let name = wanted.unwrap_or(self.default);
        self.available
            .get(name)
            .cloned()
            .ok_or_else(|| match self.missing.get(name) {
                Some(why) => format!("sandbox {name} is not available on this worker: {why}"),
                None => format!("unknown sandbox {name:?}"),
            })
    }
}
