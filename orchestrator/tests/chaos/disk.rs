//! The embedded engine's disk fills up under load, then frees up again.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::crash::{engine, leftovers, secrets_in, settle};
use crate::load;
use crate::report::{Row, pick};

/// A tmpfs of `mb` MiB mounted on `dir` while this lives (the suite runs as root, as CI does).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mb: u32) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mb}m,mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "mounting a tmpfs needs root (CI runs the suite as root)"
        );
        Self(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the file system is full; how many bytes it took.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let mut n = 0u64;
    for size in [1 << 20, 4096, 1] {
        let chunk = vec![0x5a_u8; size];
        while f.write_all(&chunk).is_ok() {
            n += size as u64;
        }
    }
    let _ = f.sync_all();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_and_recovers_by_itself() {
    let _serial = crate::report::serial().await;
    let (env, base) = engine();
    let data = env.path().join("data");
    // Room for the load itself (the log of writes grows to tens of MiB between
    // checkpoints); the filler takes the rest.
    let _disk = Tmpfs::mount(&data, 256);
    let mut s = env.start();
    let pid = s.child.id();
    let clients = 4;
    let load = load::start(&[base], "work", clients, crate::crash::PACE);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let filler = data.join("filler");
    let filled = fill(&filler);
    let full_at = Instant::now();
    // Full until the store has refused for a while (or long enough that it never had to).
    let hold = Duration::from_secs(pick(4, 12));
    while full_at.elapsed() < hold || load.unavailable.load(Ordering::SeqCst) < 20 {
        if full_at.elapsed() > hold * 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused_while_full = load.unavailable.load(Ordering::SeqCst);
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    tokio::time::sleep(Duration::from_secs(pick(3, 8))).await;
    let t = load.stop().await;
    let after_free = t.accepted_at.values().filter(|at| **at > freed).count();

    let mut row = Row::new("disk-full-embedded");
    row.load = format!("{clients} clients, manual triggers and Azure alerts");
    row.faults = format!(
        "data dir on a 256 MiB tmpfs filled to ENOSPC ({} MiB) for {:.0} s, then freed",
        filled >> 20,
        freed.duration_since(full_at).as_secs_f64()
    );
    let alive = s.child.try_wait().unwrap().is_none();
    row.violations += usize::from(!alive) + usize::from(after_free == 0);
    settle(&mut row, &s, &t).await;
    s.stop();
    let (left, what) = leftovers(&env, &[pid]);
    row.leftovers = left;
    row.secrets = secrets_in(&s);
    row.notes = format!(
        "{}; {refused_while_full} refusals while full; {after_free} accepted after the disk was freed; server {}; left: {what}",
        row.notes,
        if alive { "stayed up" } else { "died" }
    );
    row.finish();
}
