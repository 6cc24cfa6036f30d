//! Console sessions through the real binary: sign in with a key, the cookie's flags and
//! expiry, CSRF refusal of state-changing requests, sign out everywhere, revoked keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Env, catalog};
use serde_json::{Value, json};

fn plain() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().unwrap()
}

/// Signs in with `key`: the cookie pair (`name=value`), the Set-Cookie line, the answer.
async fn sign_in(s: &common::Server, key: &str) -> (String, String, Value) {
    let res = plain()
        .post(s.url("/api/session"))
        .json(&json!({ "key": key }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let set = res.headers()["set-cookie"].to_str().unwrap().to_string();
    let pair = set.split(';').next().unwrap().to_string();
    (pair, set, res.json().await.unwrap())
}

#[tokio::test]
async fn a_key_signs_in_behind_a_strict_cookie_and_csrf_guards_changes() {
    let env = Env::new(
        &catalog(&[r#"{"id": "a", "runbook": "ok.sh"}"#]),
        &[("ok.sh", "echo ok\n")],
    );
    let s = env.start();
    let key = common::new_key(&s, "alice", "operator").await;
    let (cookie, set, me) = sign_in(&s, &key).await;
    assert!(cookie.starts_with("cloudo_session="), "{set}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(set.contains(flag), "{flag} missing: {set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: no Secure flag: {set}");
    assert!(!set.contains(&key) && !me.to_string().contains(&key));
    assert_eq!(
        (me["name"].as_str(), me["role"].as_str()),
        (Some("alice"), Some("operator"))
    );
    let csrf = me["csrf_token"].as_str().unwrap().to_string();
    assert!(me["expires_at"].is_string());

    let http = plain();
    // Reading with the cookie works; the answer gives the CSRF token again.
    let res = http
        .get(s.url("/api/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let again: Value = res.json().await.unwrap();
    assert_eq!(again["csrf_token"].as_str(), Some(csrf.as_str()));
    assert_eq!(again["via"], "key");
    let res = http
        .get(s.url("/api/executions"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // A change without the token (what a forged cross-site form would send): 403.
    for token in [None, Some("wrong")] {
        let mut req = http
            .post(s.url("/api/Trigger?id=a"))
            .header("cookie", &cookie);
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 403);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "csrf", "{body}");
    }
    // With it: done, and recorded as alice.
    let res = http
        .post(s.url("/api/Trigger?id=a"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        s.wait(body["exec_id"].as_str().unwrap()).await["status"],
        "succeeded"
    );
    // Roles apply: an operator may not create keys.
    let res = http
        .post(s.url("/api/keys"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "x", "role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // Sign out: the cookie is deleted and the session is over.
    let res = http
        .delete(s.url("/api/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(
        res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let res = http
        .get(s.url("/api/executions"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // The audit has the sign-in, the trigger and the sign-out as alice (records are
    // written in batches, off the request path).
    let wanted = [
        "POST /api/session",
        "POST /api/Trigger",
        "DELETE /api/session",
    ];
    let mut actions = Vec::new();
    for _ in 0..50 {
        let (_, audit) = s.get("/api/audit?actor=alice").await;
        actions = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["action"].as_str().unwrap().to_string())
            .collect::<Vec<_>>();
        if wanted.iter().all(|a| actions.iter().any(|x| x == a)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for a in wanted {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} not audited as alice: {actions:?}"
        );
    }
}

#[tokio::test]
async fn bad_keys_are_refused_and_a_revoked_key_ends_its_sessions() {
    let env = Env::new(
        &catalog(&[r#"{"id": "a", "runbook": "ok.sh"}"#]),
        &[("ok.sh", "echo ok\n")],
    );
    let s = env.start();
    let http = plain();
    // Without a declared JSON type (what a cross-site form or no-cors fetch sends): 415,
    // even with a good key (no login CSRF).
    for ct in [None, Some("text/plain")] {
        let mut req = http
            .post(s.url("/api/session"))
            .body(json!({"key": common::ADMIN_KEY}).to_string());
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 415, "{ct:?}");
    }
    for (body, code) in [
        (json!({"key": "cloudo_nope"}), 401),
        (json!({"nokey": 1}), 400),
        (json!("text"), 400),
    ] {
        let res = http
            .post(s.url("/api/session"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), code, "{body}");
        assert!(res.headers().get("set-cookie").is_none());
        let err: Value = res.json().await.unwrap();
        assert!(err["error"]["message"].is_string());
    }
    // A worker key cannot use the console.
    let (code, w) = common::post_json(
        &s.http,
        &s.url("/api/keys"),
        &json!({"name": "w", "role": "worker", "pool": "default"}),
    )
    .await;
    assert_eq!(code, 201);
    let res = http
        .post(s.url("/api/session"))
        .json(&json!({"key": w["key"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    let key = common::new_key(&s, "bob", "viewer").await;
    let (cookie, _, _) = sign_in(&s, &key).await;
    let res = s.http.delete(s.url("/api/keys/bob")).send().await.unwrap();
    assert!(res.status().is_success());
    // Within the key cache's few seconds, the session no longer signs anything in.
    let mut code = 0;
    for _ in 0..40 {
        code = http
            .get(s.url("/api/executions"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if code == 401 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(code, 401);
    // A made-up cookie is nobody.
    let res = http
        .get(s.url("/api/executions"))
        .header("cookie", "cloudo_session=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn over_tls_the_cookie_is_secure_with_the_host_prefix() {
    let env = Env::new(
        &catalog(&[r#"{"id": "a", "runbook": "ok.sh"}"#]),
        &[("ok.sh", "echo ok\n")],
    )
    .arg("--public-url")
    .arg("https://cloudo.example.com")
    .arg("--session-ttl")
    .arg("600");
    let s = env.start();
    let key = common::new_key(&s, "carol", "viewer").await;
    let (cookie, set, _) = sign_in(&s, &key).await;
    assert!(cookie.starts_with("__Host-cloudo_session="), "{set}");
    assert!(
        set.contains("; Secure") && set.contains("Max-Age=600"),
        "{set}"
    );
    let res = plain()
        .get(s.url("/api/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
