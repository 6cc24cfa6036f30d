//! `make bench`, side by side with adnanh/webhook (Debian's `webhook`): the common choice for
//! "an HTTP call runs a script". Same script (`echo "ok $1"`), same client (this one, reqwest),
//! same machine, interleaved rounds against drift:
//!
//! - webhook: `GET /hooks/bench?n=<i>` runs the script with the URL's `n` as its argument and
//!   answers its output (`include-command-output-in-response`); it keeps nothing.
//! - cloudo, two requests: `POST /api/Trigger?id=bench`, then
//!   `GET /api/executions/{id}?wait=30` until it ended.
//! - cloudo, one request: `POST /api/Trigger?id=bench&wait=30`, answered when it ended.
//!
//! cloudo runs the process sandbox (webhook's isolation: none) with `--ingest-rate 0`, and
//! keeps every execution, its transitions and output durable (SQLite). Every run is checked:
//! succeeded, with the script's output. Figures go to stdout and to
//! `target/bench/webhook.json`.
//!
//! Knobs: `BENCH_N` (runs per phase, default 500), `BENCH_ROUNDS` (default 3),
//! `BENCH_CLIENTS` (default `16,64`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mod.rs"]
mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{env_or, ms, pct};
use serde_json::json;

const SCRIPT: &str = "#!/usr/bin/env bash\necho \"ok $1\"\n";

struct Webhook {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_webhook() -> Webhook {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bench.sh");
    std::fs::write(&script, SCRIPT).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let hooks = json!([{
        "id": "bench",
        "execute-command": script,
        "include-command-output-in-response": true,
        "pass-arguments-to-command": [{"source": "url", "name": "n"}],
    }]);
    std::fs::write(dir.path().join("hooks.json"), hooks.to_string()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let child = Command::new("webhook")
        .arg("-hooks")
        .arg(dir.path().join("hooks.json"))
        .args(["-ip", "127.0.0.1", "-port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("webhook (Debian package `webhook`; test-env/setup-bench.sh installs it)");
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Webhook {
        child,
        base,
        _dir: dir,
    }
}

/// cloudo with the schema `bench` (the same script, its argument from `run_args`), put in
/// its catalog through the API.
async fn start_cloudo(http: &reqwest::Client) -> common::Engine {
    let engine = common::start_on_tmpfs(&[
        "--sandbox",
        "process",
        "--ingest-rate",
        "0",
        "--kill-grace",
        "1",
    ]);
    let runbooks = engine.dir.path().join("runbooks");
    std::fs::write(runbooks.join("bench.sh"), SCRIPT).unwrap();
    let catalog = r#"[{"partition_key": "bench", "entity": [
        {"id": "bench", "runbook": "bench.sh", "run_args": "cloudo"}]}]"#;
    let res = http
        .put(format!("{}/api/schemas", engine.base))
        .header("content-type", "application/json")
        .body(catalog)
        .send()
        .await
        .unwrap();
    assert!(
        res.status().is_success(),
        "{}",
        res.text().await.unwrap_or_default()
    );
    engine
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Path {
    Webhook,
    CloudoTwo,
    CloudoOne,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Webhook => "webhook",
            Path::CloudoTwo => "cloudo (trigger, then wait)",
            Path::CloudoOne => "cloudo (one request, ?wait=)",
        }
    }
}

