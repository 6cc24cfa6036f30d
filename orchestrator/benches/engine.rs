//! `make bench`: the embedded engine under load, through its real HTTP interface.
//!
//! Starts the release `cloudo serve` on a temporary data dir with an `exit 0` runbook, then
//! measures trigger -> done (client side: from sending the trigger to the answer of
//! `GET /api/executions/{id}?wait=` once terminal) for N sequential runs, and N runs fired
//! by many concurrent clients (completed runs/s over the whole batch). Every execution and
//! its output is persisted as in production (SQLite, WAL).
//!
//! Knobs: `BENCH_N` (default 1000), `BENCH_CLIENTS` (default 64), `BENCH_SYNC` (`normal` or
//! `full`), `BENCH_SANDBOXES` (default `process,bwrap,docker`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mod.rs"]
mod common;

use common::{Engine, env_or, ms, pct};

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn start(sync: &str, sandbox: &str) -> Engine {
    let image =
        std::env::var("CLOUDO_TEST_IMAGE").unwrap_or_else(|_| "cloudo-runbook:latest".into());
    common::start_on_tmpfs(&[
        "--sqlite-sync",
        sync,
        "--sandbox",
        sandbox,
        "--kill-grace",
        "1",
        "--sandbox-image",
        &image,
        "--ingest-rate",
        "0",
    ])
}

/// p50 and p99 of `runs` executions of a command: the raw cost of a sandbox.
fn raw(cmd: &[&str], runs: usize) -> (Duration, Duration) {
    let mut lat: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let ok = Command::new(cmd[0])
                .args(&cmd[1..])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "raw command failed: {cmd:?}");
            t.elapsed()
        })
        .collect();
    lat.sort();
    (pct(&lat, 0.5), pct(&lat, 0.99))
}

/// The sandbox alone, driven in process through the worker crate: what the engine adds on
/// top of it is its own overhead.
fn direct(
    rt: &tokio::runtime::Runtime,
    sandbox: &str,
    script: &std::path::Path,
    n: usize,
) -> (Duration, Duration) {
    use cloudo_worker::sandbox::bwrap::BwrapSandbox;
    use cloudo_worker::sandbox::docker::DockerSandbox;
    use cloudo_worker::sandbox::process::ProcessSandbox;
    use cloudo_worker::{ResolvedLimits, RunSpec, Sandbox};
    let grace = Duration::from_secs(1);
    let sb: Box<dyn Sandbox> = match sandbox {
        "process" => Box::new(ProcessSandbox::new(grace)),
        "bwrap" => Box::new(BwrapSandbox::detect(grace).expect("bwrap")),
        _ => Box::new(
            rt.block_on(DockerSandbox::connect(
                &std::env::var("CLOUDO_TEST_IMAGE").unwrap_or_default(),
                false,
                None,
            ))
            .expect("docker"),
        ),
    };
    let mut lat: Vec<Duration> = (0..n)
        .map(|i| {
            let spec = RunSpec {
                exec_id: format!("00000000-0000-4000-8000-{i:012}"),
                runbook: script.to_path_buf(),
                args: Vec::new(),
                env: [("PATH".to_string(), "/usr/bin:/bin".to_string())].into(),
                timeout: Duration::from_secs(60),
                output_cap: 1 << 20,
                network: false,
                limits: ResolvedLimits {
                    memory_mb: 512,
                    pids: 256,
                    cpu: 1.0,
                },
                image: None,
                live: None,
                secrets: Default::default(),
                payload: None,
                cancel: Default::default(),
                files: Vec::new(),
                broker: None,
            };
            let t = Instant::now();
            let out = rt.block_on(sb.run(spec)).expect("sandbox run");
            assert_eq!(out.exit_code, Some(0));
            t.elapsed()
        })
        .collect();
    lat.sort();
    (pct(&lat, 0.5), pct(&lat, 0.99))
}

