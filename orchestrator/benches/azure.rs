//! `make bench`, Azure row: one orchestrator and two standalone workers on Azure Storage
//! (Azurite on loopback, started by `test-env/with-azurite.sh`), driven over HTTP like the
//! embedded benchmark: trigger -> done for sequential runs and for concurrent clients.
//!
//! Knobs: `BENCH_AZURE_N` (default 300), `BENCH_CLIENTS` (default 32).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::env_or;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let cs = std::env::var("CLOUDO_TEST_AZURE_CONNECTION_STRING")
        .expect("run through test-env/with-azurite.sh (make bench does)");
    let n = env_or("BENCH_AZURE_N", 300);
    let clients = env_or("BENCH_CLIENTS", 32);
    let prefix = format!("bench{}", std::process::id());
    let env = [
        ("CLOUDO_AZURE_STORAGE_CONNECTION_STRING", cs.as_str()),
        ("CLOUDO_AZURE_PREFIX", prefix.as_str()),
    ];
    let engine = common::start_with_env(
        &[
            "--backend",
            "azure",
            "--worker-pools",
            "none",
            "--ingest-rate",
            "0",
        ],
        None,
        &env,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = common::client(clients * 2);
    let key = rt.block_on(async {
        let res = http
            .post(format!("{}/api/keys", engine.base))
            .json(&serde_json::json!({"name": "bench-worker", "role": "worker", "pool": "default"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let body: serde_json::Value = res.json().await.unwrap();
        body["key"].as_str().unwrap().to_string()
    });
    let runbooks = engine.dir.path().join("runbooks");
    let workers: Vec<Kill> = (0..2)
        .map(|i| {
            let data = engine.dir.path().join(format!("worker-{i}"));
            Kill(
                Command::new(
                    Path::new(env!("CARGO_BIN_EXE_cloudo")).with_file_name("cloudo-worker"),
                )
                .args(["--pool", "default", "--orchestrator", &engine.base])
                .args([
                    "--backend",
                    "azure",
                    "--sandbox",
                    "process",
                    "--concurrency",
                    "8",
                ])
                .arg("--runbooks")
                .arg(&runbooks)
                .arg("--data-dir")
                .arg(data)
                .envs(env)
                .env("CLOUDO_WORKER_KEY", &key)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start cloudo-worker"),
            )
        })
        .collect();
    println!(
        "azure backend (Azurite on loopback, 1 orchestrator, 2 workers x 8 slots, sandbox=process, runbook `exit 0`), {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    rt.block_on(common::phases(
        &http,
        &engine.base,
        n,
        clients,
        10,
        "azure ",
    ));
    drop(workers);
}
