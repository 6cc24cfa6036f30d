//! Redelivered alerts run once; bad payloads get a 4xx naming what is wrong.

use super::*;

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
        // Refused before its body was read: the connection ends, and says so (a client
        // that pooled it would fail its next request on it).
        let closes = res
            .headers()
            .get("connection")
            .is_some_and(|v| v == "close");
        let b: Value = res.json().await.unwrap();
        assert_eq!(code, want, "{path}: {b}");
        assert_eq!(
            closes,
            want == 413,
            "{path}: Connection: close iff refused unread"
        );
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