/// Per-sandbox rows: engine trigger->done next to the raw spawn cost of the same sandbox.
fn sandbox_rows(rt: &tokio::runtime::Runtime, http: &reqwest::Client, sandboxes: &str) {
    let image = std::env::var("CLOUDO_TEST_IMAGE").unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("noop.sh"), "exit 0\n").unwrap();
    let script = dir.path().join("noop.sh").display().to_string();
    println!(
        "\nper sandbox: engine trigger->done (one request, ?wait=) vs raw spawn of the same \
         sandbox (sequential)"
    );
    let mut rows = Vec::new();
    for sandbox in sandboxes.split(',').filter(|s| !s.is_empty()) {
        let n = if sandbox == "docker" { 40 } else { 200 };
        let raw_cmd: Vec<String> = match sandbox {
            "process" => vec!["bash".into(), script.clone()],
            // The same invocation the bwrap sandbox makes (as root: through setpriv).
            "bwrap" => "setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all -- \
                bwrap --unshare-all --die-with-parent --new-session --uid 65534 --gid 65534 \
                --hostname runbook --ro-bind /usr /usr --symlink usr/bin /bin \
                --symlink usr/sbin /sbin --symlink usr/lib /lib --symlink usr/lib64 /lib64 \
                --ro-bind-try /etc/passwd /etc/passwd --ro-bind-try /etc/group /etc/group \
                --ro-bind-try /etc/nsswitch.conf /etc/nsswitch.conf \
                --ro-bind-try /etc/ld.so.cache /etc/ld.so.cache --ro-bind-try /etc/ssl /etc/ssl \
                --proc /proc --dev /dev --tmpfs /tmp --chdir /tmp --clearenv \
                --cap-drop ALL --remount-ro / -- /usr/bin/bash -c true"
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            "docker" => vec![
                "docker".into(),
                "run".into(),
                "--rm".into(),
                "--network".into(),
                "none".into(),
                "--read-only".into(),
                "--init".into(),
                image.clone(),
                "bash".into(),
                "-c".into(),
                "true".into(),
            ],
            other => panic!("unknown sandbox {other}"),
        };
        let refs: Vec<&str> = raw_cmd.iter().map(String::as_str).collect();
        let (raw50, raw99) = raw(&refs, n);
        let (direct50, _) = direct(rt, sandbox, &dir.path().join("noop.sh"), n);
        let engine = start("normal", sandbox);
        let base = engine.base.clone();
        // The one-request path (`?wait=`): one HTTP exchange per run, as a script calls it.
        let mut lat = rt.block_on(async {
            for _ in 0..3 {
                common::one_request(http, &base).await;
            }
            let mut lat = Vec::with_capacity(n);
            for _ in 0..n {
                lat.push(common::one_request(http, &base).await);
            }
            lat
        });
        lat.sort();
        let (e50, e99) = (pct(&lat, 0.5), pct(&lat, 0.99));
        println!(
            "{sandbox:<8} n={n:<4} engine p50={:<10} p99={:<10} raw p50={:<10} p99={:<10} sandbox.run p50={:<10} overhead vs raw={:<10} engine overhead vs sandbox.run={}",
            ms(e50),
            ms(e99),
            ms(raw50),
            ms(raw99),
            ms(direct50),
            ms(e50.saturating_sub(raw50)),
            ms(e50.saturating_sub(direct50)),
        );
        let f = |d: Duration| d.as_secs_f64() * 1000.0;
        rows.push(serde_json::json!({"sandbox": sandbox, "runs": n,
            "engine_p50_ms": f(e50), "engine_p99_ms": f(e99), "raw_p50_ms": f(raw50),
            "sandbox_run_p50_ms": f(direct50), "overhead_vs_raw_ms": f(e50) - f(raw50),
            "overhead_vs_sandbox_run_ms": f(e50) - f(direct50)}));
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("sandboxes.json"),
        serde_json::to_string_pretty(&serde_json::json!({"rows": rows})).unwrap(),
    );
}

fn main() {
    let n = env_or("BENCH_N", 1000);
    let clients = env_or("BENCH_CLIENTS", 64);
    let sync = std::env::var("BENCH_SYNC").unwrap_or_else(|_| "normal".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = start(&sync, "process");
    let base = engine.base.clone();
    let http = common::client(clients * 2);
    println!(
        "embedded engine (sqlite sync={sync}, sandbox=process, runbook `exit 0`), {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    rt.block_on(common::phases(&http, &base, n, clients, 20, ""));
    drop(engine);
    let sandboxes =
        std::env::var("BENCH_SANDBOXES").unwrap_or_else(|_| "process,bwrap,docker".into());
    sandbox_rows(&rt, &http, &sandboxes);
}
