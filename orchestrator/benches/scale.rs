//! `make bench`: listing, filtering and look-up with many executions stored, and the start-up
//! time and memory of `cloudo serve` on such a store.
//!
//! For each size in `BENCH_SCALE` (default `1000,100000,1000000`) a fresh SQLite store is
//! seeded through the store adapter itself (30 days of history: 10 schemas, alerts, manual
//! and scheduled runs, the usual mix of outcomes), then the release `cloudo serve` starts on
//! it and every filter of `GET /api/executions`, a look-up, the status page and ClouDO's
//! day search are timed over HTTP (`BENCH_REPEAT` times each, default 40). Targets (issue
//! 20): every one under 10 ms at the largest size and within ×2 of the smallest; start-up
//! to ready under 200 ms; idle RSS under 20 MB. Figures go to stdout and
//! `target/bench/scale.json`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudo_core::store::{Batch, ExecutionStore, NewExecution};
use cloudo_core::{ExecId, Execution, Status, StatusChange, time};
use serde_json::{Value, json};

/// Seeds `n` executions, oldest first over the last 30 days; returns a few ids to look up.
async fn seed(data: &std::path::Path, n: usize) -> Vec<ExecId> {
    std::fs::create_dir_all(data).unwrap();
    let db = cloudo_sqlite::Db::open(&data.join("cloudo.db"), cloudo_sqlite::Durability::Process)
        .unwrap();
    let store = Arc::new(cloudo_sqlite::SqliteStore::new(db));
    let template = cloudo_core::conformance::new_execution("s0", Status::Succeeded);
    let now = time::now();
    let span = chrono::Duration::days(30);
    let step = span.num_milliseconds() / n.max(1) as i64;
    let mut sample = Vec::new();
    let mut batch = Vec::new();
    let mut ends = Vec::new();
    for i in 0..n {
        let mut e: Execution = template.clone();
        e.exec_id = ExecId::generate();
        // "rare": twenty executions at every size, spread over the whole history.
        e.schema_id = if i % (n / 20).max(1) == 7 {
            "rare".into()
        } else {
            format!("s{}", i % 10)
        };
        e.name = e.schema_id.clone();
        // Created as they are (accepted, or skipped/routed by routing), then moved on.
        let end = match i % 200 {
            0..=11 => Status::Failed,
            12..=15 => Status::Error,
            16 => Status::Timeout,
            17 => Status::Skipped,
            18 => Status::Routed,
            _ => Status::Succeeded,
        };
        e.status = match end {
            Status::Skipped | Status::Routed => end,
            _ => Status::Accepted,
        };
        if e.status == Status::Accepted {
            ends.push((e.exec_id.clone(), end));
        }
        e.initiator = match i % 10 {
            0..=5 => "alert".into(),
            6..=8 => "manual".into(),
            _ => "schedule:nightly".into(),
        };
        e.requested_at = now - span + chrono::Duration::milliseconds(step * i as i64);
        e.partition_key = time::partition_key(e.requested_at);
        e.finished_at = None;
        if i % (n / 8).max(1) == 0 {
            sample.push(e.exec_id.clone());
        }
        batch.push(Batch {
            executions: vec![NewExecution {
                execution: e,
                reason: None,
            }],
            dedup: None,
        });
        if batch.len() == 5000 || i + 1 == n {
            store
                .create_batches(&std::mem::take(&mut batch), None)
                .await
                .unwrap();
            finish(&store, std::mem::take(&mut ends)).await;
        }
    }
    sample
}

