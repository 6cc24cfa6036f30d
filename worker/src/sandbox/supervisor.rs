//! Child-process supervision, in one place: spawn in a process group of its own, capture
//! stdout and stderr through a pipe each (masked per stream, merged in the order read), enforce the wall-clock
//! limit on the whole group, clean up leftovers, and report how it ended.
//!
//! Sandboxes that run a local process (`process`, `bwrap`) prepare a [`Plan`] and hand it
//! here. The child is started without a `fork` (see `spawn`): `fork` from a busy
//! multi-threaded server costs a copy-on-write fault and a TLB shoot-down on every page the
//! server touches afterwards, which halved throughput when measured. So there is no
//! `PR_SET_PDEATHSIG` here; runbooks that outlive a SIGKILLed engine are found by their
//! `CLOUDO_EXEC_ID` (or their cgroup) and killed at the next start ([`kill_strays`]).

#![allow(unsafe_code)]

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

use super::RunOutcome;
use super::spawn::Plan;
use crate::output::{RunOutput, Stream};
use crate::secrets::MaskSet;

/// How a supervised child is bounded.
#[derive(Debug, Clone)]
pub struct Limits {
    pub timeout: Duration,
    /// Between SIGTERM and SIGKILL when the timeout hits.
    pub kill_grace: Duration,
    pub output_cap: usize,
    /// Also fed with every chunk, for the live view.
    pub live: Option<crate::output::LiveOutput>,
    /// Values masked in the output, per stream.
    pub secrets: MaskSet,
    /// Stops the child like a timeout does, when cancelled.
    pub cancel: tokio_util::sync::CancellationToken,
}

/// How long to keep reading output after the runbook exited and its group was killed:
/// only a process that escaped the group (`setsid`) can still hold the pipe then.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// Where each stream is read: a pipe's default capacity, filled without being zeroed first
/// (a zeroed 128 KiB buffer per run was a needless memset of the whole of it).
struct Buffers {
    out: Vec<u8>,
    err: Vec<u8>,
}

impl Buffers {
    fn new() -> Self {
        Self {
            out: Vec::with_capacity(64 * 1024),
            err: Vec::with_capacity(64 * 1024),
        }
    }
}

/// The read ends of the child's stdout and stderr.
struct Pipes {
    out: Option<pipe::Receiver>,
    err: Option<pipe::Receiver>,
}

impl Pipes {
    fn open(&self) -> bool {
        self.out.is_some() || self.err.is_some()
    }

    /// Reads whichever stream has output next into `sink`; `false` once both are closed.
    async fn read_into(&mut self, bufs: &mut Buffers, sink: &mut RunOutput) -> bool {
        async fn read(p: &mut Option<pipe::Receiver>, buf: &mut Vec<u8>) -> io::Result<usize> {
            buf.clear();
            match p {
                Some(p) => p.read_buf(buf).await,
                None => std::future::pending().await,
            }
        }
        if !self.open() {
            return false;
        }
        let (n, stream) = tokio::select! {
            // stdout first when both are ready: the usual order of a runbook's writes.
            biased;
            n = read(&mut self.out, &mut bufs.out) => (n, Stream::Stdout),
            n = read(&mut self.err, &mut bufs.err) => (n, Stream::Stderr),
        };
        let data = if stream == Stream::Stdout {
            &bufs.out
        } else {
            &bufs.err
        };
        match n {
            Ok(n) if n > 0 => sink.push(stream, &data[..n]),
            _ => match stream {
                Stream::Stdout => self.out = None,
                Stream::Stderr => self.err = None,
            },
        }
        true
    }
}

/// What tracks a run's processes beyond its process group (which `setsid` leaves): a
/// cgroup the child is born in (it joins before `exec`: `Plan::cgroups`), so that nothing
/// it starts can be outside.
pub trait Tracker: Send + Sync {
    /// Kills every process of the run that is still alive.
    fn kill_all(&self);
}

/// Starts `plan` (its program, arguments, environment, working directory, groups, CPU time
/// and kept descriptors; stdio is set here) and supervises it to the end. `tracker`, if
/// any, also kills what is left in the run's group with the process group.
pub async fn run(
    plan: &Plan,
    limits: &Limits,
    tracker: Option<&dyn Tracker>,
) -> io::Result<RunOutcome> {
    use std::os::fd::AsRawFd;
    // One pipe per stream, so each is masked on its own before they are merged.
    let (out_r, out_w) = io::pipe()?;
    let (err_r, err_w) = io::pipe()?;
    let null = std::fs::File::open("/dev/null")?;
    let started = Instant::now();
    let child = super::spawn::spawn(
        plan,
        [null.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()],
    )?;
    // The child has its copies; ours must close or the read ends never see EOF.
    drop((null, out_w, err_w));
    supervise(child, (out_r, err_r), limits, tracker, started).await
}

async fn supervise(
    mut child: super::spawn::Child,
    (out_r, err_r): (io::PipeReader, io::PipeReader),
    limits: &Limits,
    tracker: Option<&dyn Tracker>,
    started: Instant,
) -> io::Result<RunOutcome> {
    let pgid = Some(child.id() as i32);
    let mut pipes = Pipes {
        out: Some(pipe::Receiver::from_owned_fd(OwnedFd::from(out_r))?),
        err: Some(pipe::Receiver::from_owned_fd(OwnedFd::from(err_r))?),
    };
    let mut sink = RunOutput::new(limits.output_cap, limits.live.clone(), &limits.secrets);
    let mut buf = Buffers::new();
    // At the deadline: SIGTERM to the group, then SIGKILL once the grace period is over.
    let mut deadline = tokio::time::Instant::now() + limits.timeout;
    let mut signals_sent = 0;
    let mut timed_out = false;
    let mut cancelled = false;
    let status = loop {
        tokio::select! {
            _ = pipes.read_into(&mut buf, &mut sink), if pipes.open() => {}
            status = child.wait() => break status?,
            // Cancelled: the same as the deadline arriving now.
            _ = limits.cancel.cancelled(), if signals_sent == 0 && !cancelled => {
                cancelled = true;
                signal_group(pgid, libc::SIGTERM);
                deadline = tokio::time::Instant::now() + limits.kill_grace;
                signals_sent = 1;
            }
            _ = tokio::time::sleep_until(deadline), if signals_sent < 2 => {
                timed_out |= !cancelled;
                if signals_sent == 0 {
                    signal_group(pgid, libc::SIGTERM);
                    deadline = tokio::time::Instant::now() + limits.kill_grace;
                } else {
                    signal_group(pgid, libc::SIGKILL);
                    if let Some(t) = tracker {
                        t.kill_all();
                    }
                }
                signals_sent += 1;
            }
        }
    };
    // Whatever the runbook left behind in its group (`sleep 300 &`) goes with it, and
    // with a tracker what left the group too (`env -i setsid daemon &`).
    signal_group(pgid, libc::SIGKILL);
    if let Some(t) = tracker {
        t.kill_all();
    }
    let drain = tokio::time::Instant::now() + DRAIN_AFTER_EXIT;
    while pipes.open() {
        tokio::select! {
            _ = pipes.read_into(&mut buf, &mut sink) => {}
            _ = tokio::time::sleep_until(drain) => break,
        }
    }
    let (output, output_truncated, output_bytes) = sink.finish();
    Ok(RunOutcome {
        exit_code: status.code(),
        signal: status.signal(),
        timed_out,
        cancelled,
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
        // SAFETY: killpg has no memory-safety preconditions; pgid > 1 is the group the
        // child made for itself before exec (see `spawn`), never our own group or init.
        unsafe {
            libc::killpg(pgid, sig);
        }
    }
}
