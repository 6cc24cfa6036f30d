//! Keys, roles and audit through the real binary: a role x route matrix, query and basic
//! credentials for senders, the keys API and CLI, audit records, no key in any log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
mod keys;
mod roles;
mod runs;

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
    (
        "POST",
        "/api/executions/01a20047-ed88-7272-ba6c-fec97cd44c93/cancel",
        "operator",
    ),
    (
        "POST",
        "/api/executions/01a20047-ed88-7272-ba6c-fec97cd44c93/approve",
        "operator",
    ),
    (
        "POST",
        "/api/executions/01a20047-ed88-7272-ba6c-fec97cd44c93/reject",
        "operator",
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
