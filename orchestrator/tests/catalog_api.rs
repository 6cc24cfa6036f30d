//! The catalog over the API, through the real binary: read (scoped), replace as a whole
//! (admin; checked as at start-up, refusals naming the entry and field), applied at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Env, catalog};
use serde_json::{Value, json};

async fn put_catalog(s: &common::Server, http: &reqwest::Client, text: &str) -> (u16, Value) {
    common::answer(
        http.put(s.url("/api/schemas"))
            .header("content-type", "application/json")
            .body(text.to_string()),
    )
    .await
}

#[tokio::test]
async fn start_up_warns_of_catalog_entries_without_their_runbook() {
    let env = Env::new(
        &catalog(&[r#"{"id": "a", "runbook": "missing.sh", "verify": {"runbook": "ok.sh"}}"#]),
        &[("ok.sh", "echo ok\n")],
    );
    let s = env.start();
    let logs = s.logs();
    assert!(
        logs.contains("the catalog names a runbook that does not exist")
            && logs.contains("missing.sh"),
        "{logs}"
    );
    assert!(
        !logs.contains("\"runbook\":\"ok.sh\""),
        "the verify runbook exists"
    );
}

#[tokio::test]
async fn the_catalog_is_read_and_replaced_over_the_api() {
    let env = Env::new(
        &catalog(&[
            r#"{"id": "a", "runbook": "ok.sh", "tags": "payments"}"#,
            r#"{"id": "b", "runbook": "ok.sh"}"#,
        ]),
        &[("ok.sh", "echo ok\n")],
    );
    let s = env.start();
    let (code, list) = s.get("/api/schemas").await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["schemas"].as_array().unwrap().len(), 2);
    assert!(
        list["file"].as_str().unwrap().ends_with("schemas.json"),
        "{list}"
    );
    let (code, a) = s.get("/api/schemas/a").await;
    assert_eq!((code, a["runbook"].as_str()), (200, Some("ok.sh")), "{a}");
    let (code, missing) = s.get("/api/schemas/zzz").await;
    assert_eq!(
        (code, missing["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    // A key scoped to tag:payments sees only that schema.
    let (code, key) = common::post_json(
        &s.http,
        &s.url("/api/keys"),
        &json!({"name": "pay", "role": "viewer", "scope": ["tag:payments"]}),
    )
    .await;
    assert_eq!(code, 201, "{key}");
    let pay = common::client(key["key"].as_str());
    let seen: Value = pay
        .get(s.url("/api/schemas"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = seen["schemas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["a"]);
    assert_eq!(
        pay.get(s.url("/api/schemas/b"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let (code, _) = put_catalog(&s, &pay, "[]").await;
    assert_eq!(code, 403, "viewers do not write");

    // A bad catalog is refused with the entry and field named; nothing changes.
    let bad =
        r#"[{"partition_key": "p", "entity": [{"id": "c", "runbook": "ok.sh", "oncall": "yes"}]}]"#;
    let (code, body) = put_catalog(&s, &s.http, bad).await;
    assert_eq!(code, 400, "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains(r#"entry [0].entity[0] (id "c"), field "oncall""#),
        "{msg}"
    );
    assert_eq!(s.get("/api/schemas/a").await.0, 200);

    // A good one replaces all at once and runs.
    let good = catalog(&[r#"{"id": "c", "runbook": "ok.sh", "max_concurrency": 1}"#]);
    let (code, body) = put_catalog(&s, &s.http, &good).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["schemas"][0]["id"], "c");
    assert_eq!(s.get("/api/schemas/a").await.0, 404);
    let id = s.trigger("c").await;
    assert_eq!(s.wait(&id).await["status"], "succeeded");

    // One entry at a time: added, refused with its field named, replaced, deleted.
    let put_one = |id: &str, body: Value| {
        let (http, url) = (s.http.clone(), s.url(&format!("/api/schemas/{id}")));
        async move {
            let res = http.put(url).json(&body).send().await.unwrap();
            let code = res.status().as_u16();
            (code, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (code, d) = put_one(
        "d",
        json!({"runbook": "ok.sh", "partition_key": "ops", "oncall": "true"}),
    )
    .await;
    assert_eq!(code, 200, "{d}");
    assert_eq!(
        (d["partition_key"].as_str(), d["oncall"].as_bool()),
        (Some("ops"), Some(true))
    );
    let (code, bad) = put_one("d", json!({"runbook": "ok.sh", "timeout": 0})).await;
    assert_eq!(code, 400, "{bad}");
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains(r#"field "timeout""#),
        "{bad}"
    );
    let (code, d) = put_one("d", json!({"runbook": "other.sh"})).await;
    assert_eq!(
        (code, d["partition_key"].as_str()),
        (200, Some("ops")),
        "kept: {d}"
    );
    let (_, list) = s.get("/api/schemas").await;
    assert_eq!(list["schemas"].as_array().unwrap().len(), 2, "{list}");
    assert_eq!(
        s.http
            .delete(s.url("/api/schemas/d"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        s.http
            .delete(s.url("/api/schemas/d"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // Readiness reports entries whose runbook does not exist (without making the
    // service unready), and the log names them.
    let (code, ready) = s.get("/api/readyz").await;
    assert_eq!(
        (code, ready["checks"]["catalog"]["ok"].as_bool()),
        (200, Some(true)),
        "{ready}"
    );
    let (code, _) = put_one("ghost", json!({"runbook": "nope.sh"})).await;
    assert_eq!(code, 200);
    let (code, ready) = s.get("/api/readyz").await;
    assert_eq!(code, 200, "{ready}");
    assert_eq!(
        ready["checks"]["catalog"],
        json!({"ok": false, "missing_runbooks": 1})
    );
    common::until(
        || s.logs().contains("runbook does not exist") && s.logs().contains("nope.sh"),
        "the log names the missing runbook",
    )
    .await;
    let (_, audit) = s.get("/api/audit?limit=50").await;
    assert!(
        audit.to_string().contains("/api/schemas"),
        "audited: {audit}"
    );
}

/// A change made through one orchestrator reaches another on the same Azure store.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_catalog_change_reaches_a_second_orchestrator() {
    use common::azure::{connection_string, uuid_like};
    let prefix = format!("cat{}", uuid_like());
    let env = || {
        Env::new(
            &catalog(&[r#"{"id": "a", "runbook": "ok.sh"}"#]),
            &[("ok.sh", "echo ok\n")],
        )
        .arg("--backend")
        .arg("azure")
        .env(
            "CLOUDO_AZURE_STORAGE_CONNECTION_STRING",
            &connection_string(),
        )
        .env("CLOUDO_AZURE_PREFIX", &prefix)
    };
    let (env_a, env_b) = (env(), env());
    let a = env_a.start();
    let b = env_b.start();
    let res = a
        .http
        .put(a.url("/api/schemas/new-one"))
        .json(&json!({"runbook": "ok.sh"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let t = std::time::Instant::now();
    loop {
        if b.get("/api/schemas/new-one").await.0 == 200 {
            break;
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(15),
            "never reached b"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// `GET /api/schemas/{id}` carries its ClouDO `entity`, which `PUT` takes back unchanged:
/// an editor changes one field and keeps every other setting.
#[tokio::test]
async fn a_schema_entity_goes_back_through_put_unchanged() {
    let env = Env::new(
        &catalog(&[
            r#"{"id": "a", "runbook": "ok.sh", "max_concurrency": 2, "approval_timeout": 600,
                "require_approval": true, "tags": "x,y", "schedule": "0 3 * * *"}"#,
        ]),
        &[("ok.sh", "echo ok\n")],
    );
    let s = env.start();
    let (_, before) = s.get("/api/schemas/a").await;
    let mut entity = before["entity"].clone();
    entity["description"] = json!("changed here");
    let res = s
        .http
        .put(s.url("/api/schemas/a"))
        .json(&entity)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let (_, after) = s.get("/api/schemas/a").await;
    assert_eq!(after["description"], "changed here");
    for k in [
        "policy",
        "approval",
        "tags",
        "schedule",
        "require_approval",
        "partition_key",
    ] {
        assert_eq!(after[k], before[k], "{k} changed");
    }
}
