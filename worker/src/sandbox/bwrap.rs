//! The `bwrap` sandbox: bubblewrap namespaces plus per-run cgroups.
//!
//! The runbook gets: new user, pid, ipc, uts, cgroup and network namespaces (the network one
//! is shared only when the schema sets `network: true`); a read-only root with `/usr` and a
//! few files of `/etc` bound read-only; the runbook's folder read-only at `/runbook`; a
//! private tmpfs `/tmp` as working directory and `HOME`; an empty environment plus the
//! contract (passed as bwrap's own environment, never on its command line); all capabilities dropped; as root, the unprivileged uid 65534 (through
//! `setpriv`, so it is 65534 outside the namespace too); memory, pids and CPU quota through
//! cgroups, CPU time through `RLIMIT_CPU`. `--die-with-parent` and the pid namespace take
//! the whole tree down with bwrap. A run with Azure access gets the token endpoint's socket
//! and starts through the relay (`relay`), which serves it on the sandbox's loopback.

use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use std::process::Command;

use super::cgroup::Cgroups;
use super::supervisor::{self, Limits};
use super::{
    PAYLOAD_FILE_VAR, PAYLOAD_PATH, RunOutcome, RunSpec, Sandbox, SandboxError, find_in_path,
    interpreter, relay,
};

/// Files of `/etc` a runbook may need, bound read-only when present.
const ETC_FILES: &[&str] = &[
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/hosts",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/alternatives",
];

/// Largest runbook folder staged for a run.
const MAX_STAGE_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone)]
pub struct BwrapSandbox {
    bwrap: PathBuf,
    /// To drop to uid 65534 when we are root.
    setpriv: Option<PathBuf>,
    cgroups: Cgroups,
    kill_grace: Duration,
}

#[allow(unsafe_code)]
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl BwrapSandbox {
    /// Usable here? Needs the bwrap binary and a writable cgroup hierarchy.
    pub fn detect(kill_grace: Duration) -> Result<Self, String> {
        let bwrap = find_in_path("bwrap").ok_or("bwrap is not installed (Debian: bubblewrap)")?;
        let cgroups = Cgroups::detect()?;
        let setpriv = if is_root() {
            find_in_path("setpriv")
        } else {
            None
        };
        Ok(Self {
            bwrap,
            setpriv,
            cgroups,
            kill_grace,
        })
    }

    pub fn describe(&self) -> String {
        format!(
            "bwrap ({}, cgroup {}, {})",
            self.bwrap.display(),
            self.cgroups.version(),
            if self.setpriv.is_some() {
                "uid 65534"
            } else {
                "current uid"
            }
        )
    }

    /// The exact command line (program first) that a run of `spec` starts when its
    /// folder can be bound as it is, its payload read from `payload_fd`: what `make bench`
    /// times without the engine.
    pub fn command_line(
        &self,
        spec: &RunSpec,
        payload_fd: RawFd,
    ) -> Result<Vec<std::ffi::OsString>, SandboxError> {
        let folder = spec.runbook.parent().unwrap_or(Path::new("/"));
        let cmd = self.command(spec, &Mount::Bound(folder.to_path_buf()), (payload_fd, &[]))?;
        Ok(std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(std::ffi::OsStr::to_os_string)
            .collect())
    }

    fn command(
        &self,
        spec: &RunSpec,
        folder: &Mount,
        (payload_fd, file_fds): (RawFd, &[RawFd]),
    ) -> Result<Command, SandboxError> {
        let file = spec
            .runbook
            .file_name()
            .ok_or_else(|| SandboxError("runbook has no file name".into()))?;
        let inside = Path::new("/runbook").join(file);
        let (mut program, mut argv) = interpreter(&inside)?;
        argv.extend(spec.args.iter().cloned());
        // Tokens: the endpoint's socket, and the relay that puts it on the sandbox's loopback.
        let relay = spec.broker.as_ref().filter(|b| b.tokens);
        if relay.is_some() {
            argv.insert(0, program.display().to_string());
            argv.insert(0, relay::RELAY_ARG.to_string());
            program = PathBuf::from(relay::RELAY_PATH);
        }
        let mut cmd = match &self.setpriv {
            Some(setpriv) => {
                let mut c = Command::new(setpriv);
                c.args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    "--inh-caps=-all",
                    "--",
                ])
                .arg(&self.bwrap);
                c
            }
            None => Command::new(&self.bwrap),
        };
        cmd.args(["--unshare-all", "--die-with-parent", "--new-session"]);
        if spec.network {
            cmd.arg("--share-net");
        }
        cmd.args(["--uid", "65534", "--gid", "65534", "--hostname", "runbook"])
            .args(["--ro-bind", "/usr", "/usr"])
            .args([
                "--symlink",
                "usr/bin",
                "/bin",
                "--symlink",
                "usr/sbin",
                "/sbin",
            ])
            .args([
                "--symlink",
                "usr/lib",
                "/lib",
                "--symlink",
                "usr/lib64",
                "/lib64",
            ]);
        for f in ETC_FILES {
            cmd.args(["--ro-bind-try", f, f]);
        }
        if spec.network {
            cmd.args(["--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]);
        }
        let tmp_size = (spec.limits.memory_mb << 20).to_string();
        cmd.args(["--proc", "/proc", "--dev", "/dev"])
            .args(["--size", &tmp_size, "--tmpfs", "/tmp"]);
        match folder {
            Mount::Bound(dir) => cmd.arg("--ro-bind").arg(dir),
            Mount::Staged(copy) => cmd.arg("--ro-bind").arg(copy.path()),
        };
        cmd.arg("/runbook")
            .args(["--chdir", "/tmp"])
            // The payload arrives through an inherited descriptor, copied into the sandbox.
            .args([
                "--perms",
                "0444",
                "--ro-bind-data",
                &payload_fd.to_string(),
                PAYLOAD_PATH,
            ]);
        // Run files (a kubeconfig) the same way, readable by the runbook's user only.
        for (f, fd) in spec.files.iter().zip(file_fds) {
            cmd.args(["--perms", "0400", "--ro-bind-data", &fd.to_string()])
                .arg(format!("/run/cloudo/{}", f.name));
        }
        if let Some(b) = relay {
            cmd.arg("--ro-bind")
                .arg(&b.relay)
                .arg(relay::RELAY_PATH)
                .arg("--bind")
                .arg(&b.socket)
                .arg(relay::SOCKET_PATH);
        }
        cmd.args(["--cap-drop", "ALL", "--remount-ro", "/", "--"])
            .arg(&program)
            .args(&argv);
        // The environment goes to the runbook as the environment of setpriv and bwrap
        // themselves (they pass it on untouched), never as `--setenv` arguments: a command
        // line is readable by every local user in /proc/<pid>/cmdline, an environment only
        // by its owner.
        cmd.env_clear()
            .envs(&spec.env)
            .env("HOME", "/tmp")
            .env(PAYLOAD_FILE_VAR, PAYLOAD_PATH);
        for f in &spec.files {
            cmd.env(f.env, format!("/run/cloudo/{}", f.name));
        }
        Ok(cmd)
    }
}

