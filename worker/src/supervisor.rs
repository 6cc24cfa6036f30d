//! Child-process supervision, in one place: spawn in a process group of its own, capture
//! stdout and stderr through one pipe (so their order is kept), enforce the wall-clock
//! limit on the whole group, clean up leftovers, and report how it ended.
//!
//! Sandboxes that run a local process (`process`, later `bwrap`) build the command and
//! hand it here.
//!
//! The child is started with `posix_spawn` (std picks it when there is no `pre_exec` hook
//! and the program is an absolute path): `fork` from a busy multi-threaded server costs a
//! copy-on-write fault and a TLB shoot-down on every page the server touches afterwards,
//! which halved throughput when measured. So there is no `PR_SET_PDEATHSIG` hook here;
//! runbooks that outlive a SIGKILLed engine are found by their `CLOUDO_EXEC_ID` and killed
//! at the next start ([`kill_strays`]).

#![allow(unsafe_code)]

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::process::Command;

use crate::output::OutputCapture;
use crate::sandbox::RunOutcome;

/// How a supervised child is bounded.
#[derive(Debug, Clone)]
pub struct Limits {
    pub timeout: Duration,
    /// Between SIGTERM and SIGKILL when the timeout hits.
    pub kill_grace: Duration,
    pub output_cap: usize,
    /// Also fed with every chunk, for the live view.
    pub live: Option<crate::output::LiveOutput>,
}

/// How long to keep reading output after the runbook exited and its group was killed:
/// only a process that escaped the group (`setsid`) can still hold the pipe then.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// Spawns `cmd` and supervises it to the end. `cmd` must already have its program,
/// arguments, environment and working directory; stdio is set here.
pub async fn run(mut cmd: Command, limits: &Limits) -> io::Result<RunOutcome> {
    let (reader, writer) = io::pipe()?;
    cmd.stdin(std::process::Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .process_group(0)
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = cmd.spawn()?;
    // The command holds the pipe's write ends; drop them or the read end never sees EOF.
    drop(cmd);
    let pgid = child.id().map(|id| id as i32);
    let mut out = pipe::Receiver::from_owned_fd(OwnedFd::from(reader))?;
    let mut capture = OutputCapture::new(limits.output_cap);
    let mut buf = vec![0u8; 64 * 1024];
    // At the deadline: SIGTERM to the group, then SIGKILL once the grace period is over.
    let mut deadline = tokio::time::Instant::now() + limits.timeout;
    let mut signals_sent = 0;
    let mut timed_out = false;
    let mut pipe_open = true;
    let status = loop {
        tokio::select! {
            n = out.read(&mut buf), if pipe_open => match n {
                Ok(0) | Err(_) => pipe_open = false,
                Ok(n) => {
                    capture.push(&buf[..n]);
                    if let Some(l) = &limits.live {
                        l.push(&buf[..n]);
                    }
                }
            },
            status = child.wait() => break status?,
            _ = tokio::time::sleep_until(deadline), if signals_sent < 2 => {
                timed_out = true;
                if signals_sent == 0 {
                    signal_group(pgid, libc::SIGTERM);
                    deadline = tokio::time::Instant::now() + limits.kill_grace;
                } else {
                    signal_group(pgid, libc::SIGKILL);
                }
                signals_sent += 1;
            }
        }
    };
    // Whatever the runbook left behind in its group (`sleep 300 &`) goes with it.
    signal_group(pgid, libc::SIGKILL);
    if pipe_open {
        let drain = tokio::time::Instant::now() + DRAIN_AFTER_EXIT;
        loop {
            tokio::select! {
                n = out.read(&mut buf) => match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                    capture.push(&buf[..n]);
                    if let Some(l) = &limits.live {
                        l.push(&buf[..n]);
                    }
                }
                },
                _ = tokio::time::sleep_until(drain) => break,
            }
        }
    }
    let output_bytes = capture.total();
    let (output, output_truncated) = capture.finish();
    Ok(RunOutcome {
        exit_code: status.code(),
        signal: status.signal(),
        timed_out,
        output,
        output_truncated,
        output_bytes,
        duration: started.elapsed(),
        oom: false,
    })
}

/// Kills every process whose environment carries `CLOUDO_EXEC_ID=<exec_id>`: what is left
/// of a run whose engine died. Returns how many were signalled.
pub fn kill_strays(exec_id: &str) -> usize {
    let needle = format!("CLOUDO_EXEC_ID={exec_id}");
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut killed = 0;
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ
            .split(|&b| b == 0)
            .any(|var| var == needle.as_bytes())
        {
            // SAFETY: kill has no memory-safety preconditions; pid is a process that
            // carries this execution's id, never ourselves (our environment has none).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            killed += 1;
        }
    }
    killed
}

/// Sends `sig` to a whole process group; a group that is already gone is fine.
fn signal_group(pgid: Option<i32>, sig: libc::c_int) {
    if let Some(pgid) = pgid.filter(|&p| p > 1) {
        // SAFETY: killpg has no memory-safety preconditions; pgid > 1 is the group we made
        // with process_group(0), never our own group or init.
        unsafe {
            libc::killpg(pgid, sig);
        }
    }
}