/// Runs and ends `ends` through the store's checked transitions, many at a time (the
/// writer commits them in groups).
async fn finish(store: &Arc<cloudo_sqlite::SqliteStore>, ends: Vec<(ExecId, Status)>) {
    let mut set = tokio::task::JoinSet::new();
    for chunk in ends.chunks(ends.len().div_ceil(64).max(1)) {
        let (store, chunk) = (store.clone(), chunk.to_vec());
        set.spawn(async move {
            for (id, end) in chunk {
                let at = time::now();
                if end != Status::Error {
                    store
                        .transition(&id, &StatusChange::to(Status::Running), at)
                        .await
                        .unwrap();
                }
                let mut change = StatusChange::to(end);
                change.exit_code = Some(i32::from(end != Status::Succeeded));
                change.output = Some("done\n".into());
                store.transition(&id, &change, at).await.unwrap();
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
}

/// Starts `cloudo serve` on `dir/data`; returns it and the time from spawn to ready.
fn serve(dir: tempfile::TempDir) -> (common::Engine, Duration) {
    let t = Instant::now();
    let engine = common::start_in(dir, &[], None, &[]);
    let addr = engine.base.trim_start_matches("http://").to_string();
    // Ready: the readiness probe answers 200.
    loop {
        let ok = std::net::TcpStream::connect(&addr).is_ok_and(|mut s| {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /api/readyz HTTP/1.0\r\n\r\n");
            let mut buf = [0u8; 12];
            s.read_exact(&mut buf).is_ok() && &buf[9..12] == b"200"
        });
        if ok {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "never ready");
        std::thread::sleep(Duration::from_millis(2));
    }
    (engine, t.elapsed())
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The requests timed at every size: a name and a path. Each fills its page (20) at every
/// size, but for the three that find (almost) nothing by design, so the sizes compare.
fn requests(base: &str, sample: &[ExecId], next: &str) -> Vec<(&'static str, String)> {
    let day = |days: i64| time::rfc3339(time::now() - chrono::Duration::days(days));
    let old_day = time::partition_key(time::now() - chrono::Duration::days(10));
    let old = sample.get(1).or(sample.first()).unwrap();
    let l = format!("{base}/api/executions?limit=20");
    vec![
        ("list", l.clone()),
        ("list, next page", format!("{l}&cursor={next}")),
        ("status=failed", format!("{l}&status=failed")),
        ("status=running (none)", format!("{l}&status=running")),
        ("schema_id", format!("{l}&schema_id=s7")),
        ("schema_id (rare: 20 in all)", format!("{l}&schema_id=rare")),
        ("schema_id (none)", format!("{l}&schema_id=nomatch")),
        (
            "schema_id + status",
            format!("{l}&schema_id=s7&status=succeeded"),
        ),
        ("initiator", format!("{l}&initiator=schedule:nightly")),
        (
            "since + until (a past day)",
            format!("{l}&since={}&until={}", day(10), day(9)),
        ),
        ("approval=pending", format!("{l}&approval=pending")),
        ("q (text)", format!("{l}&q=s7")),
        ("look-up by id", format!("{base}/api/executions/{old}")),
        ("status page /api/logs", format!("{base}/api/logs")),
        (
            "/api/logs/query (a past day)",
            format!("{base}/api/logs/query?partitionKey={old_day}&limit=20"),
        ),
    ]
}

fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_SCALE")
        .unwrap_or_else(|_| "1000,100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let repeat = common::env_or("BENCH_REPEAT", 40);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = common::client(4);
    let mut results: Vec<(usize, Value)> = Vec::new();
    for &n in &sizes {
        let dir = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let sample = rt.block_on(seed(&dir.path().join("data"), n));
        let seeded = t.elapsed();
        let db_mb = std::fs::metadata(dir.path().join("data/cloudo.db"))
            .map(|m| m.len() as f64 / 1048576.0)
            .unwrap_or(0.0);
        let (server, startup) = serve(dir);
        std::thread::sleep(Duration::from_secs(2));
        let idle_rss = rss_kb(server.pid());
        let mut rows = serde_json::Map::new();
        rt.block_on(async {
            let first =
                common::get_json(&http, &format!("{}/api/executions?limit=50", server.base)).await;
            let next = first["next"].as_str().unwrap_or_default().to_string();
            for (name, url) in requests(&server.base, &sample, &next) {
                let mut lat = Vec::with_capacity(repeat);
                for i in 0..repeat + 3 {
                    let t = Instant::now();
                    let res = http.get(&url).send().await.unwrap();
                    let status = res.status();
                    let body = res.bytes().await.unwrap();
                    assert!(status.is_success(), "{name}: {status} {body:?}");
                    if i >= 3 {
                        lat.push(t.elapsed());
                    }
                }
                lat.sort();
                let p50 = common::pct(&lat, 0.5).as_secs_f64() * 1000.0;
                let p99 = common::pct(&lat, 0.99).as_secs_f64() * 1000.0;
                rows.insert(name.into(), json!({"p50_ms": p50, "p99_ms": p99}));
            }
        });
        let busy_rss = rss_kb(server.pid());
        println!(
            "{n} executions stored ({db_mb:.0} MB, seeded in {:.1} s): start-up to ready {:.0} ms, \
             idle RSS {:.1} MB, after the queries {:.1} MB",
            seeded.as_secs_f64(),
            startup.as_secs_f64() * 1000.0,
            idle_rss as f64 / 1024.0,
            busy_rss as f64 / 1024.0
        );
        results.push((
            n,
            json!({
                "executions": n,
                "db_mb": db_mb,
                "startup_ms": startup.as_secs_f64() * 1000.0,
                "idle_rss_mb": idle_rss as f64 / 1024.0,
                "rss_after_queries_mb": busy_rss as f64 / 1024.0,
                "requests": rows,
            }),
        ));
        drop(server);
    }
    report(&results);
}

/// The table: p50 per request and size, the largest over the smallest, pass or fail.
fn report(results: &[(usize, Value)]) {
    let (Some((small, first)), Some((large, last))) = (results.first(), results.last()) else {
        return;
    };
    print!("{:<30}", "request (p50)");
    for (n, _) in results {
        print!(" {:>10}", format!("{n}"));
    }
    println!(
        "  {:>8}  target (<10 ms at {large}, <=x2 of {small})",
        "ratio"
    );
    let names: Vec<String> = first["requests"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut all_pass = true;
    for name in names {
        print!("{name:<30}");
        for (_, r) in results {
            print!(
                " {:>8.2}ms",
                r["requests"][&name]["p50_ms"].as_f64().unwrap_or(0.0)
            );
        }
        let a = first["requests"][&name]["p50_ms"].as_f64().unwrap_or(0.0);
        let b = last["requests"][&name]["p50_ms"].as_f64().unwrap_or(0.0);
        let ratio = if a > 0.0 { b / a } else { 0.0 };
        let pass = b < 10.0 && ratio <= 2.0;
        all_pass &= pass;
        println!("  {ratio:>7.2}x  {}", if pass { "pass" } else { "FAIL" });
    }
    let startup = last["startup_ms"].as_f64().unwrap_or(0.0);
    let idle = first["idle_rss_mb"].as_f64().unwrap_or(0.0);
    println!(
        "start-up to ready with {large} stored: {startup:.0} ms ({}); idle RSS: {idle:.1} MB ({})",
        if startup < 200.0 { "pass" } else { "FAIL" },
        if idle < 20.0 { "pass" } else { "FAIL" }
    );
    let out = json!({
        "when": time::rfc3339(time::now()),
        "all_requests_pass": all_pass,
        "sizes": results.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("scale.json"),
        serde_json::to_string_pretty(&out).unwrap(),
    );
}
