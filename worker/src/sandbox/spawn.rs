//! Starting a sandbox's first process with `vfork` semantics, for the steps `posix_spawn`
//! cannot take: joining the run's cgroups, capping CPU time and keeping the payload's
//! descriptors open, between the child's start and its `exec`.
//!
//! std's `pre_exec` hook does them after a `fork`, which in a busy multi-threaded server
//! marks every writable page copy-on-write: the server then takes a page fault (and a TLB
//! shoot-down) on each page it writes next, about 400 per bwrap run when measured, on top
//! of copying the page tables. Here the child shares the parent's memory
//! (`CLONE_VM | CLONE_VFORK`, as glibc's `posix_spawn` does) and the calling thread waits
//! until it has called `exec`. So the child may only make system calls on memory prepared
//! before: no allocation, no lock, no Rust runtime.

#![allow(unsafe_code)]

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicI32, Ordering};

use tokio::io::unix::AsyncFd;

/// What the child becomes, prepared before it starts. (Its `Debug` shows the program
/// only: the environment carries the runbook's secrets.)
pub struct Plan {
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    cwd: Option<CString>,
    /// Inherited across `exec` (close-on-exec cleared in the child).
    pub keep_fds: Vec<RawFd>,
    /// `cgroup.procs` files the child joins (writing `0`: "this process").
    pub cgroups: Vec<CString>,
    /// `RLIMIT_CPU`, in seconds.
    pub cpu_secs: Option<u64>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("program", &self.program)
            .field("args", &self.argv.len())
            .finish_non_exhaustive()
    }
}

fn c_string(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::other("a NUL byte in a command line"))
}

impl Plan {
    /// From a command whose environment was cleared (`env_clear`) and set entry by entry:
    /// its program, arguments, environment and working directory.
    pub fn from_cleared(cmd: &std::process::Command) -> io::Result<Self> {
        let program = c_string(cmd.get_program())?;
        let mut argv = vec![program.clone()];
        for a in cmd.get_args() {
            argv.push(c_string(a)?);
        }
        let mut envp = Vec::new();
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                envp.push(
                    CString::new(kv)
                        .map_err(|_| io::Error::other("a NUL byte in the environment"))?,
                );
            }
        }
        let cwd = cmd
            .get_current_dir()
            .map(|d| c_string(d.as_os_str()))
            .transpose()?;
        Ok(Self {
            program,
            argv,
            envp,
            cwd,
            keep_fds: Vec::new(),
            cgroups: Vec::new(),
            cpu_secs: None,
        })
    }
}

/// Everything the child reads: in the parent's memory, which it shares.
struct ChildArgs<'a> {
    plan: &'a Plan,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    stdio: [RawFd; 3],
    /// The calling thread's mask, restored in the parent.
    mask: libc::sigset_t,
    /// The child's mask at `exec`: empty, as std's `Command` gives its children.
    exec_mask: libc::sigset_t,
    /// The errno of the step that failed, 0 when `exec` succeeded.
    err: AtomicI32,
}

/// Stack of the child until its `exec` (it runs a few system calls).
const STACK: usize = 64 << 10;

/// Starts `plan` in a process group of its own with `stdio` as its descriptors 0, 1, 2.
/// Returns once the child has called `exec` (or failed to).
pub fn spawn(plan: &Plan, stdio: [RawFd; 3]) -> io::Result<Child> {
    start(plan, stdio, true)
}

/// [`spawn`]; `pidfd` false awaits the exit on a blocking thread, as kernels without
/// `pidfd_open` (before 5.3) and valgrind do.
fn start(plan: &Plan, stdio: [RawFd; 3], pidfd: bool) -> io::Result<Child> {
    // The child's exit is awaited on the runtime's reactor: checked before it starts, not
    // found missing after (registering would panic, leaving it running).
    tokio::runtime::Handle::try_current()
        .map_err(|_| io::Error::other("a child is started from within the tokio runtime"))?;
    let ptrs = |v: &[CString]| {
        v.iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect::<Vec<_>>()
    };
    // SAFETY: an all-zero sigset_t is a valid value to fill.
    let mut args = ChildArgs {
        plan,
        argv: ptrs(&plan.argv),
        envp: ptrs(&plan.envp),
        stdio,
        mask: unsafe { std::mem::zeroed() },
        exec_mask: unsafe { std::mem::zeroed() },
        err: AtomicI32::new(0),
    };
    // SAFETY: initialises a sigset_t owned here.
    unsafe { libc::sigemptyset(&mut args.exec_mask) };
    // SAFETY: a private anonymous mapping, unmapped below once the child has exec'd.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // Signals stay blocked until the child has reset their handlers (a handler of ours
    // running in the child would run on shared memory).
    // SAFETY: plain signal-mask calls on valid sigset_t values; clone runs `child` on the
    // fresh stack with `args`, which outlives it (CLONE_VFORK suspends this thread until
    // the child has exec'd or exited).
    let pid = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut args.mask);
        let pid = libc::clone(
            child,
            stack.cast::<u8>().add(STACK).cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            std::ptr::from_mut(&mut args).cast(),
        );
        libc::pthread_sigmask(libc::SIG_SETMASK, &args.mask, std::ptr::null_mut());
        libc::munmap(stack, STACK);
        pid
    };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    let err = args.err.load(Ordering::SeqCst);
    if err != 0 {
        reap(pid);
        return Err(io::Error::from_raw_os_error(err));
    }
    let exit = match watch(pid, pidfd) {
        Ok(exit) => exit,
        Err(e) => {
            // SAFETY: our own child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            reap(pid);
            return Err(e);
        }
    };
    Ok(Child {
        pid,
        exit,
        reaped: false,
    })
}

