//! Starting a real `cloudo serve` for the benchmarks: release binary, temporary data dir,
//! one `noop` schema whose runbook is `exit 0`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A numeric knob from the environment.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The admin key of benchmark servers; clients send it as a bearer token.
pub const ADMIN_KEY: &str = "cloudo_bench_admin_key_0123456789abcdef";

/// A client that authenticates as the admin.
pub fn client(pool: usize) -> reqwest::Client {
    // reqwest is built with rustls and no default crypto provider: the binary installs ring,
    // and so do the test clients.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {ADMIN_KEY}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .pool_max_idle_per_host(pool)
        .default_headers(headers)
        .build()
        .unwrap()
}

#[derive(Debug)]
pub struct Engine {
    child: std::process::Child,
    pub base: String,
    pub dir: tempfile::TempDir,
}

impl Engine {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the engine with `extra` options; `routes` is written to `routes.yaml` and passed
/// with `--routes` when given.
pub fn start(extra: &[&str], routes: Option<&str>) -> Engine {
    start_with_env(extra, routes, &[])
}

/// [`start`] with extra environment variables.
pub fn start_with_env(extra: &[&str], routes: Option<&str>, env: &[(&str, &str)]) -> Engine {
    start_in(tempfile::tempdir().unwrap(), extra, routes, env)
}

/// [`start`] with run folders on tmpfs, as docs/operations.md recommends (`BENCH_TMPDIR` to
/// change; empty for the default temporary folder).
pub fn start_on_tmpfs(extra: &[&str]) -> Engine {
    let tmp = std::env::var("BENCH_TMPDIR").unwrap_or_else(|_| "/dev/shm".into());
    let env: &[(&str, &str)] = if tmp.is_empty() {
        &[]
    } else {
        &[("TMPDIR", tmp.as_str())]
    };
    start_with_env(extra, None, env)
}

/// Starts the engine in `dir` (its data in `dir/data`, which may already hold a store), with
/// the `noop` schema.
pub fn start_in(
    dir: tempfile::TempDir,
    extra: &[&str],
    routes: Option<&str>,
    env: &[(&str, &str)],
) -> Engine {
    std::fs::write(
        dir.path().join("schemas.json"),
        r#"[{"partition_key": "bench", "entity": [{"id": "noop", "runbook": "noop.sh"}]}]"#,
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("runbooks")).unwrap();
    std::fs::write(dir.path().join("runbooks/noop.sh"), "exit 0\n").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloudo"));
    cmd.arg("serve")
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(extra)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--catalog")
        .arg(dir.path().join("schemas.json"))
        .arg("--runbooks")
        .arg(dir.path().join("runbooks"))
        .env("RUST_LOG", "warn,cloudo_orchestrator::commands::serve=info")
        .env("CLOUDO_ADMIN_KEY", ADMIN_KEY)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(routes) = routes {
        std::fs::write(dir.path().join("routes.yaml"), routes).unwrap();
        cmd.arg("--routes").arg(dir.path().join("routes.yaml"));
    }
    let (child, addr) = spawn_serve(&mut cmd);
    Engine {
        child,
        base: format!("http://{addr}"),
        dir,
    }
}

/// Spawns `cmd` (a `cloudo serve` with `--log-format json` and stderr piped); returns it
/// once it logs that it listens, with its address.
pub fn spawn_serve(cmd: &mut Command) -> (std::process::Child, String) {
    let mut child = cmd.spawn().expect("start cloudo");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["message"] == "listening"
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("cloudo listening");
    (child, addr)
}

pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// `GET url` as JSON.
pub async fn get_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

/// A run of schema `id` on the two-request path: `POST /api/Trigger?id=<id>`, then
/// `GET /api/executions/{id}?wait=30` until it ended. Returns the execution.
pub async fn run_two(http: &reqwest::Client, base: &str, id: &str) -> serde_json::Value {
    let res = http
        .post(format!("{base}/api/Trigger?id={id}"))
        .send()
        .await
        .expect("trigger");
    assert_eq!(res.status(), 202);
    let ack: serde_json::Value = res.json().await.unwrap();
    let exec = ack["exec_id"].as_str().unwrap().to_string();
    loop {
        let e = get_json(http, &format!("{base}/api/executions/{exec}?wait=30")).await;
        if !matches!(e["status"].as_str(), Some("accepted" | "running")) {
            return e;
        }
    }
}

/// A run of schema `id` on the one-request path: `POST /api/Trigger?id=<id>&wait=30`,
/// answered when it ended. Returns the execution.
pub async fn run_one(http: &reqwest::Client, base: &str, id: &str) -> serde_json::Value {
    let res = http
        .post(format!("{base}/api/Trigger?id={id}&wait=30"))
        .send()
        .await
        .expect("trigger");
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// One `noop` run on the two-request path, checked; trigger -> done.
pub async fn one_run(http: &reqwest::Client, base: &str) -> Duration {
    let t0 = Instant::now();
    let e = run_two(http, base, "noop").await;
    assert_eq!(e["status"], "succeeded", "{e}");
    t0.elapsed()
}

/// One `noop` run on the one-request path, checked; trigger -> done.
pub async fn one_request(http: &reqwest::Client, base: &str) -> Duration {
    let t0 = Instant::now();
    let e = run_one(http, base, "noop").await;
    assert_eq!(e["status"], "succeeded", "{e}");
    t0.elapsed()
}

pub fn report(label: &str, mut lat: Vec<Duration>, wall: Duration) {
    lat.sort();
    println!(
        "{label:<32} n={:<6} p50={:<10} p99={:<10} max={:<10} runs/s={:.0}",
        lat.len(),
        ms(pct(&lat, 0.50)),
        ms(pct(&lat, 0.99)),
        ms(*lat.last().unwrap()),
        lat.len() as f64 / wall.as_secs_f64()
    );
}

/// The two phases every engine row measures: `n` sequential runs (after `warm` warm-up
/// runs), then `n` runs fired by `clients` concurrent clients; `label` prefixes the rows.
pub async fn phases(
    http: &reqwest::Client,
    base: &str,
    n: usize,
    clients: usize,
    warm: usize,
    label: &str,
) {
    for _ in 0..warm {
        one_run(http, base).await;
    }
    let t = Instant::now();
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        lat.push(one_run(http, base).await);
    }
    report(
        &format!("{label}sequential trigger->done"),
        lat,
        t.elapsed(),
    );

    let t = Instant::now();
    let per_client = n.div_ceil(clients);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (http, base) = (http.clone(), base.to_string());
        set.spawn(async move {
            let mut lat = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                lat.push(one_run(&http, &base).await);
            }
            lat
        });
    }
    let mut lat = Vec::new();
    while let Some(r) = set.join_next().await {
        lat.extend(r.unwrap());
    }
    report(
        &format!("{label}concurrent ({clients} clients)"),
        lat,
        t.elapsed(),
    );
}