/// One run on `path`, checked; its latency.
async fn run(http: &reqwest::Client, path: Path, base: &str, i: usize) -> Duration {
    let t = Instant::now();
    match path {
        Path::Webhook => {
            let res = http
                .get(format!("{base}/hooks/bench?n={i}"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let text = res.text().await.unwrap();
            assert_eq!(text.trim(), format!("ok {i}"), "webhook's output");
        }
        Path::CloudoTwo | Path::CloudoOne => {
            let e = if path == Path::CloudoTwo {
                common::run_two(http, base, "bench").await
            } else {
                common::run_one(http, base, "bench").await
            };
            assert_eq!(e["status"], "succeeded", "{e}");
            assert_eq!(e["output"], "ok cloudo\n", "{e}");
        }
    }
    t.elapsed()
}

/// `n` runs by `clients` concurrent clients (1: sequential): latencies and runs/s.
async fn phase(
    http: &reqwest::Client,
    path: Path,
    base: &str,
    n: usize,
    clients: usize,
) -> (Vec<Duration>, f64) {
    let t = Instant::now();
    let per = n.div_ceil(clients);
    let mut set = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (http, base) = (http.clone(), base.to_string());
        set.spawn(async move {
            let mut lat = Vec::with_capacity(per);
            for k in 0..per {
                lat.push(run(&http, path, &base, c * per + k).await);
            }
            lat
        });
    }
    let mut lat = Vec::new();
    while let Some(r) = set.join_next().await {
        lat.extend(r.unwrap());
    }
    let rate = lat.len() as f64 / t.elapsed().as_secs_f64();
    lat.sort();
    (lat, rate)
}

fn main() {
    let n = env_or("BENCH_N", 500);
    let rounds = env_or("BENCH_ROUNDS", 3);
    let clients: Vec<usize> = std::env::var("BENCH_CLIENTS")
        .unwrap_or_else(|_| "16,64".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let webhook = start_webhook();
    let http = common::client(128);
    let cloudo = rt.block_on(start_cloudo(&http));
    let paths = [Path::Webhook, Path::CloudoTwo, Path::CloudoOne];
    let base = |p: Path| match p {
        Path::Webhook => webhook.base.clone(),
        _ => cloudo.base.clone(),
    };
    // Warm-up, then interleaved rounds: every path in each round, in turn.
    rt.block_on(async {
        for p in paths {
            phase(&http, p, &base(p), 20, 1).await;
        }
    });
    let mut rows = Vec::new();
    for round in 0..rounds {
        for c in std::iter::once(1).chain(clients.iter().copied()) {
            for p in paths {
                let (lat, rate) = rt.block_on(phase(&http, p, &base(p), n, c));
                let (p50, p99) = (pct(&lat, 0.5), pct(&lat, 0.99));
                println!(
                    "round {round} {:<30} clients={c:<3} n={:<5} p50={:<10} p99={:<10} runs/s={rate:.0}",
                    p.name(),
                    lat.len(),
                    ms(p50),
                    ms(p99)
                );
                rows.push(json!({
                    "round": round, "path": p.name(), "clients": c, "n": lat.len(),
                    "p50_ms": p50.as_secs_f64() * 1e3, "p99_ms": p99.as_secs_f64() * 1e3,
                    "runs_per_s": rate,
                }));
            }
        }
    }
    println!("\nmedians over {rounds} rounds (ratio: cloudo / webhook)");
    let median = |path: &str, c: usize, key: &str| {
        let mut v: Vec<f64> = rows
            .iter()
            .filter(|r| r["path"] == path && r["clients"] == c)
            .filter_map(|r| r[key].as_f64())
            .collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut summary = Vec::new();
    for c in std::iter::once(1).chain(clients.iter().copied()) {
        let (w50, wrate) = (
            median(Path::Webhook.name(), c, "p50_ms"),
            median(Path::Webhook.name(), c, "runs_per_s"),
        );
        for p in paths {
            let (p50, rate) = (
                median(p.name(), c, "p50_ms"),
                median(p.name(), c, "runs_per_s"),
            );
            println!(
                "{:<30} clients={c:<3} p50={p50:.2} ms (x{:.2})  runs/s={rate:.0} (x{:.2})",
                p.name(),
                p50 / w50,
                rate / wrate
            );
            summary.push(json!({"path": p.name(), "clients": c, "p50_ms": p50,
                "p50_ratio": p50 / w50, "runs_per_s": rate, "rate_ratio": rate / wrate}));
        }
    }
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&out).unwrap();
    let doc = json!({"n": n, "rounds": rounds, "rows": rows, "summary": summary});
    std::fs::write(
        out.join("webhook.json"),
        serde_json::to_string_pretty(&doc).unwrap(),
    )
    .unwrap();
}