/// The child's side, until `exec`: only system calls, on memory prepared before.
extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `ChildArgs`, alive while the parent is suspended.
    let a = unsafe { &*arg.cast::<ChildArgs<'_>>() };
    // SAFETY: each call below is async-signal-safe and touches only `a`'s prepared data.
    unsafe {
        let fail = |a: &ChildArgs<'_>| -> libc::c_int {
            a.err.store(
                std::io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EINVAL)
                    .max(1),
                Ordering::SeqCst,
            );
            libc::_exit(127)
        };
        for sig in 1..=libc::SIGRTMAX() {
            let mut sa: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut sa) == 0
                && sa.sa_sigaction != libc::SIG_IGN
                && sa.sa_sigaction != libc::SIG_DFL
            {
                sa.sa_sigaction = libc::SIG_DFL;
                sa.sa_flags = 0;
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
        // Rust ignores SIGPIPE in this process; an ignored signal stays ignored across
        // exec, and `yes | head -1` in a runbook would then fail with EPIPE. std's
        // `Command` gives its children the default, and so does this.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        if libc::setpgid(0, 0) != 0 {
            return fail(a);
        }
        for (to, &from) in a.stdio.iter().enumerate() {
            if libc::dup2(from, to as RawFd) < 0 {
                return fail(a);
            }
        }
        for &fd in &a.plan.keep_fds {
            if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                return fail(a);
            }
        }
        if super::cgroup::join_in_child(&a.plan.cgroups).is_err() {
            return fail(a);
        }
        if let Some(secs) = a.plan.cpu_secs {
            let lim = libc::rlimit {
                rlim_cur: secs,
                rlim_max: secs + 1,
            };
            if libc::setrlimit(libc::RLIMIT_CPU, &lim) != 0 {
                return fail(a);
            }
        }
        if let Some(cwd) = &a.plan.cwd
            && libc::chdir(cwd.as_ptr()) != 0
        {
            return fail(a);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &a.exec_mask, std::ptr::null_mut());
        libc::execve(a.plan.program.as_ptr(), a.argv.as_ptr(), a.envp.as_ptr());
        fail(a)
    }
}

/// How a child's exit is awaited.
enum Exit {
    /// Readable once it has exited.
    Pidfd(AsyncFd<OwnedFd>),
    /// A blocking thread's `waitid(WNOWAIT)`: ends when it has exited, without reaping it,
    /// so its pid stays ours (and safe to signal) until [`Child::wait`] or the drop reaps it.
    Thread(Option<tokio::task::JoinHandle<io::Result<()>>>),
}

/// Starts awaiting the exit of our own unreaped child `pid`: through a pidfd, or a
/// blocking thread where `pidfd_open` is missing (or `pidfd` is false).
fn watch(pid: libc::pid_t, pidfd: bool) -> io::Result<Exit> {
    if pidfd {
        // SAFETY: pidfd_open on our own unreaped child; the result is a new descriptor.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd >= 0 {
            // SAFETY: a descriptor just returned to us, owned by nothing else.
            let pidfd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
            // SAFETY: `pidfd` is an open descriptor that the AsyncFd owns until dropped.
            let exit =
                unsafe { AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) };
            return exit.map(Exit::Pidfd).map_err(|e| e.into_parts().1);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENOSYS) {
            return Err(e);
        }
    }
    Ok(Exit::Thread(Some(tokio::task::spawn_blocking(move || {
        loop {
            // SAFETY: an all-zero siginfo_t is a valid value to fill.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: our own child; WNOWAIT leaves it unreaped.
            let r = unsafe {
                libc::waitid(
                    libc::P_PID,
                    pid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT,
                )
            };
            if r == 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }))))
}

/// Waits for a child that has exited or is about to.
fn reap(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}

/// A started child: its exit is awaited through a pidfd (or a thread); killed and reaped when dropped
/// before it was waited for.
pub struct Child {
    pid: libc::pid_t,
    exit: Exit,
    reaped: bool,
}

impl Child {
    pub fn id(&self) -> u32 {
        self.pid.unsigned_abs()
    }

    /// Its exit status, once it has exited. Cancel-safe.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        if self.reaped {
            return Err(io::Error::other("the child was already waited for"));
        }
        loop {
            let exited = match &mut self.exit {
                Exit::Pidfd(fd) => {
                    fd.readable().await?.clear_ready();
                    false
                }
                Exit::Thread(thread) => {
                    if let Some(handle) = thread.as_mut() {
                        let done = handle.await;
                        *thread = None;
                        done.map_err(io::Error::other)??;
                    }
                    true
                }
            };
            let mut status = 0;
            // SAFETY: our own child, not yet reaped (WNOHANG: never blocks).
            match unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) } {
                0 if !exited => continue,
                0 => return Err(io::Error::other("the child exited but cannot be reaped")),
                -1 => return Err(io::Error::last_os_error()),
                _ => {
                    self.reaped = true;
                    return Ok(ExitStatus::from_raw(status));
                }
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        // SAFETY: our own child, not yet reaped, so its pid cannot have been reused.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        let pid = self.pid;
        // It dies at once; reaping it (a blocking wait) is not for a runtime thread.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(move || reap(pid))),
            Err(_) => reap(pid),
        }
    }
}

#[cfg(test)]
#[path = "spawn_tests.rs"]
mod tests;