/// Where the sandbox finds the runbook's folder (`/runbook`).
enum Mount {
    /// The folder itself, bound read-only: every user can reach and read it. No copy.
    Bound(PathBuf),
    /// A world-readable copy: the folder sits below one the sandbox's user may not enter
    /// (bwrap resolves even `--ro-bind-fd` sources as that user), or holds a file only its
    /// owner may read.
    Staged(tempfile::TempDir),
}

/// The folder as the sandbox's user can read it: bound when it already can, else staged.
fn mount(folder: &Path) -> Result<Mount, SandboxError> {
    let reachable = std::fs::canonicalize(folder).ok().filter(|real| {
        real.ancestors().skip(1).all(|a| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
        }) && readable_by_all(real, 0).unwrap_or(false)
    });
    match reachable {
        Some(real) => Ok(Mount::Bound(real)),
        None => stage(folder).map(Mount::Staged),
    }
}

/// Can any user list `dir` and read every file below it (at most 16 folders deep)?
fn readable_by_all(dir: &Path, depth: u32) -> std::io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if depth > 16 || mode & 0o005 != 0o005 {
        return Ok(false);
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = std::fs::symlink_metadata(entry.path())?;
        if meta.is_dir() {
            if !readable_by_all(&entry.path(), depth + 1)? {
                return Ok(false);
            }
        } else if meta.is_file() && meta.permissions().mode() & 0o004 == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Copies the runbook's folder to a world-readable place the unprivileged sandbox can bind
/// (regular files and folders only; symlinks are not followed).
fn stage(folder: &Path) -> Result<tempfile::TempDir, SandboxError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix(&format!("cloudo-stage-{}-", super::cgroup::owner_tag()))
        .tempdir()
        .map_err(|e| SandboxError(format!("cannot stage the runbook: {e}")))?;
    let mut budget = MAX_STAGE_BYTES;
    fn copy(from: &Path, to: &Path, budget: &mut u64) -> std::io::Result<()> {
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755))?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            let meta = std::fs::symlink_metadata(entry.path())?;
            let dest = to.join(entry.file_name());
            if meta.is_dir() {
                std::fs::create_dir(&dest)?;
                copy(&entry.path(), &dest, budget)?;
            } else if meta.is_file() {
                *budget = budget.checked_sub(meta.len()).ok_or_else(|| {
                    std::io::Error::other(format!(
                        "the runbook's folder is over {MAX_STAGE_BYTES} bytes"
                    ))
                })?;
                std::fs::copy(entry.path(), &dest)?;
                let mode = if meta.permissions().mode() & 0o111 != 0 {
                    0o755
                } else {
                    0o644
                };
                std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))?;
            }
        }
        Ok(())
    }
    copy(folder, dir.path(), &mut budget)
        .map_err(|e| SandboxError(format!("cannot stage the runbook's folder: {e}")))?;
    Ok(dir)
}

