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

/// Latencies of `runs` executions of a command: the raw cost of a sandbox. `payload`, if
/// any, is rewound before each run (bwrap copies it into the sandbox from its descriptor,
/// as the engine's runs do).
fn raw(cmd: &[String], runs: usize, payload: Option<&std::fs::File>) -> Vec<Duration> {
    use std::io::Seek;
    (0..runs)
        .map(|_| {
            if let Some(mut f) = payload {
                f.rewind().unwrap();
            }
            let t = Instant::now();
            let ok = Command::new(&cmd[0])
                .args(&cmd[1..])
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .envs(std::env::vars().filter(|(k, _)| k == "DOCKER_HOST" || k == "HOME"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "raw command failed: {cmd:?}");
            t.elapsed()
        })
        .collect()
}

/// The run of `script` the engine's runs amount to (no payload, default limits).
fn spec(script: &std::path::Path, i: usize) -> cloudo_worker::RunSpec {
    cloudo_worker::RunSpec {
        exec_id: format!("00000000-0000-4000-8000-{i:012}"),
        runbook: script.to_path_buf(),
        args: Vec::new(),
        env: [("PATH".to_string(), "/usr/bin:/bin".to_string())].into(),
        timeout: Duration::from_secs(60),
        output_cap: 1 << 20,
        network: false,
        limits: cloudo_worker::ResolvedLimits {
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
    }
}

/// The sandbox alone, driven in process through the worker crate: what the engine adds on
/// top of it is its own overhead.
fn sandbox_alone(rt: &tokio::runtime::Runtime, sandbox: &str) -> Box<dyn cloudo_worker::Sandbox> {
    use cloudo_worker::sandbox::bwrap::BwrapSandbox;
    use cloudo_worker::sandbox::docker::DockerSandbox;
    use cloudo_worker::sandbox::process::ProcessSandbox;
    let grace = Duration::from_secs(1);
    match sandbox {
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
    }
}

/// Latencies of `n` runs of `script` through `sb` alone.
fn direct(
    rt: &tokio::runtime::Runtime,
    sb: &dyn cloudo_worker::Sandbox,
    script: &std::path::Path,
    n: usize,
) -> Vec<Duration> {
    (0..n)
        .map(|i| {
            let spec = spec(script, i);
            let t = Instant::now();
            let out = rt.block_on(sb.run(spec)).expect("sandbox run");
            assert_eq!(out.exit_code, Some(0));
            t.elapsed()
        })
        .collect()
}

/// `f`'s descriptor, inherited by the commands this process starts (as the engine's
/// payload descriptor is by bwrap).
#[allow(unsafe_code)]
fn payload_fd(f: &std::fs::File) -> std::os::fd::RawFd {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let mut w = f;
    w.write_all(b"{}").unwrap();
    // SAFETY: clears close-on-exec on a descriptor this process owns.
    assert_eq!(unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETFD, 0) }, 0);
    f.as_raw_fd()
}

/// Rounds the per-sandbox rows are interleaved in.
const ROUNDS: usize = 5;

/// Per-sandbox rows: engine trigger->done next to the raw spawn cost of the same sandbox.
fn sandbox_rows(rt: &tokio::runtime::Runtime, http: &reqwest::Client, sandboxes: &str) {
    let image = std::env::var("CLOUDO_TEST_IMAGE").unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("noop.sh"), "exit 0\n").unwrap();
    // Readable by the sandbox's user, so that bwrap binds it as it is (as the engine's).
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let script = dir.path().join("noop.sh").display().to_string();
    let payload = tempfile::tempfile().unwrap();
    println!(
        "\nper sandbox: engine trigger->done (one request, ?wait=) vs raw spawn of the same \
         sandbox (sequential)"
    );
    let mut rows = Vec::new();
    for sandbox in sandboxes.split(',').filter(|s| !s.is_empty()) {
        let n: usize = if sandbox == "docker" { 200 } else { 300 };
        let raw_cmd: Vec<String> = match sandbox {
            "process" => vec!["bash".into(), script.clone()],
            // The exact command line of the engine's runs (as root: through setpriv),
            // with a payload to copy in, as theirs have.
            "bwrap" => cloudo_worker::sandbox::bwrap::BwrapSandbox::detect(Duration::from_secs(1))
                .expect("bwrap")
                .command_line(&spec(&dir.path().join("noop.sh"), 0), payload_fd(&payload))
                .expect("bwrap command line")
                .into_iter()
                .map(|a| a.to_string_lossy().into_owned())
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
        let sb = sandbox_alone(rt, sandbox);
        let engine = start("normal", sandbox);
        let base = engine.base.clone();
        // Interleaved rounds of the three (the machine drifts by ±15 % from one minute to
        // the next, more than what is compared here).
        let (mut raws, mut alone, mut lat) = (Vec::new(), Vec::new(), Vec::new());
        rt.block_on(async {
            for _ in 0..3 {
                common::one_request(http, &base).await;
            }
        });
        for _ in 0..ROUNDS {
            let k = n.div_ceil(ROUNDS);
            raws.extend(raw(&raw_cmd, k, (sandbox == "bwrap").then_some(&payload)));
            alone.extend(direct(rt, &*sb, &dir.path().join("noop.sh"), k));
            // The one-request path (`?wait=`): one HTTP exchange per run, as a script
            // calls it.
            rt.block_on(async {
                for _ in 0..k {
                    lat.push(common::one_request(http, &base).await);
                }
            });
        }
        for v in [&mut raws, &mut alone, &mut lat] {
            v.sort();
        }
        let (raw50, raw99, direct50) = (pct(&raws, 0.5), pct(&raws, 0.99), pct(&alone, 0.5));
        let n = lat.len();
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
