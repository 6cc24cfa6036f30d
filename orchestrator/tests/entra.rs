//! Entra ID "Secure Webhook" tokens on the ingest routes, against keys and a JWKS served by
//! the test on loopback: valid, bad signature, wrong audience, expired, missing role,
//! unknown key id.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::jwt::{rsa_key, token};
use common::{Env, Server, catalog, client};
use serde_json::json;

const TENANT: &str = "11111111-2222-3333-4444-555555555555";
const AUDIENCE: &str = "api://cloudo-webhook";

fn claims(aud: &str, exp_in: i64, roles: &[&str]) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "aud": aud,
        "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
        "iat": now - 10,
        "nbf": now - 10,
        "exp": now + exp_in,
        "appid": "461e8683-5575-4561-ac7f-899cc907d62a",
        "roles": roles,
    })
}

async fn post_with(s: &Server, token: &str) -> u16 {
    client(Some(token))
        .post(s.url("/api/Trigger?id=ok"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_webhook_tokens_are_checked_against_the_tenant_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (pem1, n1) = rsa_key(dir.path(), "k1.pem");
    let (pem2, _) = rsa_key(dir.path(), "k2.pem");
    let jwks =
        json!({"keys": [{"kty": "RSA", "use": "sig", "kid": "kid-1", "n": n1, "e": "AQAB"}]});
    let app = axum::Router::new().route(
        "/keys",
        axum::routing::get(move || async move { axum::Json(jwks) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let env = Env::new(
        &catalog(&[r#"{"id": "ok", "runbook": "ok.sh"}"#]),
        &[("ok.sh", "echo ok\n")],
    )
    .arg("--entra-tenant")
    .arg(TENANT)
    .arg("--entra-audience")
    .arg(AUDIENCE)
    .arg("--entra-jwks-url")
    .arg(&format!("http://{addr}/keys"));
    let mut s = env.start();
    let role = ["ActionGroupsSecureWebhook"];

    let good = token(&pem1, "kid-1", claims(AUDIENCE, 600, &role));
    assert_eq!(
        post_with(&s, &good).await,
        202,
        "a valid token is an ingest caller"
    );
    let res = client(Some(&good))
        .get(s.url("/api/executions"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "tokens serve the ingest routes only");

    for (what, t, want) in [
        (
            "bad signature",
            token(&pem2, "kid-1", claims(AUDIENCE, 600, &role)),
            401,
        ),
        (
            "wrong audience",
            token(&pem1, "kid-1", claims("api://other", 600, &role)),
            401,
        ),
        (
            "expired",
            token(&pem1, "kid-1", claims(AUDIENCE, -3600, &role)),
            401,
        ),
        (
            "missing role",
            token(&pem1, "kid-1", claims(AUDIENCE, 600, &["Reader"])),
            403,
        ),
        (
            "unknown kid",
            token(&pem1, "kid-9", claims(AUDIENCE, 600, &role)),
            401,
        ),
    ] {
        assert_eq!(post_with(&s, &t).await, want, "{what}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, audit) = s
        .get("/api/audit?actor=entra:461e8683-5575-4561-ac7f-899cc907d62a")
        .await;
    assert_eq!(audit["items"][0]["role"], "ingest", "{audit}");
    assert!(
        !s.final_logs().await.contains(&good),
        "tokens are not logged"
    );
}
