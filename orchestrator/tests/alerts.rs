//! Alert ingestion through the real binary: every fixture gives exactly the expected
//! runbook variables; routing, skips, routed alerts, dedup and bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

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
    let payload = out["CLOUDO_PAYLOAD"].as_str().unwrap_or_default().to_string();
    out.as_object_mut().unwrap().remove("CLOUDO_PAYLOAD");
    (as_map(&out), payload)
}

async fn post(s: &Server, path: &str, body: &str) -> (u16, Value) {
    let res = s
        .http
        .post(s.url(path))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let code = res.status().as_u16();
    (code, res.json().await.unwrap_or(Value::Null))
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

#[tokio::test]
async fn every_fixture_gives_exactly_the_expected_variables() {
    let env = Env::new(
        &catalog(&[r#"{"id": "printenv", "runbook": "printenv.py"}"#]),
        &[("printenv.py", PRINTENV_PY)],
    )
    .arg("--dedup-window")
    .arg("0");
    let s = env.start();
    let exp = expected();
    let mut checked = 0;

    for (name, want) in exp["full"].as_object().unwrap() {
        let rel = if name.starts_with("crafted/") {
            format!("{name}.json")
        } else {
            format!("azure-monitor/{name}.json")
        };
        let body = read(&rel);
        let (code, ack) = post(&s, "/api/Trigger?id=printenv", &body).await;
        assert_eq!(code, 202, "{name}: {ack}");
        let (vars, payload) = printed(&s, ack["exec_id"].as_str().unwrap()).await;
        assert_eq!(vars, as_map(want), "variables of {name}");
        assert_eq!(payload, body, "{name}: CLOUDO_PAYLOAD is the body as received");
        checked += 1;
    }

    let base = as_map(&exp["envelope"]);
    for (stem, extra) in exp["fragments"].as_object().unwrap() {
        let fragment: Value = serde_json::from_str(&read(&format!("azure-monitor/{stem}.json"))).unwrap();
        let body = envelope(stem, &fragment).to_string();
        let (code, ack) = post(&s, "/api/Trigger?id=printenv", &body).await;
        assert_eq!(code, 202, "{stem}: {ack}");
        let (vars, _) = printed(&s, ack["exec_id"].as_str().unwrap()).await;
        let mut want: BTreeMap<String, String> = base
            .iter()
            .map(|(k, v)| (k.clone(), v.replace("{stem}", stem)))
            .collect();
        want.extend(as_map(extra));
        assert_eq!(vars, want, "variables of fragment {stem}");
        checked += 1;
    }

    for (name, by_fingerprint) in exp["alertmanager"].as_object().unwrap() {
        let body = read(&format!("alertmanager/{name}.json"));
        let (code, ack) = post(&s, "/api/webhooks/alertmanager?id=printenv", &body).await;
        assert_eq!(code, 202, "{name}: {ack}");
        let answers = ack["alerts"].as_array().unwrap();
        assert_eq!(answers.len(), by_fingerprint.as_object().unwrap().len(), "{name}: one per alert");
        for a in answers {
            let fp = a["fingerprint"].as_str().unwrap();
            let (vars, payload) = printed(&s, a["executions"][0]["exec_id"].as_str().unwrap()).await;
            assert_eq!(vars, as_map(&by_fingerprint[fp]), "variables of {name} alert {fp}");
            assert_eq!(payload, body);
            checked += 1;
        }
    }
    // 10 full payloads, 15 fragments, 4 Alertmanager alerts.
    assert_eq!(checked, 29);
}
