//! `make test-env-start` / `make test-env-stop` without Docker (test-env/local-env.sh):
//! Azurite, an orchestrator on the Azure backend and two standalone worker pools run the
//! example catalog end to end, and stopping leaves no process and no state behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn script(action: &str, dir: &Path, port: u16) -> std::process::Output {
    let bin = common::worker_binary();
    Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-env/local-env.sh"))
        .arg(action)
        .env("CLOUDO_TEST_ENV_DIR", dir)
        .env("CLOUDO_TEST_ENV_PORT", port.to_string())
        .env("CLOUDO_BIN_DIR", bin.parent().unwrap())
        .output()
        .unwrap()
}

/// Running (a zombie waiting for its reaper is not).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(Path::new("/proc").join(pid).join("stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

#[tokio::test]
async fn the_local_environment_runs_the_example_catalog_on_two_pools() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("run");
    let port = common::free_port();
    let out = script("start", &dir, port);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains(&format!(
            "curl 'http://127.0.0.1:{port}/api/Trigger?id=test'"
        )),
        "{said}"
    );
    let pids: Vec<String> = std::fs::read_to_string(dir.join("pids"))
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
        .collect();
    assert_eq!(pids.len(), 4, "azurite, orchestrator, two workers");

    let http = common::client(None);
    let base = format!("http://127.0.0.1:{port}");
    let mut workers = Vec::new();
    for (id, pool) in [("test", "local"), ("test-2", "local"), ("test-3", "python")] {
        let (code, t) = common::answer(http.get(format!("{base}/api/Trigger?id={id}"))).await;
        assert_eq!(code, 202, "{t}");
        let exec = t["exec_id"].as_str().unwrap();
        let (_, e) =
            common::answer(http.get(format!("{base}/api/executions/{exec}?wait=30"))).await;
        assert_eq!(e["status"], "succeeded", "{id}: {e}");
        assert_eq!(e["worker"], pool, "{e}");
        workers.push(e["worker_id"].as_str().unwrap().to_string());
    }
    assert_ne!(workers[0], workers[2], "each pool has its own worker");
    let (_, w): (u16, Value) = common::answer(http.get(format!("{base}/api/workers"))).await;
    assert_eq!(w["pools"].as_array().unwrap().len(), 2, "{w}");

    let out = script("stop", &dir, port);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for pid in &pids {
        assert!(!alive(pid), "process {pid} is still running");
    }
    assert!(!dir.exists(), "state left behind");
}
