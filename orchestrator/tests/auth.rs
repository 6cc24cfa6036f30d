//! Keys, roles and audit through the real binary: a role x route matrix, query and basic
//! credentials for senders, the keys API and CLI, audit records, no key in any log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{ADMIN_KEY, Env, Server, catalog, client, post_json, stdout_of};
use serde_json::{Value, json};

/// (method, sample path, role needed) for every route of docs/security.md.
const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/api/Trigger?id=ok", "ingest"),
    ("POST", "/api/Trigger?id=ok", "ingest"),
    ("GET", "/api/Trigger/team-a?id=ok", "ingest"),
    ("POST", "/api/Trigger/team-a?id=ok", "ingest"),
    ("POST", "/api/webhooks/alertmanager?id=ok", "ingest"),
    ("GET", "/api/routes", "viewer"),
    ("PUT", "/api/routes", "admin"),
    ("POST", "/api/routes/test", "operator"),
    ("GET", "/api/runbooks", "viewer"),
    ("POST", "/api/runbooks/refresh", "operator"),
    ("GET", "/api/runbooks/ok.sh", "viewer"),
    ("GET", "/api/executions", "viewer"),
    (
        "GET",
        "/api/executions/01a20047-ed88-7272-ba6c-fec97cd44c93",
        "viewer",
    ),
    ("GET", "/api/logs", "viewer"),
    (
        "GET",
        "/api/logs/20261121/01a20047-ed88-7272-ba6c-fec97cd44c93",
        "viewer",
    ),
    ("GET", "/api/keys", "admin"),
    ("POST", "/api/keys", "admin"),
    ("DELETE", "/api/keys/nobody", "admin"),
    ("GET", "/api/audit", "admin"),
    (
        "POST",
        "/api/worker/executions/01a20047-ed88-7272-ba6c-fec97cd44c93/start",
        "worker",
    ),
    (
        "POST",
        "/api/worker/executions/01a20047-ed88-7272-ba6c-fec97cd44c93/heartbeat",
        "worker",
    ),
    (
        "POST",
        "/api/worker/executions/01a20047-ed88-7272-ba6c-fec97cd44c93/finish",
        "worker",
    ),
    (
        "POST",
        "/api/worker/executions/01a20047-ed88-7272-ba6c-fec97cd44c93/payload",
        "worker",
    ),
    ("GET", "/api/healthz", "none"),
    ("GET", "/api/readyz", "none"),
];

fn allowed(role: &str, needed: &str) -> bool {
    match needed {
        "none" => true,
        "viewer" => matches!(role, "viewer" | "operator" | "admin"),
        "ingest" => matches!(role, "ingest" | "operator" | "admin"),
        "operator" => matches!(role, "operator" | "admin"),
        "worker" => role == "worker",
        _ => role == "admin",
    }
}

