//! `make bench` (alert ingest): Azure Monitor common-schema alerts posted to
//! `POST /api/Trigger` by many concurrent clients, each alert with its own `alertId`, dedup
//! on (default 10 min window). Every alert is parsed, deduplicated and recorded durably
//! (SQLite, WAL) before its answer.
//!
//! Two rows: alerts that match no runbook (recorded as `routed`: parse + dedup + record),
//! and alerts a routing rule sends to a runbook (also queued; the in-process workers run
//! them at the same time, on the same cores).
//!
//! Knobs: `BENCH_ALERTS` (per row, default 20000), `BENCH_CLIENTS` (default 64).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mod.rs"]
mod common;

use common::{Engine, env_or};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

fn start() -> Engine {
    common::start(
        &["--sandbox", "process", "--ingest-rate", "0"],
        Some("rules:\n  - when: {alert_rule: bench-run}\n    run: noop\n"),
    )
}

/// A metric alert like Azure's test action, with its own alert id.
fn alert(rule: &str, n: usize) -> String {
    format!(
        r#"{{"schemaId":"azureMonitorCommonAlertSchema","data":{{"essentials":{{"alertId":"/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/providers/Microsoft.AlertsManagement/alerts/bench-{rule}-{n}","alertRule":"{rule}","severity":"Sev3","signalType":"Metric","monitorCondition":"Fired","monitoringService":"Platform","alertTargetIDs":["/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/test-RG/providers/microsoft.storage/storageaccounts/test-storageAccount"],"configurationItems":["test-storageAccount"],"originAlertId":"bench_{n}","firedDateTime":"2026-11-21T18:17:12.851Z","description":"Alert rule description","essentialsVersion":"1.0","alertContextVersion":"1.0"}},"alertContext":{{"properties":null,"conditionType":"SingleResourceMultipleMetricCriteria","condition":{{"windowSize":"PT5M","allOf":[{{"metricName":"Transactions","metricNamespace":"Microsoft.Storage/storageAccounts","operator":"GreaterThan","threshold":"0","timeAggregation":"Total","dimensions":[{{"name":"ApiName","value":"GetBlob"}}],"metricValue":100,"webTestName":null}}],"windowStartTime":"2026-11-21T18:09:05.202Z","windowEndTime":"2026-11-21T18:14:05.202Z"}}}},"customProperties":{{"customKey1":"value1"}}}}}}"#
    )
}

async fn row(
    http: &reqwest::Client,
    base: &str,
    rule: &'static str,
    n: usize,
    clients: usize,
    want: u16,
) {
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (http, base, next) = (http.clone(), base.to_string(), next.clone());
        set.spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return lat;
                }
                let t0 = Instant::now();
                let res = http
                    .post(format!("{base}/api/Trigger"))
                    .header("content-type", "application/json")
                    .body(alert(rule, i))
                    .send()
                    .await
                    .expect("post");
                assert_eq!(res.status().as_u16(), want);
                let _ = res.bytes().await;
                lat.push(t0.elapsed());
            }
        });
    }
    let mut lat = Vec::new();
    while let Some(r) = set.join_next().await {
        lat.extend(r.unwrap());
    }
    let wall = t.elapsed();
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "ingest {rule:<14} n={n:<6} accepted/s={:<7.0} p50={:.2} ms  p99={:.2} ms  max={:.2} ms",
        n as f64 / wall.as_secs_f64(),
        p(0.5).as_secs_f64() * 1e3,
        p(0.99).as_secs_f64() * 1e3,
        lat.last().unwrap().as_secs_f64() * 1e3,
    );
}

fn main() {
    let n = env_or("BENCH_ALERTS", 20000);
    let clients = env_or("BENCH_CLIENTS", 64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = start();
    let http = common::client(clients * 2);
    println!(
        "alert ingest, {clients} concurrent clients, dedup on, sqlite sync=normal, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    rt.block_on(async {
        row(&http, &engine.base, "bench-routed", n, clients, 200).await;
        row(&http, &engine.base, "bench-run", n, clients, 202).await;
    });
}
