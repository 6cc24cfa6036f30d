//! Limits and recovery of the embedded engine: timeouts kill whole process groups, output
//! floods are capped, concurrent triggers are neither lost nor duplicated, and a server
//! killed with SIGKILL loses nothing it accepted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Env, catalog};

/// True while `pid` is a live process (a zombie counts as dead).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
    }
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let env = Env::new(
        &catalog(&[r#"{"id": "hang", "runbook": "hang.sh", "timeout": 2}"#]),
        &[(
            "hang.sh",
            "sleep 300 &\necho \"bg=$!\"\ntrap '' TERM\nsleep 300\n",
        )],
    )
    .arg("--kill-grace")
    .arg("1");
    let s = env.start();
    let started = std::time::Instant::now();
    let e = s.wait(&s.trigger("hang").await).await;
    assert_eq!(e["status"], "timeout", "{e}");
    assert!(e["error"].as_str().unwrap().contains("2 s timeout"), "{e}");
    assert_eq!(e["signal"], 9, "TERM was ignored, so KILL ended it: {e}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let out = e["output"].as_str().unwrap();
    let pid: u32 = out
        .lines()
        .find_map(|l| l.strip_prefix("bg="))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no bg pid in {out:?}"));
    for _ in 0..50 {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("background grandchild {pid} survived the timeout");
}

#[tokio::test]
async fn leftovers_of_a_finished_runbook_are_killed() {
    let env = Env::new(
        &catalog(&[r#"{"id": "bg", "runbook": "bg.sh"}"#]),
        &[("bg.sh", "sleep 300 &\necho \"bg=$!\"\nexit 0\n")],
    );
    let s = env.start();
    let e = s.wait(&s.trigger("bg").await).await;
    assert_eq!(e["status"], "succeeded", "{e}");
    let pid: u32 = e["output"]
        .as_str()
        .unwrap()
        .trim()
        .strip_prefix("bg=")
        .unwrap()
        .parse()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!alive(pid), "background process {pid} outlived its runbook");
}

#[tokio::test]
async fn an_output_flood_is_capped_and_the_service_stays_healthy() {
    let env = Env::new(
        &catalog(&[r#"{"id": "flood", "runbook": "flood.sh"}"#]),
        &[(
            "flood.sh",
            "echo START\nhead -c 50000000 /dev/zero | tr '\\0' x\necho\necho END\n",
        )],
    );
    let s = env.start();
    let e = s.wait(&s.trigger("flood").await).await;
    assert_eq!(e["status"], "succeeded", "{}", e["error"]);
    assert_eq!(e["output_truncated"], true);
    let out = e["output"].as_str().unwrap();
    assert!(out.len() <= (1 << 20) + 200, "kept {} bytes", out.len());
    assert!(out.starts_with("START\nxxx"), "head kept");
    assert!(out.ends_with("xxx\nEND\n"), "tail kept");
    assert!(out.contains("[cloudo: output truncated:"), "marker present");
    assert!(
        out.contains("50000011 bytes in all"),
        "marker counts every byte"
    );
    assert!(e["error"].as_str().unwrap().contains("output truncated"));
    let (code, _) = s.get("/api/healthz").await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn two_hundred_concurrent_triggers_end_exactly_once_each() {
    let env = Env::new(
        &catalog(&[r#"{"id": "quick", "runbook": "quick.sh"}"#]),
        &[("quick.sh", "echo \"$CLOUDO_EXEC_ID\"\n")],
    );
    let s = std::sync::Arc::new(env.start());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let s = s.clone();
        tasks.spawn(async move { s.trigger("quick").await });
    }
    let mut ids = HashSet::new();
    while let Some(id) = tasks.join_next().await {
        assert!(ids.insert(id.unwrap()), "duplicate exec id");
    }
    assert_eq!(ids.len(), 200);
    for id in &ids {
        let e = s.wait(id).await;
        assert_eq!(e["status"], "succeeded", "{e}");
        assert_eq!(
            e["output"].as_str().unwrap().trim(),
            id,
            "each run saw its own id"
        );
        assert_eq!(
            e["transitions"].as_array().unwrap().len(),
            3,
            "ran once: {e}"
        );
    }
    let (_, all) = s.get("/api/executions?limit=1000").await;
    let listed: HashSet<String> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["exec_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, ids, "exactly the 200 executions, no more");
}

#[tokio::test]
async fn sigkill_mid_run_then_restart_runs_the_queue_and_marks_the_run_lost() {
    let pidfile = std::env::temp_dir().join(format!("cloudo-test-{}.pid", std::process::id()));
    let slow = format!(
        r#"{{"id": "slow", "runbook": "slow.sh", "run_args": "{}"}}"#,
        pidfile.display()
    );
    let env = Env::new(
        &catalog(&[&slow, r#"{"id": "quick", "runbook": "quick.sh"}"#]),
        &[
            ("slow.sh", "sleep 60 &\necho $! > \"$1\"\nwait\n"),
            ("quick.sh", "echo done\n"),
        ],
    )
    .arg("--concurrency")
    .arg("1");
    let mut s = env.start();
    let slow = s.trigger("slow").await;
    s.wait_for_status(&slow, "running").await;
    let mut pid = None;
    for _ in 0..100 {
        if let Some(p) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            pid = Some(p);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid: u32 = pid.expect("the slow runbook wrote its child's pid");
    let mut queued = Vec::new();
    for _ in 0..3 {
        queued.push(s.trigger("quick").await);
    }
    for id in &queued {
        let (_, e) = s.get(&format!("/api/executions/{id}")).await;
        assert_eq!(e["status"], "accepted", "queued behind the slow one");
    }
    s.kill9();
    drop(s);

    assert!(
        alive(pid),
        "the runbook's child outlives a SIGKILLed engine for now"
    );

    let s = env.start();
    let e = s.wait(&slow).await;
    assert_eq!(e["status"], "lost", "{e}");
    for _ in 0..50 {
        if !alive(pid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !alive(pid),
        "leftovers of the interrupted run are killed at start-up"
    );
    let _ = std::fs::remove_file(&pidfile);
    assert!(
        e["error"].as_str().unwrap().contains("engine stopped"),
        "{e}"
    );
    for id in &queued {
        let e = s.wait(id).await;
        assert_eq!(e["status"], "succeeded", "{e}");
        assert_eq!(e["output"], "done\n");
    }
    let (_, all) = s.get("/api/executions?limit=100").await;
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        4,
        "nothing lost, nothing added"
    );
}

#[tokio::test]
async fn sigterm_drains_running_runbooks_before_exit() {
    let env = Env::new(
        &catalog(&[r#"{"id": "short", "runbook": "short.sh"}"#]),
        &[("short.sh", "sleep 1\necho finished\n")],
    );
    let mut s = env.start();
    let id = s.trigger("short").await;
    s.wait_for_status(&id, "running").await;
    let status = s.stop();
    assert!(status.success(), "clean exit: {status:?}");
    drop(s);
    let s = env.start();
    let e = s.wait(&id).await;
    assert_eq!(
        e["status"], "succeeded",
        "the run finished during the drain: {e}"
    );
}

#[tokio::test]
async fn a_second_engine_on_the_same_data_dir_is_refused() {
    let env = Env::new(&catalog(&[r#"{"id": "x", "runbook": "x.sh"}"#]), &[]);
    let _s = env.start();
    let err = env.start_fails();
    assert!(err.contains("in use by another cloudo process"), "{err}");
}

#[tokio::test]
async fn a_job_no_worker_takes_ends_after_the_queue_timeout() {
    // Pool `far-away` has no worker here (the in-process ones serve `default` only).
    let env = Env::new(
        &catalog(&[
            r#"{"id": "stranded", "runbook": "ok.sh", "worker": "far-away"}"#,
            r#"{"id": "ok", "runbook": "ok.sh"}"#,
        ]),
        &[("ok.sh", "echo fine\n")],
    )
    .arg("--worker-pools")
    .arg("default")
    .arg("--queue-timeout")
    .arg("2")
    .arg("--lost-after")
    .arg("6");
    let s = env.start();
    let started = std::time::Instant::now();
    let id = s.trigger("stranded").await;
    let e = s.wait(&id).await;
    assert_eq!(e["status"], "error", "{e}");
    let why = e["error"].as_str().unwrap();
    assert!(why.contains("not started within 2 s"), "{e}");
    assert!(why.contains("pool 'far-away'"), "{e}");
    // Two seconds plus at most one sweep (lost-after / 4 = 1.5 s), with some slack.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        e["started_at"],
        serde_json::Value::Null,
        "it never ran: {e}"
    );
    // Served pools are unaffected.
    assert_eq!(s.wait(&s.trigger("ok").await).await["status"], "succeeded");
}

#[tokio::test]
async fn jobs_that_expired_while_the_engine_was_down_never_run() {
    let mut env = Env::new(
        &catalog(&[r#"{"id": "late", "runbook": "late.sh"}"#]),
        &[("late.sh", "echo ran\n")],
    )
    .arg("--worker-pools")
    .arg("none");
    let mut s = env.start();
    let id = s.trigger("late").await;
    assert!(s.stop().success());
    drop(s);
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Back with workers for its pool, and a queue timeout it has already passed: recovery
    // ends it before any worker can take the job (the periodic reaper alone would race
    // the workers).
    env.extra_args = vec!["--queue-timeout".into(), "2".into()];
    let s = env.start();
    let e = s.wait(&id).await;
    assert_eq!(e["status"], "error", "{e}");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("not started within 2 s"),
        "{e}"
    );
    assert_eq!(e["output"], serde_json::Value::Null, "it never ran: {e}");
    // A fresh one runs.
    assert_eq!(s.wait(&s.trigger("late").await).await["output"], "ran\n");
}

#[tokio::test]
async fn durations_out_of_range_stop_start_up() {
    for (flag, value, needle) in [
        (
            "--dedup-window",
            "1000000000000000",
            "dedup-window must be at most",
        ),
        (
            "--kill-grace",
            "18446744073709551615",
            "kill-grace must be at most",
        ),
        ("--queue-timeout", "0", "queue-timeout must be between"),
        (
            "--queue-timeout",
            "99999999999999999",
            "queue-timeout must be between",
        ),
        ("--lost-after", "5", "lost-after must be between"),
        ("--lost-after", "86401", "lost-after must be between"),
    ] {
        let env = Env::new(&catalog(&[]), &[]).arg(flag).arg(value);
        let err = env.start_fails();
        assert!(err.contains(needle), "{flag} {value}: {err}");
    }
}
