//! `GET /metrics` through the real binary: who may scrape, values that move as executions
//! run, text that Prometheus' own parser reads, and labels that stay bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::{ADMIN_KEY, Env, Server, post_json};
use serde_json::Value;

/// One sample: metric name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: serde_json::Map<String, Value>,
    value: f64,
}

/// Parses the text with `prometheus_client.parser` (Prometheus' Python client), failing
/// the test if it does not parse.
fn parse(text: &str) -> Vec<Sample> {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append([s.name, s.labels, s.value])
print(json.dumps(out))
"#;
    let out = common::python(SCRIPT, text.as_bytes());
    let rows: Vec<(String, serde_json::Map<String, Value>, f64)> =
        serde_json::from_str(&out).unwrap();
    rows.into_iter()
        .map(|(name, labels, value)| Sample {
            name,
            labels,
            value,
        })
        .collect()
}

async fn scrape(s: &Server, key: Option<&str>) -> (u16, String) {
    let res = common::client(key)
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The value of `name` whose labels include `want` (0 when absent).
fn value(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            want.iter()
                .all(|(k, v)| s.labels.get(*k).and_then(Value::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

fn env() -> Env {
    Env::new(
        &common::catalog(&[
            r#"{"id": "quick", "runbook": "quick.sh"}"#,
            r#"{"id": "fail", "runbook": "fail.sh"}"#,
            r#"{"id": "slow", "runbook": "slow.sh"}"#,
            r#"{"id": "away", "runbook": "quick.sh", "worker": "elsewhere"}"#,
        ]),
        &[
            ("quick.sh", "echo hi\n"),
            ("fail.sh", "exit 3\n"),
            ("slow.sh", "sleep 30\n"),
        ],
    )
    .arg("--worker-pools")
    .arg("default")
}

#[tokio::test]
async fn metrics_move_as_executions_run_and_parse_as_prometheus_text() {
    let env = env();
    let s = env.start();
    let scraper = common::new_key(&s, "prometheus", "metrics").await;
    let ingest = common::new_key(&s, "am", "ingest").await;

    // Who may scrape: the metrics role and viewers up; not without a key, not ingest.
    assert_eq!(scrape(&s, None).await.0, 401);
    assert_eq!(scrape(&s, Some(&ingest)).await.0, 403);
    let (code, text) = scrape(&s, Some(&scraper)).await;
    assert_eq!(code, 200, "{text}");
    let before = parse(&text);
    assert_eq!(
        value(
            &before,
            "cloudo_build_info",
            &[("component", "orchestrator")]
        ),
        1.0
    );
    // A metrics key reads nothing else.
    let res = common::client(Some(&scraper))
        .get(s.url("/api/executions"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    let ok = s.trigger("quick").await;
    s.wait(&ok).await;
    let bad = s.trigger("fail").await;
    s.wait(&bad).await;
    // Two waiting for a pool no worker serves.
    s.trigger("away").await;
    s.trigger("away").await;
    let slow = s.trigger("slow").await;
    s.wait_for_status(&slow, "running").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let now = parse(&scrape(&s, Some(&scraper)).await.1);
    let started = |schema| {
        value(
            &now,
            "cloudo_executions_started_total",
            &[("schema", schema)],
        )
    };
    assert_eq!(started("quick"), 1.0);
    assert_eq!(started("fail"), 1.0);
    let finished = |schema, status| {
        value(
            &now,
            "cloudo_executions_finished_total",
            &[("schema", schema), ("status", status)],
        )
    };
    assert_eq!(finished("quick", "succeeded"), 1.0);
    assert_eq!(finished("fail", "failed"), 1.0);
    assert_eq!(
        value(
            &now,
            "cloudo_execution_duration_seconds_count",
            &[("schema", "quick")]
        ),
        1.0
    );
    assert!(
        value(
            &now,
            "cloudo_execution_start_latency_seconds_count",
            &[("pool", "default")]
        ) >= 3.0
    );
    assert_eq!(
        value(&now, "cloudo_queue_depth", &[("pool", "elsewhere")]),
        2.0
    );
    assert!(
        value(
            &now,
            "cloudo_queue_oldest_age_seconds",
            &[("pool", "elsewhere")]
        ) >= 1.0
    );
    assert_eq!(
        value(&now, "cloudo_running_executions", &[("pool", "default")]),
        1.0
    );
    assert_eq!(
        value(
            &now,
            "cloudo_http_requests_total",
            &[
                ("route", "/api/Trigger"),
                ("code", "202"),
                ("method", "POST")
            ]
        ),
        5.0
    );
    let store_ops = |operation| {
        value(
            &now,
            "cloudo_store_operation_duration_seconds_count",
            &[("operation", operation)],
        )
    };
    // Three starts, and two ends each recorded with its job's acknowledgement (one commit).
    assert!(store_ops("transition") >= 3.0);
    assert!(store_ops("transition_and_ack") >= 2.0);
    assert_eq!(
        value(
            &now,
            "cloudo_worker_runs_total",
            &[("pool", "default"), ("status", "failed")]
        ),
        1.0
    );

    // An alert, then the same alert again.
    let alert = include_str!("fixtures/azure-monitor/test-action-metric-static-threshold.json");
    let body: Value = serde_json::from_str(alert).unwrap();
    for _ in 0..2 {
        let (code, _) = post_json(&s.http, &s.url("/api/Trigger"), &body).await;
        assert!(code == 200 || code == 202);
    }
    let res = s
        .http
        .post(s.url("/api/routes/test"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // Cancel the slow one: nothing runs any more.
    let res = s
        .http
        .post(s.url(&format!("/api/executions/{slow}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    s.wait(&slow).await;

    let after = parse(&scrape(&s, Some(&scraper)).await.1);
    let src = [("source", "azure_monitor")];
    assert_eq!(value(&after, "cloudo_alerts_received_total", &src), 2.0);
    assert_eq!(value(&after, "cloudo_alerts_deduplicated_total", &src), 1.0);
    assert_eq!(value(&after, "cloudo_alerts_routed_total", &src), 1.0);
    assert_eq!(
        value(
            &after,
            "cloudo_http_requests_total",
            &[("route", "/api/routes/test"), ("code", "400")]
        ),
        1.0
    );
    assert_eq!(
        value(&after, "cloudo_running_executions", &[("pool", "default")]),
        0.0
    );
    assert_eq!(
        value(
            &after,
            "cloudo_executions_finished_total",
            &[("schema", "slow"), ("status", "stopped")]
        ),
        1.0
    );
}

#[tokio::test]
async fn labels_stay_bounded_after_a_thousand_executions() {
    let env = env().arg("--ingest-rate").arg("0");
    let s = env.start();
    let mut ids = BTreeSet::new();
    for _ in 0..1000 {
        let res = s
            .http
            .post(s.url("/api/Trigger?id=quick"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
        let v: Value = res.json().await.unwrap();
        let id = v["exec_id"].as_str().unwrap().to_string();
        // Each execution read by its own URL, and one URL no route has.
        let _ = s.get(&format!("/api/executions/{id}")).await;
        ids.insert(id);
    }
    let _ = s.get("/no/such/route/at/all").await;
    for id in ids.iter().take(50) {
        s.wait(id).await;
    }
    let text = scrape(&s, Some(ADMIN_KEY)).await.1;
    let samples = parse(&text);
    let series: BTreeSet<String> = samples
        .iter()
        .map(|s| format!("{}{:?}", s.name, s.labels))
        .collect();
    assert!(
        series.len() < 600,
        "{} series after 1000 executions:\n{text}",
        series.len()
    );
    for s in &samples {
        for (k, v) in &s.labels {
            let v = v.as_str().unwrap_or_default();
            assert!(
                !ids.contains(v),
                "an execution id as the label {k} of {}",
                s.name
            );
            assert!(!v.contains("/no/such"), "a raw path as a label: {v}");
        }
    }
    assert_eq!(
        value(
            &samples,
            "cloudo_http_requests_total",
            &[("route", "/api/executions/{exec_id}"), ("method", "GET")]
        ),
        1050.0,
        "1000 reads and 50 waits, under the route's template"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standalone_worker_serves_its_own_metrics() {
    use common::azure::{Worker, on_azure, uuid_like, worker_key};
    let prefix = format!("met{}", uuid_like());
    let env = on_azure(
        Env::new(
            &common::catalog(&[
                r#"{"id": "quick", "runbook": "quick.sh", "worker": "remote"}"#,
                r#"{"id": "parked", "runbook": "quick.sh", "worker": "nobody"}"#,
            ]),
            &[("quick.sh", "echo hi\n")],
        ),
        &prefix,
    );
    let s = env.start();
    let key = worker_key(&s, "met-remote", "remote").await;
    let addr = format!("127.0.0.1:{}", common::free_port());
    let _w = Worker::start_with(
        &env.path().join("runbooks"),
        &prefix,
        ("remote", &s.base, &key),
        &["--metrics-listen", &addr],
    );
    let id = s.trigger("quick").await;
    assert_eq!(s.wait(&id).await["status"], "succeeded");
    s.trigger("parked").await;

    let http = common::client(None);
    let text = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let w = parse(&text);
    assert_eq!(
        value(&w, "cloudo_build_info", &[("component", "worker")]),
        1.0
    );
    assert_eq!(
        value(
            &w,
            "cloudo_worker_runs_total",
            &[("pool", "remote"), ("status", "succeeded")]
        ),
        1.0
    );
    assert_eq!(value(&w, "cloudo_queue_depth", &[("pool", "remote")]), 0.0);
    assert!(
        w.iter()
            .any(|x| x.name == "cloudo_queue_oldest_age_seconds"),
        "{text}"
    );
    // The orchestrator sees the other pool's waiting job (Azure's count).
    let o = parse(&scrape(&s, Some(ADMIN_KEY)).await.1);
    assert_eq!(value(&o, "cloudo_queue_depth", &[("pool", "nobody")]), 1.0);
    let res = http
        .get(format!("http://{addr}/other"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