/// Text in an unnamed file, read from the start (bwrap copies it into the sandbox).
fn payload_file(payload: Option<&str>) -> std::io::Result<std::fs::File> {
    use std::io::{Seek, Write};
    let mut f = tempfile::tempfile()?;
    f.write_all(payload.unwrap_or_default().as_bytes())?;
    f.rewind()?;
    Ok(f)
}

#[async_trait]
impl Sandbox for BwrapSandbox {
    fn name(&self) -> &'static str {
        "bwrap"
    }

    async fn run(&self, spec: RunSpec) -> Result<RunOutcome, SandboxError> {
        let folder = spec
            .runbook
            .parent()
            .ok_or_else(|| SandboxError("runbook has no folder".into()))?
            .to_path_buf();
        // Mounting (or staging) the folder and creating the cgroups are independent: do
        // both at once.
        let name = format!("{}-{}", spec.exec_id, super::cgroup::owner_tag());
        let (cgroups, limits_wanted) = (self.cgroups.clone(), spec.limits);
        let (staged, cg) = tokio::join!(
            tokio::task::spawn_blocking(move || mount(&folder)),
            tokio::task::spawn_blocking(move || cgroups.create(&name, &limits_wanted)),
        );
        let staged = staged.map_err(|e| SandboxError(e.to_string()))??;
        let cg = cg
            .map_err(|e| SandboxError(e.to_string()))?
            .map_err(|e| SandboxError(format!("cannot apply limits: {e}")))?;
        // What fails from here to the start removes the groups as a finished run does.
        let prepared = (|| {
            let payload = payload_file(spec.payload.as_deref())
                .map_err(|e| SandboxError(format!("cannot write the payload file: {e}")))?;
            let files = spec
                .files
                .iter()
                .map(|f| payload_file(Some(f.content.expose())))
                .collect::<std::io::Result<Vec<_>>>()
                .map_err(|e| SandboxError(format!("cannot write a run file: {e}")))?;
            let file_fds: Vec<RawFd> = files.iter().map(AsRawFd::as_raw_fd).collect();
            let cmd = self.command(&spec, &staged, (payload.as_raw_fd(), &file_fds))?;
            // Started without a fork (see `spawn`): it joins the run's groups, caps its
            // CPU time and keeps the payload's and run files' descriptors on its way to
            // exec.
            let mut plan = super::spawn::Plan::from_cleared(&cmd)
                .map_err(|e| SandboxError(format!("cannot start bwrap: {e}")))?;
            plan.cpu_secs =
                Some(spec.timeout.as_secs().max(1) * (spec.limits.cpu.ceil().max(1.0) as u64));
            plan.keep_fds = file_fds;
            plan.keep_fds.push(payload.as_raw_fd());
            plan.cgroups = cg.procs_files();
            Ok::<_, SandboxError>((plan, payload, files))
        })();
        let (plan, payload, files) = match prepared {
            Ok(p) => p,
            Err(e) => {
                tokio::spawn(async move {
                    cg.finish().await;
                    drop(staged);
                });
                return Err(e);
            }
        };
        let limits = Limits {
            timeout: spec.timeout,
            kill_grace: self.kill_grace,
            output_cap: spec.output_cap,
            live: spec.live.clone(),
            secrets: spec.secrets.clone(),
            cancel: spec.cancel.clone(),
        };
        let result = supervisor::run(&plan, &limits, None).await;
        drop(payload);
        drop(files);
        let oom = cg.oom_killed();
        // bwrap is gone, so is its pid namespace; what is left is removing the groups,
        // which can take a few retries while the last tasks exit: not on the run's clock.
        tokio::spawn(async move {
            cg.finish().await;
            drop(staged);
        });
        let mut outcome = result.map_err(|e| SandboxError(format!("cannot start bwrap: {e}")))?;
        outcome.oom = oom;
        Ok(outcome)
    }
}
