//! Per-run cgroups for memory, pids and CPU limits (bwrap sandbox), on cgroup v1 (one
//! hierarchy per controller, as on this project's machines) or v2 (unified), detected.
//!
//! The child joins its groups itself between its start and its exec by writing `0` to each
//! `cgroup.procs` (see `spawn`: no allocation there); everything it starts stays inside.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::limits::ResolvedLimits;

#[derive(Debug, Clone)]
pub enum Cgroups {
    /// `/sys/fs/cgroup/{memory,pids,cpu}`.
    V1 { root: PathBuf },
    /// `/sys/fs/cgroup/cloudo`, with memory, pids and cpu delegated.
    V2 { base: PathBuf },
}

const CFS_PERIOD_US: u64 = 100_000;

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

impl Cgroups {
    /// Finds a usable hierarchy and checks that we may create groups in it.
    pub fn detect() -> Result<Self, String> {
        let fs = Path::new("/sys/fs/cgroup");
        if fs.join("cgroup.controllers").exists() {
            let base = fs.join("cloudo");
            std::fs::create_dir_all(&base)
                .map_err(|e| format!("cgroup v2: cannot create {}: {e}", base.display()))?;
            // Delegate the controllers from the root down to our base.
            write(&fs.join("cgroup.subtree_control"), "+memory +pids +cpu")?;
            write(&base.join("cgroup.subtree_control"), "+memory +pids +cpu")?;
            return Ok(Cgroups::V2 { base });
        }
        if fs.join("memory").is_dir() && fs.join("pids").is_dir() && fs.join("cpu").is_dir() {
            for c in ["memory", "pids", "cpu"] {
                let d = fs.join(c).join("cloudo");
                std::fs::create_dir_all(&d)
                    .map_err(|e| format!("cgroup v1: cannot create {}: {e}", d.display()))?;
            }
            return Ok(Cgroups::V1 {
                root: fs.to_path_buf(),
            });
        }
        Err("no usable cgroup hierarchy (need memory, pids and cpu controllers)".into())
    }

