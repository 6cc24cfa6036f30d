//! Routing rules decide what runs; skips and routed alerts are recorded.

use super::*;

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
