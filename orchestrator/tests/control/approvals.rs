//! The approval gate through the API: who may decide, how many must, expiry, what runs.

use super::*;
use common::{Env, catalog, client};
use serde_json::json;

/// Operator keys for three people; their clients.
async fn people(s: &Server) -> Vec<(String, reqwest::Client)> {
    let mut out = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let (code, k) = common::post_json(
            &s.http,
            &s.url("/api/keys"),
            &json!({"name": name, "role": "operator"}),
        )
        .await;
        assert_eq!(code, 201, "{k}");
        out.push((name.to_string(), client(k["key"].as_str())));
    }
    out
}

async fn as_(c: &reqwest::Client, s: &Server, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = c.post(s.url(path));
    if let Some(b) = body {
        req = req.json(&b);
    }
    crate::common::answer(req).await
}

async fn trigger_as(c: &reqwest::Client, s: &Server, id: &str) -> Value {
    let (code, t) = as_(c, s, &format!("/api/Trigger?id={id}"), None).await;
    assert_eq!(code, 202, "{t}");
    assert_eq!(t["status"], "pending", "{t}");
    t
}

fn gated_catalog(run_args: &str) -> String {
    catalog(&[
        &format!(
            r#"{{"id": "gated", "runbook": "say.sh", "run_args": "{run_args}", "require_approval": "true"}}"#
        ),
        r#"{"id": "two", "runbook": "say.sh", "run_args": "two", "require_approval": true, "approvals_required": 2}"#,
        r#"{"id": "mine", "runbook": "say.sh", "run_args": "mine", "require_approval": true, "self_approval": "true"}"#,
        r#"{"id": "brief", "runbook": "say.sh", "run_args": "brief", "require_approval": true, "approval_timeout": 2}"#,
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_need_other_people_enough_of_them_in_time() {
    let env = Env::new(
        &gated_catalog("v1"),
        &[("say.sh", "echo \"said $* to ${RESOURCE_NAME:-nobody}\"\n")],
    )
    .arg("--lost-after")
    .arg("6");
    let s = env.start();
    let people = people(&s).await;
    let (alice, bob, carol) = (&people[0].1, &people[1].1, &people[2].1);

    // Pending, with its request; the requester cannot approve it, someone else can.
    let t = trigger_as(alice, &s, "gated").await;
    let id = t["exec_id"].as_str().unwrap().to_string();
    let (_, e) = s.get(&format!("/api/executions/{id}")).await;
    assert_eq!(e["status"], "pending");
    assert_eq!(e["approval"]["requested_by"], "alice", "{e}");
    assert_eq!(e["approval"]["required"], 1);
    assert!(
        e["transitions"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("waiting for approval"),
        "{e}"
    );
    let (code, r) = as_(alice, &s, &format!("/api/executions/{id}/approve"), None).await;
    assert_eq!(code, 409, "{r}");
    assert_eq!(r["error"]["code"], "decision_refused");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("self-approval"),
        "{r}"
    );
    let (code, r) = as_(
        bob,
        &s,
        &format!("/api/executions/{id}/approve"),
        Some(json!({"comment": "looks right"})),
    )
    .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["status"], "accepted", "{r}");
    let done = s.wait(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["output"], "said v1 to nobody\n");
    let d = &done["approval"]["approvals"][0];
    assert_eq!(
        (
            d["by"].as_str(),
            d["via"].as_str(),
            d["decision"].as_str(),
            d["comment"].as_str()
        ),
        (
            Some("bob"),
            Some("api"),
            Some("approve"),
            Some("looks right")
        ),
        "{done}"
    );
    assert!(
        done["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["reason"] == "approved by bob"),
        "{done}"
    );

    // Rejected: never runs, and says who and why.
    let id = trigger_as(alice, &s, "gated").await["exec_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, r) = as_(
        carol,
        &s,
        &format!("/api/executions/{id}/reject"),
        Some(json!({"comment": "not during the freeze"})),
    )
    .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["status"], "rejected");
    assert_eq!(r["error"], "rejected by carol (api): not during the freeze");
    assert_eq!(r["started_at"], Value::Null);
    let (code, r) = as_(bob, &s, &format!("/api/executions/{id}/approve"), None).await;
    assert_eq!(code, 409, "decided requests take no more decisions: {r}");

    // Two distinct approvers.
    let id = trigger_as(alice, &s, "two").await["exec_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, r) = as_(bob, &s, &format!("/api/executions/{id}/approve"), None).await;
    assert_eq!(r["status"], "pending", "one of two: {r}");
    let (code, r) = as_(bob, &s, &format!("/api/executions/{id}/approve"), None).await;
    assert_eq!(code, 409, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already decided"),
        "{r}"
    );
    let (_, r) = as_(carol, &s, &format!("/api/executions/{id}/approve"), None).await;
    assert_eq!(r["status"], "accepted", "{r}");
    assert_eq!(s.wait(&id).await["output"], "said two to nobody\n");

    // A cancelled request never runs and takes no more decisions.
    let id = trigger_as(alice, &s, "gated").await["exec_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, r) = as_(bob, &s, &format!("/api/executions/{id}/cancel"), None).await;
    assert_eq!((code, r["status"].as_str()), (200, Some("stopped")), "{r}");
    assert_eq!(r["error"], "cancelled by bob");
    let (code, _) = as_(carol, &s, &format!("/api/executions/{id}/approve"), None).await;
    assert_eq!(code, 409);

    // Self-approval where the schema allows it.
    let id = trigger_as(alice, &s, "mine").await["exec_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, r) = as_(alice, &s, &format!("/api/executions/{id}/approve"), None).await;
    assert_eq!((code, r["status"].as_str()), (200, Some("accepted")), "{r}");
    assert_eq!(s.wait(&id).await["status"], "succeeded");

    // Nobody decides in time: rejected as expired, and too late to approve.
    let id = trigger_as(alice, &s, "brief").await["exec_id"]
        .as_str()
        .unwrap()
        .to_string();
    let e = s.wait(&id).await;
    assert_eq!(e["status"], "rejected", "{e}");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .starts_with("expired: not approved by"),
        "{e}"
    );
    assert_eq!(e["approval"]["approvals"][0]["via"], "expiry", "{e}");
    let (code, _) = as_(bob, &s, &format!("/api/executions/{id}/approve"), None).await;
    assert_eq!(code, 409);

    // An alert that chooses a gated schema waits too, its variables kept for the run.
    let alert = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/azure-monitor/test-action-metric-static-threshold.json"),
    )
    .unwrap();
    let res = s
        .http
        .post(s.url("/api/Trigger?id=gated"))
        .header("content-type", "application/json")
        .body(alert)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let t: Value = res.json().await.unwrap();
    assert_eq!(t["status"], "pending", "{t}");
    let id = t["exec_id"].as_str().unwrap().to_string();
    let (_, e) = s.get(&format!("/api/executions/{id}")).await;
    assert_eq!(e["approval"]["requested_by"], "alert", "{e}");
    let (_, r) = as_(bob, &s, &format!("/api/executions/{id}/approve"), None).await;
    assert_eq!(r["status"], "accepted", "{r}");
    let out = s.wait(&id).await["output"].as_str().unwrap().to_string();
    assert!(
        out.starts_with("said v1 to ") && !out.contains("nobody"),
        "{out}"
    );

    // Listed by status; a bad body or comment is a clear 400; every decision is audited.
    let pending = trigger_as(alice, &s, "two").await["exec_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, list) = s.get("/api/executions?status=pending").await;
    assert_eq!(list["items"][0]["exec_id"], pending.as_str(), "{list}");
    assert_eq!(list["items"][0]["approval"]["required"], 2, "{list}");
    let count = |list: &Value| list["items"].as_array().unwrap().len();
    for (state, n) in [
        ("pending", 1),
        ("approved", 4),
        ("rejected", 1),
        ("expired", 1),
    ] {
        let (_, list) = s
            .get(&format!("/api/executions?approval={state}&limit=100"))
            .await;
        assert_eq!(count(&list), n, "{state}: {list}");
    }
    let (code, _) = s.get("/api/executions?approval=maybe").await;
    assert_eq!(code, 400);
    let (code, r) = as_(
        bob,
        &s,
        &format!("/api/executions/{pending}/approve"),
        Some(json!({"coment": "typo"})),
    )
    .await;
    assert_eq!(code, 400, "{r}");
    let long = "x".repeat(2001);
    let (code, _) = as_(
        bob,
        &s,
        &format!("/api/executions/{pending}/approve"),
        Some(json!({"comment": long})),
    )
    .await;
    assert_eq!(code, 400);
    let (_, audit) = s.get("/api/audit?limit=200").await;
    let decided: Vec<(String, u64)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["action"]
                .as_str()
                .is_some_and(|a| a.ends_with("/approve") || a.ends_with("/reject"))
        })
        .map(|r| {
            (
                r["actor"].as_str().unwrap().to_string(),
                r["outcome"].as_u64().unwrap(),
            )
        })
        .collect();
    for who in [("alice", 409), ("bob", 200), ("carol", 200)] {
        assert!(
            decided.contains(&(who.0.to_string(), who.1)),
            "{who:?} in {decided:?}"
        );
    }
}

/// What runs is what was asked for: a request waits across a restart with a changed
/// catalog and runs the arguments it was made with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_edited_while_pending_does_not_change_what_runs() {
    let env = Env::new(
        &gated_catalog("as-asked"),
        &[("say.sh", "echo \"said $*\"\n")],
    );
    let mut s = env.start();
    let id = s.trigger("gated").await;
    s.stop();
    std::fs::write(
        env.path().join("schemas.json"),
        gated_catalog("edited-later"),
    )
    .unwrap();
    let s = env.start();
    let (_, e) = s.get(&format!("/api/executions/{id}")).await;
    assert_eq!(
        e["status"], "pending",
        "the request survives the restart: {e}"
    );
    let people = people(&s).await;
    let (_, r) = as_(
        &people[1].1,
        &s,
        &format!("/api/executions/{id}/approve"),
        None,
    )
    .await;
    assert_eq!(r["status"], "accepted", "{r}");
    assert_eq!(s.wait(&id).await["output"], "said as-asked\n");
    let fresh = s.trigger("gated").await;
    let (_, r) = as_(
        &people[1].1,
        &s,
        &format!("/api/executions/{fresh}/approve"),
        None,
    )
    .await;
    assert_eq!(r["status"], "accepted", "{r}");
    assert_eq!(s.wait(&fresh).await["output"], "said edited-later\n");
}