    pub fn version(&self) -> &'static str {
        match self {
            Cgroups::V1 { .. } => "v1",
            Cgroups::V2 { .. } => "v2",
        }
    }

    /// Creates the groups of one run with its limits.
    pub fn create(&self, name: &str, l: &ResolvedLimits) -> Result<RunCgroup, String> {
        let bytes = (l.memory_mb << 20).to_string();
        let quota = ((l.cpu * CFS_PERIOD_US as f64).round() as u64).max(1000);
        let dirs = match self {
            Cgroups::V1 { root } => {
                let mem = root.join("memory/cloudo").join(name);
                let pids = root.join("pids/cloudo").join(name);
                let cpu = root.join("cpu/cloudo").join(name);
                for d in [&mem, &pids, &cpu] {
                    std::fs::create_dir_all(d)
                        .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
                }
                write(&mem.join("memory.limit_in_bytes"), &bytes)?;
                let memsw = mem.join("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    write(&memsw, &bytes)?;
                }
                write(&pids.join("pids.max"), &l.pids.to_string())?;
                write(&cpu.join("cpu.cfs_period_us"), &CFS_PERIOD_US.to_string())?;
                write(&cpu.join("cpu.cfs_quota_us"), &quota.to_string())?;
                vec![mem, pids, cpu]
            }
            Cgroups::V2 { base } => {
                let d = base.join(name);
                std::fs::create_dir_all(&d)
                    .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
                write(&d.join("memory.max"), &bytes)?;
                let _ = write(&d.join("memory.swap.max"), "0");
                write(&d.join("pids.max"), &l.pids.to_string())?;
                write(&d.join("cpu.max"), &format!("{quota} {CFS_PERIOD_US}"))?;
                vec![d]
            }
        };
        let procs = dirs
            .iter()
            .map(|d| CString::new(d.join("cgroup.procs").into_os_string().into_encoded_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        Ok(RunCgroup {
            v2: matches!(self, Cgroups::V2 { .. }),
            dirs,
            procs,
        })
    }
}

impl Cgroups {
    /// A group that only tracks one run's processes, without limits (the process
    /// sandbox): `pids` on v1, one group on v2.
    pub fn create_tracking(&self, name: &str) -> Result<RunCgroup, String> {
        let dir = match self {
            Cgroups::V1 { root } => root.join("pids/cloudo").join(name),
            Cgroups::V2 { base } => base.join(name),
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let procs = CString::new(
            dir.join("cgroup.procs")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .map_err(|e| e.to_string())?;
        Ok(RunCgroup {
            v2: matches!(self, Cgroups::V2 { .. }),
            dirs: vec![dir],
            procs: vec![procs],
        })
    }

    /// The groups of runs whose worker process is gone (named `<exec id>-<worker pid>`),
    /// for [`RunCgroup::finish`] to empty and remove.
    pub fn leftovers(&self) -> Vec<RunCgroup> {
        let parents: Vec<PathBuf> = match self {
            Cgroups::V1 { root } => ["memory", "pids", "cpu"]
                .iter()
                .map(|c| root.join(c).join("cloudo"))
                .collect(),
            Cgroups::V2 { base } => vec![base.clone()],
        };
        let mut by_name: std::collections::BTreeMap<String, Vec<PathBuf>> = Default::default();
        for parent in &parents {
            let Ok(entries) = std::fs::read_dir(parent) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if e.path().is_dir() && owner_is_gone(&name) {
                    by_name.entry(name).or_default().push(e.path());
                }
            }
        }
        by_name
            .into_values()
            .map(|mut dirs| {
                // The memory group first, as `finish` and `oom_killed` expect.
                dirs.sort_by_key(|d| !d.components().any(|c| c.as_os_str() == "memory"));
                RunCgroup {
                    v2: matches!(self, Cgroups::V2 { .. }),
                    dirs,
                    procs: Vec::new(),
                }
            })
            .collect()
    }
}

/// This worker process as it names what it leaves on the host: `<pid>n<pid namespace>`,
/// so that a worker never takes another pid namespace's (another container's) things for
/// a dead process's.
pub fn owner_tag() -> String {
    use std::sync::OnceLock;
    static NS: OnceLock<String> = OnceLock::new();
    let ns = NS.get_or_init(|| {
        std::fs::read_link("/proc/self/ns/pid")
            .ok()
            .and_then(|l| {
                l.to_string_lossy()
                    .trim_start_matches("pid:[")
                    .trim_end_matches(']')
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0)
            .to_string()
    });
    format!("{}n{ns}", std::process::id())
}

/// Is `name` (`...-<owner tag>`) the folder or group of a process of this pid namespace
/// that no longer runs?
pub fn owner_is_gone(name: &str) -> bool {
    let Some((pid, ns)) = name.rsplit('-').next().and_then(|t| t.split_once('n')) else {
        return false;
    };
    let (Ok(pid), Some((_, ours))) = (
        pid.parse::<u32>(),
        owner_tag()
            .split_once('n')
            .map(|(a, b)| (a.to_string(), b.to_string())),
    ) else {
        return false;
    };
    ns == ours && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// The groups of one run. Call [`RunCgroup::finish`] when the run is over.
#[derive(Debug)]
pub struct RunCgroup {
    v2: bool,
    /// Memory group first.
    dirs: Vec<PathBuf>,
    procs: Vec<CString>,
}

impl RunCgroup {
    /// Processes in the groups now.
    pub fn count(&self) -> usize {
        self.members().len()
    }

    /// `cgroup.procs` files to join, for the child's pre-exec hook.
    pub fn procs_files(&self) -> Vec<CString> {
        self.procs.clone()
    }

    /// Did the kernel kill something here for memory?
    pub fn oom_killed(&self) -> bool {
        let (file, key) = if self.v2 {
            ("memory.events", "oom_kill")
        } else {
            ("memory.oom_control", "oom_kill")
        };
        std::fs::read_to_string(self.dirs[0].join(file))
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    let mut it = l.split_whitespace();
                    if it.next() == Some(key) {
                        it.next().and_then(|n| n.parse::<u64>().ok())
                    } else {
                        None
                    }
                })
            })
            .is_some_and(|n| n > 0)
    }

    fn members(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        for d in &self.dirs {
            if let Ok(s) = std::fs::read_to_string(d.join("cgroup.procs")) {
                pids.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Sends SIGKILL to every process in the groups, once.
    #[allow(unsafe_code)]
    pub fn kill_members(&self) {
        if self.v2 {
            let _ = std::fs::write(self.dirs[0].join("cgroup.kill"), "1");
            return;
        }
        for pid in self.members() {
            if pid != std::process::id() as i32 {
                // SAFETY: kill has no memory-safety preconditions; these pids are in this
                // run's own cgroup, and never this process.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }

    /// Kills whatever is left and removes the groups (retrying while tasks die).
    pub async fn finish(self) {
        for _ in 0..100 {
            // Never this process (a group of ours it should never be in; killing it would
            // take the worker down with the run).
            if self
                .members()
                .iter()
                .all(|&p| p == std::process::id() as i32)
            {
                break;
            }
            self.kill_members();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for d in &self.dirs {
            for _ in 0..50 {
                if std::fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Joins the groups whose `cgroup.procs` files are `procs` (writing `0`: "this process").
/// Only open, write and close, on memory allocated before the child started.
///
/// # Safety
/// Only in the child, between its start (see `spawn`) and its exec.
#[allow(unsafe_code)]
pub(crate) unsafe fn join_in_child(procs: &[CString]) -> std::io::Result<()> {
    for p in procs {
        // SAFETY: `p` is a valid C string; open, write and close are async-signal-safe.
        unsafe {
            let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
            libc::close(fd);
            if !ok {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

impl super::supervisor::Tracker for RunCgroup {
    fn kill_all(&self) {
        self.kill_members();
    }
}
