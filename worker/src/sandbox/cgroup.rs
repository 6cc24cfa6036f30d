//! Per-run cgroups for memory, pids and CPU limits (bwrap sandbox), on cgroup v1 (one
//! hierarchy per controller, as on this project's machines) or v2 (unified), detected.
//!
//! The child joins its groups itself between fork and exec by writing `0` to each
//! `cgroup.procs` (no allocation after fork); everything it starts stays inside.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Limits as applied (worker defaults filled in).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResolvedLimits {
    pub memory_mb: u64,
    pub pids: u64,
    pub cpu: f64,
}

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

/// The groups of one run. Call [`RunCgroup::finish`] when the run is over.
#[derive(Debug)]
pub struct RunCgroup {
    v2: bool,
    /// Memory group first.
    dirs: Vec<PathBuf>,
    procs: Vec<CString>,
}

impl RunCgroup {
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

    /// Kills whatever is left and removes the groups (retrying while tasks die).
    #[allow(unsafe_code)]
    pub async fn finish(self) {
        for _ in 0..100 {
            let left = self.members();
            if left.is_empty() {
                break;
            }
            if self.v2 {
                let _ = std::fs::write(self.dirs[0].join("cgroup.kill"), "1");
            } else {
                for pid in left {
                    // SAFETY: kill has no memory-safety preconditions; these pids are in
                    // this run's own cgroup.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
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
