//! Tests of the fork-less spawner (`spawn.rs`).

#![allow(clippy::unwrap_used)]

use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;

use super::*;

fn plan(script: &str) -> Plan {
    let mut cmd = std::process::Command::new("/bin/bash");
    cmd.args(["-c", script])
        .env_clear()
        .env("GREETING", "hello");
    cmd.current_dir("/tmp");
    Plan::from_cleared(&cmd).unwrap()
}

/// Runs `plan` with stdout into a file; returns the exit status and what it printed.
async fn run(plan: &Plan) -> io::Result<(ExitStatus, String)> {
    let mut out = tempfile::tempfile().unwrap();
    let null = std::fs::File::open("/dev/null").unwrap();
    let mut child = spawn(plan, [null.as_raw_fd(), out.as_raw_fd(), null.as_raw_fd()])?;
    let status = child.wait().await?;
    let mut text = String::new();
    out.rewind().unwrap();
    out.read_to_string(&mut text).unwrap();
    Ok((status, text))
}

#[tokio::test]
async fn the_child_gets_its_environment_directory_group_and_kept_descriptor() {
    let mut data = tempfile::tempfile().unwrap();
    data.write_all(b"payload").unwrap();
    data.rewind().unwrap();
    let mut p = plan(&format!(
        "echo $GREETING $(pwd) $(ps -o pgid= -p $$ | tr -d ' ') $$; cat <&{}; exit 3",
        data.as_raw_fd()
    ));
    p.keep_fds = vec![data.as_raw_fd()];
    let (status, out) = run(&p).await.unwrap();
    assert_eq!(status.code(), Some(3), "{out}");
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words[..2], ["hello", "/tmp"], "{out}");
    // Its own process group (the supervisor kills the group as a whole).
    assert_eq!(words[2], words[3], "{out}");
    assert_eq!(words[4], "payload", "{out}");
}

#[tokio::test]
async fn a_descriptor_not_kept_is_closed_in_the_child() {
    let data = tempfile::tempfile().unwrap();
    let p = plan(&format!(
        "cat <&{} 2>/dev/null; echo rc=$?",
        data.as_raw_fd()
    ));
    let (_, out) = run(&p).await.unwrap();
    assert_eq!(
        out.trim(),
        "rc=1",
        "inherited a close-on-exec descriptor: {out}"
    );
}

#[tokio::test]
async fn a_failed_step_is_an_error_not_a_run() {
    let mut p = plan("exit 0");
    p.program = CString::new("/nonexistent/program").unwrap();
    let e = run(&p).await.err().unwrap();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}");
    let mut p = plan("exit 0");
    p.cgroups = vec![CString::new("/nonexistent/cgroup.procs").unwrap()];
    assert!(run(&p).await.is_err());
}

/// As with std's `Command`: SIGPIPE at its default (this process ignores it) and no
/// signal blocked, whatever the spawning thread's mask.
#[tokio::test]
async fn the_child_gets_default_sigpipe_and_an_empty_signal_mask() {
    let p = plan("yes | head -1 >/dev/null; echo ${PIPESTATUS[0]}; grep SigBlk /proc/self/status");
    let (_, out) = run(&p).await.unwrap();
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("141"),
        "yes did not die of SIGPIPE: {out}"
    );
    assert_eq!(
        lines.next().map(|l| l.split_whitespace().last()),
        Some(Some("0000000000000000")),
        "{out}"
    );
}

#[tokio::test]
async fn the_cpu_time_limit_applies_to_the_child() {
    let mut p = plan("ulimit -t");
    p.cpu_secs = Some(7);
    let (status, out) = run(&p).await.unwrap();
    assert!(status.success());
    assert_eq!(out.trim(), "7");
}

/// Where `pidfd_open` is missing (kernels before 5.3, valgrind), the exit is awaited on a
/// thread that leaves the child unreaped until `wait` reaps it.
#[tokio::test]
async fn without_pidfd_the_exit_is_awaited_on_a_thread() {
    let mut out = tempfile::tempfile().unwrap();
    let null = std::fs::File::open("/dev/null").unwrap();
    let p = plan("sleep 0.2; echo done; exit 7");
    let mut child = start(
        &p,
        [null.as_raw_fd(), out.as_raw_fd(), null.as_raw_fd()],
        false,
    )
    .unwrap();
    assert!(matches!(child.exit, Exit::Thread(Some(_))));
    // A wait given up (a deadline) leaves the child to a later wait.
    let early = tokio::time::timeout(std::time::Duration::from_millis(50), child.wait()).await;
    assert!(early.is_err(), "{early:?}");
    assert_eq!(child.wait().await.unwrap().code(), Some(7));
    let mut text = String::new();
    out.rewind().unwrap();
    out.read_to_string(&mut text).unwrap();
    assert_eq!(text, "done\n");
    assert!(
        child.wait().await.is_err(),
        "a second wait is an error, not a panic"
    );

    // Dropped before it exits: killed and reaped.
    let child = start(&plan("sleep 30"), [null.as_raw_fd(); 3], false).unwrap();
    let pid = child.id();
    drop(child);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "{pid} left behind"
    );
}
