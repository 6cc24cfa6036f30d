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
    let payload = out["CLOUDO_PAYLOAD"]
        .as_str()
        .unwrap_or_default()
        .to_string();
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
        assert_eq!(
            payload, body,
            "{name}: CLOUDO_PAYLOAD is the body as received"
        );
        checked += 1;
    }

    let base = as_map(&exp["envelope"]);
    for (stem, extra) in exp["fragments"].as_object().unwrap() {
        let fragment: Value =
            serde_json::from_str(&read(&format!("azure-monitor/{stem}.json"))).unwrap();
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
        assert_eq!(
            answers.len(),
            by_fingerprint.as_object().unwrap().len(),
            "{name}: one per alert"
        );
        for a in answers {
            let fp = a["fingerprint"].as_str().unwrap();
            let (vars, payload) =
                printed(&s, a["executions"][0]["exec_id"].as_str().unwrap()).await;
            assert_eq!(
                vars,
                as_map(&by_fingerprint[fp]),
                "variables of {name} alert {fp}"
            );
            assert_eq!(payload, body);
            checked += 1;
        }
    }
    // 10 full payloads, 15 fragments, 4 Alertmanager alerts.
    assert_eq!(checked, 29);
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

#[tokio::test]
async fn routing_decides_what_runs_and_records_skips_and_routed_alerts() {
    let env = routing_env();
    let s = env.start();

    // A rule runs two schemas; one declines by severity (Sev2 is outside Sev0-Sev1).
    let (code, ack) = post(
        &s,
        "/api/webhooks/alertmanager",
        &read("alertmanager/generated-v0.25.0-firing-group.json"),
    )
    .await;
    assert_eq!(code, 202, "{ack}");
    for a in ack["alerts"].as_array().unwrap() {
        assert_eq!(
            statuses(a),
            vec![
                ("restart".into(), "accepted".into()),
                ("page-high".into(), "skipped".into())
            ]
        );
        let skipped = &a["executions"][1];
        assert_eq!(
            skipped["reason"],
            "schema runs on Sev0-Sev1 alerts only; this alert is Sev2"
        );
        let e = s
            .wait(a["executions"][0]["exec_id"].as_str().unwrap())
            .await;
        assert_eq!(
            (e["status"].as_str(), e["initiator"].as_str()),
            (Some("succeeded"), Some("alert"))
        );
        let (_, rec) = s
            .get(&format!(
                "/api/executions/{}",
                skipped["exec_id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(rec["status"], "skipped");
        assert_eq!(rec["transitions"][0]["reason"], skipped["reason"]);
    }

    // Resolved: `restart` runs on Fired only.
    let (code, ack) = post(
        &s,
        "/api/webhooks/alertmanager",
        &read("alertmanager/generated-v0.25.0-resolved.json"),
    )
    .await;
    assert_eq!(code, 200, "nothing accepted: {ack}");
    assert_eq!(
        statuses(&ack["alerts"][0]),
        vec![
            ("restart".into(), "skipped".into()),
            ("page-high".into(), "skipped".into())
        ]
    );
    assert!(
        ack["alerts"][0]["executions"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("Fired alerts only")
    );

    // No rule: ClouDO's fallback, a schema whose id is the alert rule's name.
    let (code, ack) = post(
        &s,
        "/api/Trigger",
        &read("azure-monitor/test-action-metric-static-threshold.json"),
    )
    .await;
    assert_eq!(code, 202, "{ack}");
    assert_eq!(
        statuses(&ack),
        vec![("test-metricAlertRule".into(), "accepted".into())]
    );

    // Nothing matches: recorded as routed, with the reason, and answered 200. (Azure's
    // test actions all carry the same alertId; give this one its own, or it would be a
    // duplicate of the one above.)
    let dynamic = read("azure-monitor/test-action-metric-dynamic-threshold.json")
        .replace("eeeeeeee-4444", "dddddddd-4444");
    let (code, ack) = post(&s, "/api/Trigger", &dynamic).await;
    assert_eq!(code, 200, "{ack}");
    assert_eq!(ack["status"], "routed");
    assert!(
        ack["reason"]
            .as_str()
            .unwrap()
            .contains("test-dynamicMetricAlertRule"),
        "{ack}"
    );
    let (_, rec) = s
        .get(&format!(
            "/api/executions/{}",
            ack["exec_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        (rec["status"].as_str(), rec["schema_id"].as_str()),
        (Some("routed"), Some(""))
    );
    assert_eq!(rec["request_body"].as_str(), Some(dynamic.as_str()));

    // Rules through the API: JSON, validated, applied at once.
    let rules = json!({"rules": [{"name": "storage", "when": {"resource_type": {"glob": "microsoft.storage/*"},
        "severity": "Sev3-Sev4", "monitoring_service": "Platform"}, "run": "storage"}]});
    let res = s
        .http
        .put(s.url("/api/routes"))
        .json(&rules)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, got) = s.get("/api/routes").await;
    assert_eq!(got["rules"][0]["name"], "storage");
    assert!(got["file"].as_str().unwrap().ends_with("routes.yaml"));
    let redelivered = dynamic.replace("dddddddd-4444", "cccccccc-4444");
    let (code, ack) = post(&s, "/api/Trigger", &redelivered).await;
    assert_eq!(code, 202, "{ack}");
    assert_eq!(statuses(&ack), vec![("storage".into(), "accepted".into())]);

    // The dry run tells which rule and schema an alert would get, and its variables.
    let (code, t) = post(&s, "/api/routes/test", &dynamic).await;
    assert_eq!(code, 200, "{t}");
    assert_eq!(t["alerts"][0]["matched_rules"][0]["name"], "storage");
    assert_eq!(t["alerts"][0]["schemas"][0]["id"], "storage");
    assert_eq!(
        t["alerts"][0]["env"]["RESOURCE_NAME"],
        "test-storageaccount"
    );
    let (_, all) = s.get("/api/executions?limit=100").await;
    let before = all["items"].as_array().unwrap().len();
    let (_, again) = s.get("/api/executions?limit=100").await;
    assert_eq!(
        again["items"].as_array().unwrap().len(),
        before,
        "the dry run recorded nothing"
    );

    // Bad rules are refused and the old ones stay.
    for (body, needle) in [
        (json!({"rules": [{"when": {}, "run": "ghost"}]}), "ghost"),
        (
            json!({"rules": [{"when": {"labels": {"x": {"regex": "("}}}, "run": "storage"}]}),
            "regex",
        ),
        (json!({"rulez": []}), "rulez"),
    ] {
        let res = s
            .http
            .put(s.url("/api/routes"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        let b: Value = res.json().await.unwrap();
        assert!(
            b["error"]["message"].as_str().unwrap().contains(needle),
            "{b}"
        );
    }
    let (_, got) = s.get("/api/routes").await;
    assert_eq!(got["rules"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_same_alert_delivered_twenty_times_at_once_runs_once() {
    let env = routing_env();
    let s = std::sync::Arc::new(env.start());
    let body = read("azure-monitor/test-action-metric-static-threshold.json");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (s, body) = (s.clone(), body.clone());
        tasks.spawn(async move { post(&s, "/api/Trigger", &body).await });
    }
    let mut ids = std::collections::HashSet::new();
    let (mut new, mut dup) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        let (code, ack) = r.unwrap();
        ids.insert(ack["exec_id"].as_str().unwrap().to_string());
        match (code, ack["duplicate"].as_bool()) {
            (202, Some(false)) => new += 1,
            (200, Some(true)) => dup += 1,
            other => panic!("unexpected answer {other:?}: {ack}"),
        }
    }
    assert_eq!(
        (new, dup, ids.len()),
        (1, 19, 1),
        "one execution, nineteen duplicates"
    );
    let (_, all) = s.get("/api/executions?limit=100").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);

    // Resolved is a different state of the same alert: it runs.
    let resolved = body.replace("\"Fired\"", "\"Resolved\"");
    let (code, _) = post(&s, "/api/Trigger", &resolved).await;
    assert_eq!(code, 202);

    // Another rule delivered with the same alertId (as Azure's test notifications are): its
    // own delivery, not a duplicate of the first.
    let other_rule = body.replace("test-metricAlertRule", "other-metricAlertRule");
    assert_ne!(other_rule, body);
    let (code, ack) = post(&s, "/api/Trigger", &other_rule).await;
    assert!(code == 200 || code == 202, "{code} {ack}");
    assert_eq!(ack["duplicate"], false, "{ack}");
    let (code, ack) = post(&s, "/api/Trigger", &other_rule).await;
    assert_eq!(
        (code, ack["duplicate"].as_bool()),
        (200, Some(true)),
        "{ack}"
    );

    // Alertmanager redelivers the same group: duplicates.
    let group = read("alertmanager/generated-v0.25.0-deployment-firing.json");
    let (code, first) = post(&s, "/api/webhooks/alertmanager?id=storage", &group).await;
    assert_eq!(code, 202, "{first}");
    let (code, second) = post(&s, "/api/webhooks/alertmanager?id=storage", &group).await;
    assert_eq!(code, 200);
    assert_eq!(second["alerts"][0]["duplicate"], true);
    assert_eq!(
        second["alerts"][0]["executions"][0]["exec_id"],
        first["alerts"][0]["executions"][0]["exec_id"]
    );

    // Manual triggers honour Idempotency-Key.
    let manual = |key: &'static str| {
        let s = s.clone();
        async move {
            let res = s
                .http
                .post(s.url("/api/Trigger?id=storage"))
                .header("Idempotency-Key", key)
                .send()
                .await
                .unwrap();
            let code = res.status().as_u16();
            let b: Value = res.json().await.unwrap();
            (code, b["exec_id"].as_str().unwrap().to_string())
        }
    };
    let (c1, a) = manual("deploy-42").await;
    let (c2, b) = manual("deploy-42").await;
    let (c3, c) = manual("deploy-43").await;
    assert_eq!((c1, c2, c3), (202, 200, 202));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[tokio::test]
async fn bad_alert_payloads_get_a_4xx_naming_what_is_wrong() {
    let env = routing_env().arg("--body-limit").arg("65536");
    let s = env.start();
    let cases: Vec<(&str, String, Option<&str>, u16, &str)> = vec![
        (
            "/api/Trigger",
            "{not json".into(),
            None,
            400,
            "not valid JSON",
        ),
        (
            "/api/Trigger",
            r#"{"schemaId": "x"}"#.into(),
            None,
            400,
            "$.schemaId",
        ),
        (
            "/api/Trigger",
            r#"{"hello": 1}"#.into(),
            None,
            400,
            "$.schemaId",
        ),
        (
            "/api/Trigger",
            r#"{"schemaId": "azureMonitorCommonAlertSchema", "data": {}}"#.into(),
            None,
            400,
            "$.data.essentials",
        ),
        (
            "/api/Trigger",
            r#"[1, 2]"#.into(),
            None,
            400,
            "$: expected a JSON object",
        ),
        (
            "/api/Trigger?id=storage",
            r#"{"schemaId": "azureMonitorCommonAlertSchema", "data": 5}"#.into(),
            None,
            400,
            "$.data",
        ),
        (
            "/api/Trigger",
            "{}".into(),
            Some("text/plain"),
            400,
            "content-type",
        ),
        ("/api/Trigger", "".into(), None, 400, "no alert body"),
        (
            "/api/Trigger",
            format!("{{\"x\": \"{}\"}}", "a".repeat(70_000)),
            None,
            413,
            "limit",
        ),
        ("/api/webhooks/alertmanager", "".into(), None, 400, "empty"),
        (
            "/api/webhooks/alertmanager",
            r#"{"alerts": 3}"#.into(),
            None,
            400,
            "$.alerts",
        ),
        (
            "/api/webhooks/alertmanager",
            r#"{"version": "4", "alerts": [{"status": "pending"}]}"#.into(),
            None,
            400,
            "$.alerts[0].status",
        ),
        (
            "/api/webhooks/alertmanager?id=ghost",
            r#"{"alerts": []}"#.into(),
            None,
            404,
            "ghost",
        ),
        (
            "/api/routes/test?source=nagios",
            "{}".into(),
            None,
            400,
            "source",
        ),
    ];
    for (path, body, ct, want, needle) in cases {
        let res = s
            .http
            .post(s.url(path))
            .header("content-type", ct.unwrap_or("application/json"))
            .body(body)
            .send()
            .await
            .unwrap();
        let code = res.status().as_u16();
        let b: Value = res.json().await.unwrap();
        assert_eq!(code, want, "{path}: {b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains(needle),
            "{needle:?} not in {b}"
        );
    }
    let (_, all) = s.get("/api/executions?limit=100").await;
    assert!(
        all["items"].as_array().unwrap().is_empty(),
        "nothing recorded for bad input"
    );
    let (code, _) = s.get("/api/healthz").await;
    assert_eq!(code, 200);
}