fn body_for(path: &str) -> Option<&'static str> {
    if path.starts_with("/api/webhooks") {
        Some(r#"{"version": "4", "alerts": []}"#)
    } else if path == "/api/routes" {
        Some(r#"{"rules": []}"#)
    } else if path == "/api/routes/test" {
        Some(r#"{"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {}}}"#)
    } else if path == "/api/keys" {
        Some(r#"{"name": "made-in-matrix", "role": "viewer"}"#)
    } else if path.ends_with("/start") || path.ends_with("/heartbeat") || path.ends_with("/payload")
    {
        Some(r#"{"worker_id": "w1", "delivery": "m:1"}"#)
    } else if path.ends_with("/finish") {
        Some(r#"{"worker_id": "w1", "delivery": "m:1", "status": "succeeded"}"#)
    } else {
        None
    }
}

async fn call(http: &reqwest::Client, s: &Server, method: &str, path: &str) -> u16 {
    let mut req = http.request(method.parse().unwrap(), s.url(path));
    if let Some(b) = body_for(path) {
        req = req.header("content-type", "application/json").body(b);
    }
    req.send().await.unwrap().status().as_u16()
}

async fn make_key(s: &Server, name: &str, role: &str, expires: Option<String>) -> String {
    let mut body = json!({"name": name, "role": role});
    if role == "worker" {
        body["pool"] = json!("default");
    }
    if let Some(e) = expires {
        body["expires_at"] = json!(e);
    }
    let res = s
        .http
        .post(s.url("/api/keys"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["role"], role);
    assert!(v.get("hash").is_none());
    v["key"].as_str().unwrap().to_string()
}

fn env() -> Env {
    Env::new(
        &catalog(&[r#"{"id": "ok", "runbook": "ok.sh"}"#]),
        &[("ok.sh", "echo ok\n")],
    )
}

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

#[tokio::test]
async fn without_keys_a_first_admin_key_is_printed_once_and_dev_mode_is_loud() {
    let env = env().env("CLOUDO_ADMIN_KEY", "");
    let mut s = env.start();
    let logs = s.logs();
    let key = logs
        .split_whitespace()
        .find(|w| w.starts_with("cloudo_") && w.len() == 71)
        .unwrap_or_else(|| panic!("no key printed: {logs}"))
        .to_string();
    let res = client(Some(&key))
        .get(s.url("/api/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the printed key is an admin key");
    s.stop();
    drop(s);
    let s = env.start();
    assert!(!s.logs().contains("shown only now"), "printed once only");
    drop(s);

    let dev = self::env().arg("--dev-no-auth");
    let s = dev.start();
    assert!(s.logs().contains("AUTHENTICATION IS OFF"), "{}", s.logs());
    let res = client(None)
        .post(s.url("/api/Trigger?id=ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
}

#[tokio::test]
async fn ingest_is_rate_limited_per_client() {
    let env = env().arg("--ingest-rate").arg("5");
    let s = env.start();
    let mut codes = Vec::new();
    for _ in 0..14 {
        let res = s
            .http
            .post(s.url("/api/Trigger?id=ok"))
            .send()
            .await
            .unwrap();
        if res.status() == 429 {
            let retry: u64 = res.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=2).contains(&retry), "{retry}");
        }
        codes.push(res.status().as_u16());
    }
    assert_eq!(
        codes.iter().filter(|&&c| c == 202).count(),
        10,
        "a burst of twice the rate: {codes:?}"
    );
    assert!(codes[10..].iter().all(|&c| c == 429), "{codes:?}");
    let (code, _) = s.get("/api/executions").await;
    assert_eq!(code, 200, "reads are not limited");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = s
        .http
        .post(s.url("/api/Trigger?id=ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "tokens come back");
}

#[tokio::test]
async fn named_secrets_reach_only_their_runbook_and_are_masked() {
    let secret = "s3cr3t-value-7f2a9c";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.json");
    std::fs::write(&file, r#"{"DB_PASSWORD": "file-secret-81bc"}"#).unwrap();
    let env = Env::new(
        &catalog(&[
            r#"{"id": "uses", "runbook": "show.sh", "secrets": ["API_TOKEN", "DB_PASSWORD"]}"#,
            r#"{"id": "other", "runbook": "show.sh"}"#,
            r#"{"id": "missing", "runbook": "show.sh", "secrets": ["NOT_THERE"]}"#,
        ]),
        &[("show.sh", "echo \"token=$API_TOKEN db=${DB_PASSWORD:-}\"; env | grep -c -e s3cr3t -e file-secret || true\n")],
    )
    .env("CLOUDO_SECRET_API_TOKEN", secret)
    .arg("--secrets-file")
    .arg(file.to_str().unwrap());
    let s = env.start();
    let e = s.wait(&s.trigger("uses").await).await;
    assert_eq!(e["status"], "succeeded", "{e}");
    assert_eq!(
        e["output"], "token=*** db=***\n2\n",
        "values arrive, and are masked in the output"
    );
    assert_eq!(
        e["secrets"],
        json!(["API_TOKEN", "DB_PASSWORD"]),
        "names are recorded, not values"
    );
    let e = s.wait(&s.trigger("other").await).await;
    assert_eq!(
        e["output"], "token= db=\n0\n",
        "a runbook that does not name them does not get them"
    );
    let e = s.wait(&s.trigger("missing").await).await;
    assert_eq!(e["status"], "error");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("secret NOT_THERE is not available"),
        "{e}"
    );
    let (_, all) = s.get("/api/executions?limit=10").await;
    assert!(!all.to_string().contains(secret));
    assert!(!s.logs().contains(secret) && !s.logs().contains("file-secret-81bc"));
}

#[tokio::test]
async fn worker_keys_report_only_on_their_pool() {
    let env = Env::new(
        &catalog(&[
            r#"{"id": "remote", "runbook": "ok.sh", "worker": "aks"}"#,
            r#"{"id": "elsewhere", "runbook": "ok.sh", "worker": "vm"}"#,
        ]),
        &[("ok.sh", "echo ok\n")],
    )
    // No in-process worker: the jobs wait for standalone workers.
    .arg("--worker-pools")
    .arg("none");
    let s = env.start();
    let res = post_json(
        &s.http,
        &s.url("/api/keys"),
        &json!({"name": "w", "role": "worker"}),
    )
    .await;
    assert_eq!(res.0, 400, "a worker key needs a pool");
    let res = post_json(
        &s.http,
        &s.url("/api/keys"),
        &json!({"name": "v", "role": "viewer", "pool": "aks"}),
    )
    .await;
    assert_eq!(res.0, 400, "only worker keys have a pool");
    let res = post_json(
        &s.http,
        &s.url("/api/keys"),
        &json!({"name": "aks-1", "role": "worker", "pool": "aks"}),
    )
    .await;
    let aks = res.1;
    assert_eq!(aks["pool"], "aks");
    let aks = client(aks["key"].as_str());
    let res = post_json(
        &s.http,
        &s.url("/api/keys"),
        &json!({"name": "vm-1", "role": "worker", "pool": "vm"}),
    )
    .await;
    let vm = res.1;
    let vm = client(vm["key"].as_str());

    let id = s.trigger("remote").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, e) = s.get(&format!("/api/executions/{id}")).await;
    assert_eq!(e["status"], "accepted", "queued for a standalone worker");

    let path = |what: &str| s.url(&format!("/api/worker/executions/{id}/{what}"));
    let run = json!({"worker_id": "aks-host", "delivery": "m-0:1"});
    let with_run = |extra: Value| {
        let mut b = run.clone();
        if let (Some(b), Some(extra)) = (b.as_object_mut(), extra.as_object()) {
            b.extend(extra.clone());
        }
        b
    };
    let res = post_json(
        &vm,
        &path("start"),
        &json!({"worker_id": "vm-host", "delivery": "m-0:1"}),
    )
    .await;
    assert_eq!(res.0, 403, "another pool's worker");
    let res = post_json(&s.http, &path("start"), &run).await;
    assert_eq!(res.0, 403, "an admin is not a worker");
    let res = post_json(&aks, &path("start"), &json!({"worker_id": "aks-host"})).await;
    assert_eq!(res.0, 400, "the delivery is required");
    let res = post_json(&aks, &path("start"), &run).await;
    assert_eq!(res.1["run"], true);
    let res = post_json(
        &aks,
        &path("start"),
        &json!({"worker_id": "aks-host", "delivery": "m-0:2"}),
    )
    .await;
    assert_eq!(res.1["run"], false, "started once only");
    let res = post_json(&aks, &path("heartbeat"), &run).await;
    assert_eq!(res.1["running"], true);
    let res = post_json(
        &vm,
        &path("finish"),
        &with_run(json!({"status": "succeeded"})),
    )
    .await;
    assert_eq!(res.0, 403);
    let res = post_json(&aks, &path("finish"), &with_run(json!({"status": "failed", "reason": "exit code 2", "exit_code": 2, "output": "boom\n", "sandbox": "docker"}))).await;
    assert_eq!(res.0, 200);
    let res = post_json(
        &aks,
        &path("finish"),
        &with_run(json!({"status": "succeeded"})),
    )
    .await;
    assert_eq!(res.0, 409, "a final status is final");
    let e = s.wait(&id).await;
    assert_eq!(
        (
            e["status"].as_str(),
            e["exit_code"].as_i64(),
            e["worker_id"].as_str()
        ),
        (Some("failed"), Some(2), Some("aks-host"))
    );
    assert_eq!(
        (e["output"].as_str(), e["sandbox"].as_str()),
        (Some("boom\n"), Some("docker"))
    );

    // A start whose answer was lost (the orchestrator died after recording it) is asked
    // again for the same delivery: run it. Another delivery or worker: drop it.
    let id = s.trigger("remote").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = s.url(&format!("/api/worker/executions/{id}/start"));
    let first = json!({"worker_id": "aks-host", "delivery": "m-1:1"});
    assert_eq!(post_json(&aks, &start, &first).await.1["run"], true);
    assert_eq!(
        post_json(&aks, &start, &first).await.1["run"],
        true,
        "the same delivery asking again"
    );
    let later = json!({"worker_id": "aks-host", "delivery": "m-1:2"});
    assert_eq!(post_json(&aks, &start, &later).await.1["run"], false);
    let other = json!({"worker_id": "aks-other", "delivery": "m-1:1"});
    assert_eq!(post_json(&aks, &start, &other).await.1["run"], false);
    // The execution shows a digest of the delivery, never the delivery a report needs.
    let e = s.get(&format!("/api/executions/{id}")).await.1;
    let reason = e["transitions"][1]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("delivery ") && !reason.contains("m-1"),
        "{e}"
    );
}
