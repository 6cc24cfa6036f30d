//! `make bench` (alert ingest): Azure Monitor common-schema alerts (1.7 KB) posted to
//! `POST /api/Trigger` at saturation by wrk (Debian's, the compiled load generator;
//! `test-env/setup-bench.sh` installs it), each alert with its own `alertId` (a Lua script),
//! dedup on (10 min window), with the admin key (so each alert is also audited). Every alert
//! is parsed, deduplicated and recorded durably (SQLite, WAL) before its answer.
//!
//! Two rows: alerts that match no runbook (recorded as `routed`: parse + dedup + record),
//! and alerts a routing rule sends to a runbook (also queued; the in-process workers run
//! them at the same time, on the same cores). After each row the executions recorded in its
//! window are counted through the API: at least every accepted alert, at most those still in
//! flight when wrk stopped on top. Then 200 alerts of the row are delivered again: all are
//! answered as duplicates and nothing new is recorded.
//!
//! Each row first runs the same load for `BENCH_WARMUP` seconds (default 10), not measured:
//! a freshly started engine accepts far fewer alerts in its first seconds.
//!
//! Knobs: `BENCH_SECS` (per row, default 10), `BENCH_WARMUP`, `BENCH_CLIENTS` (connections,
//! default 64).
//! Figures go to stdout and `target/bench/ingest.json`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mod.rs"]
mod common;

use common::{Engine, env_or};

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

fn start() -> Engine {
    common::start(
        &["--sandbox", "process", "--ingest-rate", "0"],
        Some("rules:\n  - when: {alert_rule: bench-run}\n    run: noop\n"),
    )
}

const SUB: &str = "aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e";

/// A metric alert like Azure's test action; `{id}` is its own part of the alert id.
fn alert_around(rule: &str) -> (String, String) {
    let head = format!(
        r#"{{"schemaId":"azureMonitorCommonAlertSchema","data":{{"essentials":{{"alertId":"/subscriptions/{SUB}/providers/Microsoft.AlertsManagement/alerts/bench-"#
    );
    let tail = format!(
        r#"","alertRule":"{rule}","severity":"Sev3","signalType":"Metric","monitorCondition":"Fired","monitoringService":"Platform","alertTargetIDs":["/subscriptions/{SUB}/resourcegroups/test-RG/providers/microsoft.storage/storageaccounts/test-storageAccount"],"configurationItems":["test-storageAccount"],"originAlertId":"bench","firedDateTime":"2026-11-21T18:17:12.851Z","description":"Alert rule description","essentialsVersion":"1.0","alertContextVersion":"1.0"}},"alertContext":{{"properties":null,"conditionType":"SingleResourceMultipleMetricCriteria","condition":{{"windowSize":"PT5M","allOf":[{{"metricName":"Transactions","metricNamespace":"Microsoft.Storage/storageAccounts","operator":"GreaterThan","threshold":"0","timeAggregation":"Total","dimensions":[{{"name":"ApiName","value":"GetBlob"}}],"metricValue":100,"webTestName":null}}],"windowStartTime":"2026-11-21T18:09:05.202Z","windowEndTime":"2026-11-21T18:14:05.202Z"}}}},"customProperties":{{"customKey1":"value1"}}}}}}"#
    );
    (head, tail)
}

/// wrk's script: every request an alert with its own id `<row>-t<thread>-<n>`.
fn script(rule: &str, row: &str) -> String {
    let (head, tail) = alert_around(rule);
    let lua = |s: &str| s.replace('\\', "\\\\").replace('\'', "\\'");
    format!(
        r#"local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function init(args) prefix = "{row}-t" .. tid .. "-"; n = 0 end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
local head = '{head}'
local tail = '{tail}'
request = function()
  n = n + 1
  return wrk.format(nil, "/api/Trigger", nil, head .. prefix .. n .. tail)
end
"#,
        key = common::ADMIN_KEY,
        head = lua(&head),
        tail = lua(&tail),
    )
}

/// What wrk printed: completed requests, non-2xx answers, seconds, p50 and p99 (ms).
#[derive(Debug, Default)]
struct Wrk {
    requests: u64,
    non_2xx: u64,
    secs: f64,
    p50: f64,
    p99: f64,
}

fn ms(v: &str) -> f64 {
    let (n, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = n.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => n,
    }
}

