//! The role x route matrix, and credentials in URLs for senders that cannot set headers.

use super::*;

#[tokio::test]
async fn every_route_enforces_its_role() {
    let env = env();
    let s = env.start();
    let mut keys = vec![("admin".to_string(), ADMIN_KEY.to_string())];
    for role in ["viewer", "operator", "ingest", "worker"] {
        keys.push((
            role.to_string(),
            make_key(&s, &format!("k-{role}"), role, None).await,
        ));
    }
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    let expired = make_key(&s, "k-expiring", "admin", Some(soon)).await;
    let revoked = make_key(&s, "k-revoked", "admin", None).await;
    let res = s
        .http
        .delete(s.url("/api/keys/k-revoked"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let bad_keys = [
        ("none", client(None)),
        ("wrong", client(Some("cloudo_not_a_key"))),
        ("revoked", client(Some(&revoked))),
        ("expired", client(Some(&expired))),
    ];
    for (method, path, needed) in ROUTES {
        for (what, http) in &bad_keys {
            let code = call(http, &s, method, path).await;
            let want_ok = *needed == "none";
            assert_eq!(
                code == 401,
                !want_ok,
                "{what} key on {method} {path}: {code}"
            );
        }
        for (role, key) in &keys {
            let code = call(&client(Some(key)), &s, method, path).await;
            if allowed(role, needed) {
                assert!(
                    code != 401 && code != 403,
                    "{role} on {method} {path}: {code}"
                );
            } else {
                assert_eq!(code, 403, "{role} on {method} {path}");
            }
        }
    }

    // Every state-changing route left audit records, with actor, role and outcome.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, audit) = s.get("/api/audit?limit=1000").await;
    let items = audit["items"].as_array().unwrap();
    let patterns = [
        "GET /api/Trigger",
        "POST /api/Trigger",
        "GET /api/Trigger/{team}",
        "POST /api/Trigger/{team}",
        "POST /api/webhooks/alertmanager",
        "PUT /api/routes",
        "POST /api/routes/test",
        "POST /api/runbooks/refresh",
        "POST /api/keys",
        "DELETE /api/keys/{name}",
        "POST /api/worker/executions/{exec_id}/start",
        "POST /api/worker/executions/{exec_id}/heartbeat",
        "POST /api/worker/executions/{exec_id}/finish",
        "POST /api/worker/executions/{exec_id}/payload",
    ];
    for action in patterns {
        let recs: Vec<&Value> = items.iter().filter(|r| r["action"] == action).collect();
        assert!(
            recs.iter()
                .any(|r| r["outcome"] == 401 && r["actor"] == "unknown"),
            "{action}: refusal audited"
        );
        assert!(
            recs.iter().any(|r| r["outcome"] == 403),
            "{action}: forbidden audited"
        );
        assert!(
            recs.iter()
                .any(|r| r["outcome"].as_u64().is_some_and(|c| c != 401 && c != 403)),
            "{action}: allowed call audited"
        );
        assert!(
            recs.iter()
                .all(|r| r["source"] == "127.0.0.1" && r["at"].is_string()),
            "{action}"
        );
    }
    assert!(
        !items
            .iter()
            .any(|r| r["action"].as_str().unwrap().starts_with("GET")
                && !r["action"].as_str().unwrap().contains("Trigger")),
        "reads are not audited"
    );
}

#[tokio::test]
async fn senders_without_headers_use_ingest_keys_in_the_url_and_everything_is_audited() {
    let env = env();
    let s = env.start();
    let ingest = make_key(&s, "azure-ag", "ingest", None).await;
    let anon = client(None);
    let res = anon
        .post(s.url(&format!("/api/Trigger?id=ok&code={ingest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let res = anon
        .post(s.url(&format!("/api/Trigger?id=ok&x-cloud-key={ingest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "ClouDO's query parameter");
    let res = anon
        .get(s.url(&format!("/api/executions?code={ingest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "keys in URLs only on ingest routes");
    let res = anon
        .post(s.url("/api/webhooks/alertmanager?id=ok"))
        .basic_auth("alertmanager", Some(&ingest))
        .header("content-type", "application/json")
        .body(r#"{"version": "4", "alerts": []}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "basic auth with the key as password");
    let viewer = make_key(&s, "dash", "viewer", None).await;
    let res = client(Some(&viewer))
        .post(s.url("/api/Trigger?id=ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // The CLI writes keys into the running server's database.
    let cli_key = stdout_of(
        std::process::Command::new(env!("CARGO_BIN_EXE_cloudo"))
            .args([
                "keys",
                "create",
                "--name",
                "from-cli",
                "--role",
                "operator",
                "--data-dir",
            ])
            .arg(env.path().join("data")),
    )
    .trim()
    .to_string();
    let res = client(Some(&cli_key))
        .post(s.url("/api/Trigger?id=ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);

    // Key API refusals.
    let res = post_json(
        &s.http,
        &s.url("/api/keys"),
        &json!({"name": "dash", "role": "viewer"}),
    )
    .await;
    assert_eq!(res.0, 409);
    let res = post_json(
        &s.http,
        &s.url("/api/keys"),
        &json!({"name": "x", "role": "root"}),
    )
    .await;
    assert_eq!(res.0, 400);
    let (_, listed) = s.get("/api/keys").await;
    let text = listed.to_string();
    assert!(
        text.contains("from-cli") && !text.contains(&cli_key) && !text.contains("hash"),
        "{text}"
    );

    // Audit: who, role, action, target, source, outcome; refusals too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, audit) = s.get("/api/audit?limit=100").await;
    let items = audit["items"].as_array().unwrap();
    let find = |actor: &str, outcome: u64| {
        items
            .iter()
            .find(|r| r["actor"] == actor && r["outcome"] == outcome)
            .cloned()
    };
    let r = find("azure-ag", 202).expect("ingest trigger audited");
    assert_eq!(r["action"], "POST /api/Trigger");
    assert_eq!(
        (r["role"].as_str(), r["source"].as_str()),
        (Some("ingest"), Some("127.0.0.1"))
    );
    assert!(find("dash", 403).is_some(), "a refused trigger is audited");
    assert!(find("admin", 201).is_some(), "key creation audited");
    let (_, only_dash) = s.get("/api/audit?actor=dash").await;
    assert!(
        only_dash["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["actor"] == "dash")
    );

    // No key reaches the logs.
    let logs = s.logs();
    for k in [ADMIN_KEY, &ingest, &viewer, &cli_key] {
        assert!(!logs.contains(k), "a key is in the logs");
    }
}
