//! Crash and restart of the embedded engine under load: kill -9, and a full disk.

use std::path::PathBuf;
use std::time::Duration;

use crate::common::{ADMIN_KEY, Env, Server, catalog, folders, free_port, processes_with};
use crate::load::{self, Tally};
use crate::report::{Row, pick};

/// A runbook that takes a moment, so kills land mid-run.
const WORK: &str = "echo \"run $CLOUDO_EXEC_ID\"\nsleep 0.0$((RANDOM % 10))\necho done\n";

/// Between two requests of one sender: 8 senders make about 100 requests a second, which
/// the engine runs as they come (a backlog would only measure the drain).
pub const PACE: Duration = Duration::from_millis(80);

/// An engine with `entities` and `runbooks`, no ingest rate, its runs' folders in the test's
/// own `tmp` (where [`leftovers`] looks).
pub fn prepared(entities: &[&str], runbooks: &[(&str, &str)]) -> Env {
    let env = Env::new(&catalog(entities), runbooks);
    let tmp = env.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    env.env("TMPDIR", tmp.to_str().unwrap())
        .arg("--ingest-rate")
        .arg("0")
}

/// The embedded engine with the `work` schema on a fixed address (kept across restarts).
pub fn engine() -> (Env, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let env = prepared(
        &[r#"{"id": "work", "runbook": "work.sh", "timeout": 30}"#],
        &[("work.sh", WORK)],
    )
    .arg("--listen")
    .arg(&addr);
    (env, format!("http://{addr}"))
}

/// What the servers with `pids` left once the last one stopped: runbook processes, run and
/// staging folders, cgroups, and jobs still in the queue (leased or not).
pub fn leftovers(env: &Env, pids: &[u32]) -> (usize, String) {
    let mark = env.path().to_string_lossy().into_owned();
    let procs = processes_with(&mark);
    let tmp = env.path().join("tmp");
    let dirs = folders(&tmp, "cloudo-run-").len() + folders(&tmp, "cloudo-stage-").len();
    let groups: usize = ["pids", "memory", "cpu"]
        .iter()
        .flat_map(|c| folders(&PathBuf::from("/sys/fs/cgroup").join(c).join("cloudo"), ""))
        .filter(|n| pids.iter().any(|p| n.contains(&format!("-{p}n"))))
        .count();
    // Jobs still queued in the embedded store (on Azure, the caller reads the queue).
    let db = env.path().join("data/cloudo.db");
    let jobs: usize = if db.exists() {
        crate::common::python(
            "import sqlite3,sys; c=sqlite3.connect(sys.stdin.read().strip()); \
             print(c.execute('select count(*) from queue_messages').fetchone()[0])",
            db.to_string_lossy().as_bytes(),
        )
        .trim()
        .parse()
        .unwrap()
    } else {
        0
    };
    (
        procs + dirs + groups + jobs,
        format!("{procs} processes, {dirs} run folders, {groups} cgroups, {jobs} jobs"),
    )
}

/// The admin key in a server's log.
pub fn secrets_in(s: &Server) -> usize {
    s.logs().matches(ADMIN_KEY).count()
}

/// Fills the row's counts from what was sent and what is stored.
pub async fn settle(row: &mut Row, s: &Server, t: &Tally) {
    let f = load::drain(s, Duration::from_secs(pick(90, 180)), true).await;
    let (lost, duplicated, found) = load::compare(t, &f);
    row.accepted = t.accepted.len();
    row.found = found;
    row.lost = lost;
    row.duplicated = duplicated;
    row.stuck = f.stuck.len();
    row.violations += t.no_retry_after + t.unexpected;
    // What the store says of each execution a lost request was answered with.
    let mut lost_detail = Vec::new();
    for (key, ids) in load::missing(t, &f).into_iter().take(5) {
        for id in ids {
            let (code, e) = s.get(&format!("/api/executions/{id}")).await;
            lost_detail.push(format!("{key} -> {id}: {code} {}", e["status"]));
        }
    }
    row.notes = format!(
        "{} executions stored {:?}; {} answers 503, {} without Retry-After; {} connections cut; {} unanswered at the end; {} other errors{}",
        f.all,
        f.statuses,
        t.unavailable,
        t.no_retry_after,
        t.cut,
        t.unanswered,
        t.unexpected,
        t.example
            .as_ref()
            .map(|e| format!(" (e.g. {e})"))
            .unwrap_or_default()
    );
    if !t.unnamed.is_empty() {
        row.notes = format!("{}; 2xx naming no execution: {:?}", row.notes, t.unnamed);
    }
    if !lost_detail.is_empty() {
        row.notes = format!("{}; lost: {lost_detail:?}", row.notes);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_the_embedded_engine_under_load() {
    let _serial = crate::report::serial().await;
    let (env, base) = engine();
    let kills = pick(2, 8);
    let clients = pick(8, 16);
    let mut s = env.start();
    let mut pids = vec![s.child.id()];
    let mut secrets = secrets_in(&s);
    let load = load::start(&[base], "work", clients, PACE);
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(pick(1500, 4000))).await;
        s.kill9();
        secrets += secrets_in(&s);
        s = env.start();
        pids.push(s.child.id());
    }
    tokio::time::sleep(Duration::from_millis(pick(1000, 3000))).await;
    let secs = load.started.elapsed().as_secs_f64();
    let t = load.stop().await;

    let mut row = Row::new("kill9-embedded");
    row.load = format!("{clients} clients, manual triggers and Azure alerts, {secs:.0} s");
    row.faults = format!("kill -9 of `cloudo serve` {kills} times, restarted on the same data");
    settle(&mut row, &s, &t).await;
    s.stop();
    secrets += secrets_in(&s);
    let (left, what) = leftovers(&env, &pids);
    row.leftovers = left;
    row.secrets = secrets;
    row.notes = format!("{}; left: {what}", row.notes);
    row.finish();
}
