//! Alert ingestion through the real binary: every fixture gives exactly the expected
//! runbook variables; routing, skips, routed alerts, dedup and bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
mod deliveries;
mod routing;
mod variables;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{Env, Server, catalog};
use serde_json::{Value, json};

const PRINTENV_PY: &str = r#"import json, os
out = {k: v for k, v in os.environ.items() if k.startswith(("ALERT_", "RESOURCE_", "AKS_", "MONITOR_"))}
out["CLOUDO_PAYLOAD"] = os.environ.get("CLOUDO_PAYLOAD")
print(json.dumps(out))
"#;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(fixtures().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn expected() -> Value {
    serde_json::from_str(&read("expected.json")).unwrap()
}

fn as_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

/// The variables the runbook printed, and its CLOUDO_PAYLOAD.
async fn printed(s: &Server, exec_id: &str) -> (BTreeMap<String, String>, String) {
    let e = s.wait(exec_id).await;
    assert_eq!(e["status"], "succeeded", "{e}");
    let mut out: Value = serde_json::from_str(e["output"].as_str().unwrap()).unwrap();
    let payload = out["CLOUDO_PAYLOAD"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    out.as_object_mut().unwrap().remove("CLOUDO_PAYLOAD");
    (as_map(&out), payload)
}

async fn post(s: &Server, path: &str, body: &str) -> (u16, Value) {
    common::answer(
        s.http
            .post(s.url(path))
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
}

/// The fixed envelope fragments are wrapped in.
fn envelope(stem: &str, fragment: &Value) -> Value {
    json!({
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {
                "alertId": format!("/subscriptions/11111111-2222-3333-4444-555555555555/providers/Microsoft.AlertsManagement/alerts/fragment-{stem}"),
                "alertRule": "fragment-rule",
                "severity": "Sev2",
                "signalType": "Metric",
                "monitorCondition": "Fired",
                "monitoringService": "Platform",
                "alertTargetIDs": ["/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/RG-Envelope/providers/Microsoft.ContainerService/managedClusters/AKS-Envelope"],
                "configurationItems": ["AKS-Envelope"],
                "firedDateTime": "2026-11-21T10:00:00Z"
            },
            "alertContext": fragment["alertContext"],
            "customProperties": null
        }
    })
}

const ROUTES_YAML: &str = r#"
rules:
  - name: crashloop
    when:
      alert_rule: KubePodCrashLooping
      labels: {namespace: {prefix: pay}}
    run: [restart, page-high]
"#;

fn routing_env() -> Env {
    let env = Env::new(
        &catalog(&[
            r#"{"id": "restart", "runbook": "ok.sh", "monitor_condition": "Fired"}"#,
            r#"{"id": "page-high", "runbook": "ok.sh", "severity": "Sev0-Sev1"}"#,
            r#"{"id": "test-metricAlertRule", "runbook": "ok.sh"}"#,
            r#"{"id": "storage", "runbook": "ok.sh"}"#,
            r#"{"id": "printenv", "runbook": "printenv.py"}"#,
        ]),
        &[("ok.sh", "echo ok\n"), ("printenv.py", PRINTENV_PY)],
    );
    std::fs::write(env.path().join("routes.yaml"), ROUTES_YAML).unwrap();
    let routes = env.path().join("routes.yaml").display().to_string();
    env.arg("--routes").arg(&routes)
}

fn statuses(answer: &Value) -> Vec<(String, String)> {
    answer["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["schema_id"].as_str().unwrap().to_string(),
                e["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