fn parse(out: &str) -> Wrk {
    let mut w = Wrk::default();
    for line in out.lines().map(str::trim) {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["50%", v] => w.p50 = ms(v),
            ["99%", v] => w.p99 = ms(v),
            [n, "requests", "in", secs, ..] => {
                w.requests = n.parse().unwrap_or(0);
                w.secs = ms(secs.trim_end_matches(',')) / 1000.0;
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => w.non_2xx = n.parse().unwrap_or(0),
            _ => {}
        }
    }
    w
}

/// Executions recorded between `since` and `until` (counted page by page).
async fn recorded(http: &reqwest::Client, base: &str, since: &str, until: &str) -> u64 {
    let mut n = 0;
    let mut cursor = String::new();
    loop {
        let page = common::get_json(
            http,
            &format!(
                "{base}/api/executions?initiator=alert&since={since}&until={until}&limit=1000{cursor}"
            ),
        )
        .await;
        n += page["items"].as_array().map_or(0, Vec::len) as u64;
        match page["next"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return n,
        }
    }
}

async fn row(
    http: &reqwest::Client,
    engine: &Engine,
    rule: &'static str,
    clients: usize,
    (warmup, secs): (u64, u64),
) -> Value {
    let tag = format!("{rule}-{}", std::process::id());
    let wrk = |tag: &str, secs: u64| {
        let lua = engine.dir.path().join(format!("{tag}.lua"));
        std::fs::write(&lua, script(rule, tag)).unwrap();
        let out = Command::new("wrk")
            .args([
                "-t2",
                &format!("-c{clients}"),
                &format!("-d{secs}s"),
                "--latency",
            ])
            .arg("-s")
            .arg(&lua)
            .arg(format!("{}/api/Trigger", engine.base))
            .output()
            .expect("wrk (Debian package `wrk`; test-env/setup-bench.sh installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // A server that has been up a while: the same load first, not measured (its alerts are
    // recorded before the measured window).
    if warmup > 0 {
        wrk(&format!("{tag}-warm"), warmup);
        // Its last answers, still in flight when wrk stopped, land before the window.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let since = cloudo_core::time::rfc3339(cloudo_core::time::now());
    let text = wrk(&tag, secs);
    let w = parse(&text);
    assert!(w.requests > 0, "wrk ran no request: {text}");
    assert_eq!(w.non_2xx, 0, "every alert accepted: {text}");
    // Answers still in flight when wrk stopped may have been recorded too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let until = cloudo_core::time::rfc3339(cloudo_core::time::now());
    let found = recorded(http, &engine.base, &since, &until).await;
    assert!(
        found >= w.requests && found <= w.requests + clients as u64,
        "{rule}: {} accepted, {found} recorded",
        w.requests
    );
    // The same alerts again: answered, nothing new recorded.
    let (head, tail) = alert_around(rule);
    for i in 1..=200 {
        let body = format!("{head}{tag}-t0-{i}{tail}");
        let res = http
            .post(format!("{}/api/Trigger", engine.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
    }
    let again = recorded(http, &engine.base, &since, &until).await;
    assert_eq!(
        again, found,
        "{rule}: a duplicate delivery recorded something"
    );
    let rate = w.requests as f64 / w.secs;
    println!(
        "ingest {rule:<14} {clients} connections {secs} s: accepted/s={rate:<7.0} p50={:.2} ms  \
         p99={:.2} ms  accepted={} recorded={found} duplicates re-sent=200 (nothing new)",
        w.p50, w.p99, w.requests
    );
    json!({"rule": rule, "connections": clients, "secs": w.secs, "accepted": w.requests,
        "recorded": found, "accepted_per_s": rate, "p50_ms": w.p50, "p99_ms": w.p99})
}

fn main() {
    let secs = env_or("BENCH_SECS", 10) as u64;
    let warmup = env_or("BENCH_WARMUP", 10) as u64;
    let clients = env_or("BENCH_CLIENTS", 64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = start();
    let http = common::client(4);
    println!(
        "alert ingest (wrk -t2), dedup on, sqlite sync=normal, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let rows = rt.block_on(async {
        vec![
            row(&http, &engine, "bench-routed", clients, (warmup, secs)).await,
            row(&http, &engine, "bench-run", clients, (warmup, secs)).await,
        ]
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("ingest.json"),
        serde_json::to_string_pretty(&json!({"rows": rows})).unwrap(),
    );
}
