//! What runs when, and how much, through the real binary: concurrency keys (queue and
//! skip), pool capacity, hourly rate limits with their one notification, guardrails, and
//! dry runs that never page.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod azure;
#[path = "../common/mod.rs"]
mod common;
mod guards;
mod verify;

use common::{Env, Server, catalog};
use serde_json::{Value, json};

/// Prints when it starts and ends, around a second of sleep.
const STAMP: &str =
    "echo \"start $(date +%s.%N) ${RESOURCE_NAME:-none}\"\nsleep 1\necho \"end $(date +%s.%N)\"\n";

/// An Azure Monitor alert on VM `vm` in `rg` of subscription `sub`, with its own id.
fn vm_alert(n: usize, sub: &str, rg: &str, vm: &str) -> Value {
    json!({
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {
                "alertId": format!("/subscriptions/{sub}/providers/Microsoft.AlertsManagement/alerts/a-{n}-{vm}"),
                "alertRule": "cpu-high",
                "severity": "Sev2",
                "signalType": "Metric",
                "monitorCondition": "Fired",
                "monitoringService": "Platform",
                "alertTargetIDs": [format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{vm}")],
                "configurationItems": [vm],
                "firedDateTime": "2026-12-03T10:00:00Z"
            },
            "alertContext": {},
            "customProperties": null
        }
    })
}

/// Posts an alert for schema `id`; the trigger's answer.
async fn post_alert(s: &Server, id: &str, alert: &Value) -> (u16, Value) {
    common::post_json(&s.http, &s.url(&format!("/api/Trigger?id={id}")), alert).await
}

/// (start, end) of a finished STAMP run, from its output.
fn span(e: &Value) -> (f64, f64) {
    let out = e["output"].as_str().unwrap_or_default();
    let at = |word: &str| -> f64 {
        out.lines()
            .find_map(|l| l.strip_prefix(word))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no {word:?} in {e}"))
    };
    (at("start "), at("end "))
}

fn overlap(a: (f64, f64), b: (f64, f64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

#[tokio::test]
async fn one_key_runs_one_at_a_time_in_order_while_other_keys_run_beside_it() {
    let env = Env::new(
        &catalog(&[
            r#"{"id": "restart", "runbook": "stamp.sh", "max_concurrency": 1}"#,
            r#"{"id": "once", "runbook": "stamp.sh", "max_concurrency": 1, "concurrency_policy": "skip"}"#,
        ]),
        &[("stamp.sh", STAMP)],
    )
    .arg("--concurrency")
    .arg("4");
    let s = env.start();
    let mut a = Vec::new();
    for n in 0..3 {
        let (code, body) = post_alert(&s, "restart", &vm_alert(n, "s1", "rg", "vm-a")).await;
        assert_eq!(code, 202, "{body}");
        a.push(body["exec_id"].as_str().unwrap().to_string());
    }
    let (code, body) = post_alert(&s, "restart", &vm_alert(9, "s1", "rg", "vm-b")).await;
    assert_eq!(code, 202, "{body}");
    let b = body["exec_id"].as_str().unwrap().to_string();
    let mut spans = Vec::new();
    for id in &a {
        let e = s.wait(id).await;
        assert_eq!(e["status"], "succeeded", "{e}");
        spans.push(span(&e));
    }
    for w in spans.windows(2) {
        assert!(
            w[0].1 <= w[1].0,
            "vm-a runs overlap or ran out of order: {spans:?}"
        );
    }
    let eb = s.wait(&b).await;
    assert_eq!(eb["status"], "succeeded", "{eb}");
    assert!(
        spans.iter().any(|x| overlap(*x, span(&eb))),
        "vm-b ran beside vm-a's runs: {spans:?} {:?}",
        span(&eb)
    );
    assert!(
        s.logs().contains("waiting for a concurrency slot"),
        "the wait is logged"
    );

    // The skip policy: the second run while one runs is recorded skipped, with the reason.
    let first = s.trigger("once").await;
    let res = s
        .http
        .post(s.url("/api/Trigger?id=once"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let second: Value = res.json().await.unwrap();
    assert_eq!(second["status"], "skipped", "{second}");
    let reason = second["reason"].as_str().unwrap();
    assert!(reason.starts_with("concurrency_limit:"), "{reason}");
    assert_eq!(s.wait(&first).await["status"], "succeeded");
    // Its slot is free again.
    let third = s.trigger("once").await;
    assert_eq!(s.wait(&third).await["status"], "succeeded");
}

#[tokio::test]
async fn a_capped_pool_runs_no_more_than_its_capacity() {
    let env = Env::new(
        &catalog(&[
            r#"{"id": "a", "runbook": "stamp.sh"}"#,
            r#"{"id": "b", "runbook": "stamp.sh"}"#,
        ]),
        &[("stamp.sh", STAMP)],
    )
    .arg("--concurrency")
    .arg("4")
    .arg("--pool-capacity")
    .arg("default=2");
    let s = env.start();
    let mut ids = Vec::new();
    for id in ["a", "b", "a", "b"] {
        ids.push(s.trigger(id).await);
    }
    let mut spans = Vec::new();
    for id in &ids {
        let e = s.wait(id).await;
        assert_eq!(e["status"], "succeeded", "{e}");
        spans.push(span(&e));
    }
    // At no run's start were more than two running.
    for x in &spans {
        let running = spans.iter().filter(|y| y.0 <= x.0 && x.0 < y.1).count();
        assert!(running <= 2, "{running} ran at once: {spans:?}");
    }
    assert!(
        spans
            .iter()
            .enumerate()
            .any(|(i, x)| spans.iter().skip(i + 1).any(|y| overlap(*x, *y))),
        "two ran side by side: {spans:?}"
    );
}
