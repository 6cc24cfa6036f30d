//! On-call notifications end to end: the real binary against fake Opsgenie / JSM and Slack
//! servers on loopback that record every request (method, path, query, headers, JSON) and
//! answer what each test scripts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
mod delivery;

use std::time::{Duration, Instant};

use common::fake::Fake;
use common::{Env, Server, catalog};
use serde_json::{Value, json};

const OG_KEY: &str = "og-default-key-1234567890";
const OG_PAY_KEY: &str = "og-payments-key-0987654321";
const SLACK_TOKEN: &str = "xoxb-slack-token-abcdef123456";

const OG_OK: &str = r#"{"result": "Request will be processed", "took": 0.1, "requestId": "r-1"}"#;
const SLACK_OK: &str = r#"{"ok": true, "channel": "C1", "ts": "1.2"}"#;

/// `pay` fails twice, then succeeds (it counts its runs in `counter`).
fn flaky_catalog(counter: &std::path::Path, extra: &[&str]) -> String {
    let pay = format!(
        r#"{{"id": "pay", "name": "pay", "runbook": "flaky.sh", "run_args": "{}", "oncall": true, "tags": "payments,db"}}"#,
        counter.display()
    );
    let mut all = vec![
        pay.as_str(),
        r#"{"id": "quiet", "runbook": "fail.sh", "oncall": false}"#,
    ];
    all.extend_from_slice(extra);
    catalog(&all)
}

/// Fails twice (printing "boom N"), then succeeds; counts its runs in the file $1.
const FLAKY: &str = "n=$(cat \"$1\" 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > \"$1\"\nif [ $n -lt 3 ]; then echo \"boom $n\"; exit 3; fi\necho fixed\n";

fn start(fakes: (&Fake, &Fake), extra_env: &[(&str, &str)], cat: &str) -> (Env, Server) {
    let mut env = Env::new(
        cat,
        &[("flaky.sh", FLAKY), ("fail.sh", "echo nope\nexit 1\n")],
    )
    .env("CLOUDO_OPSGENIE_API_URL", &fakes.0.base)
    .env("CLOUDO_OPSGENIE_API_KEY", OG_KEY)
    .env("CLOUDO_SLACK_API_URL", &fakes.1.base)
    .env("CLOUDO_SLACK_TOKEN", SLACK_TOKEN)
    .env("CLOUDO_SLACK_CHANNEL", "#ops")
    .env("CLOUDO_NOTIFY_BACKOFF_MS", "100")
    .arg("--dedup-window")
    .arg("0");
    for (k, v) in extra_env {
        env = env.env(k, v);
    }
    let s = env.start();
    (env, s)
}

/// The execution's notifications once `done` says they have settled (fails after 15 s).
async fn settled(s: &Server, id: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, e) = s.get(&format!("/api/executions/{id}")).await;
        let n = e["notifications"].as_array().cloned().unwrap_or_default();
        if done(&n) {
            return n;
        }
        assert!(Instant::now() < deadline, "{e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn none_pending(n: &[Value]) -> bool {
    !n.is_empty()
        && n.iter()
            .all(|n| n["state"] != "pending" && n["state"] != "held")
}

async fn run_to_end(s: &Server, id: &str) -> Value {
    s.wait(&s.trigger(id).await).await
}

#[tokio::test]
async fn oncall_failures_page_and_post_repeats_add_notes_success_closes() {
    let og = Fake::start(202, OG_OK).await;
    let slack = Fake::start(200, SLACK_OK).await;
    let counter = tempfile::tempdir().unwrap();
    let (env, s) = start(
        (&og, &slack),
        &[],
        &flaky_catalog(&counter.path().join("n"), &[]),
    );

    let first = run_to_end(&s, "pay").await;
    assert_eq!(first["status"], "failed", "{first}");
    let id = first["exec_id"].as_str().unwrap().to_string();
    let seen = og.wait_for(1).await;
    let create = &seen[0];
    assert_eq!(create.method, "POST");
    assert_eq!(create.uri, "/v2/alerts");
    assert_eq!(
        create.headers["authorization"],
        format!("GenieKey {OG_KEY}")
    );
    assert!(create.headers["content-type"].starts_with("application/json"));
    let b = &create.body;
    assert_eq!(b["message"], "[cloudo] pay failed");
    assert_eq!(b["alias"], "cloudo:pay");
    assert_eq!(
        b["priority"], "P3",
        "manual run: the schema's priority, default P3"
    );
    assert_eq!(b["source"], "cloudo");
    assert_eq!(b["entity"], "pay");
    assert_eq!(b["tags"], json!(["cloudo", "failed", "payments", "db"]));
    assert_eq!(b["responders"], json!([]));
    assert_eq!(b["details"]["exec_id"], id.as_str());
    assert_eq!(b["details"]["schema"], "pay");
    assert_eq!(b["details"]["status"], "failed");
    assert_eq!(
        b["details"]["url"],
        format!("{}/api/executions/{id}", s.base)
    );
    let d = b["description"].as_str().unwrap();
    for part in [
        "Status: failed",
        "Reason: exit code 3",
        "Exit code: 3",
        "boom 1",
    ] {
        assert!(d.contains(part), "{part} in {d}");
    }
    let posts = slack.wait_for(1).await;
    let p = &posts[0];
    assert_eq!(
        (p.method.as_str(), p.uri.as_str()),
        ("POST", "/chat.postMessage")
    );
    assert_eq!(p.headers["authorization"], format!("Bearer {SLACK_TOKEN}"));
    assert_eq!(p.body["channel"], "#ops");
    assert!(
        p.body["text"]
            .as_str()
            .unwrap()
            .starts_with("[cloudo] pay failed")
    );
    assert_eq!(p.body["blocks"][0]["type"], "header");
    let blocks = p.body["blocks"].to_string();
    assert!(
        blocks.contains("boom 1") && blocks.contains(&id),
        "{blocks}"
    );

    // The execution shows its notifications and their delivery.
    let n = settled(&s, &id, |n| {
        n.len() == 2 && n.iter().all(|n| n["state"] == "delivered")
    })
    .await;
    assert_eq!(n[0]["channel"], "opsgenie");
    assert_eq!(n[0]["action"], "create");
    assert_eq!(n[0]["team"], "default");
    assert_eq!(n[0]["attempts"], 1);
    assert_eq!(n[1]["channel"], "slack");

    // A repeat failure of the same alias: a note, not a new alert.
    let second = run_to_end(&s, "pay").await;
    assert_eq!(second["status"], "failed");
    let seen = og.wait_for(2).await;
    assert_eq!(
        seen[1].uri,
        "/v2/alerts/cloudo%3Apay/notes?identifierType=alias"
    );
    assert_eq!(
        seen[1].headers["authorization"],
        format!("GenieKey {OG_KEY}")
    );
    assert!(seen[1].body["note"].as_str().unwrap().contains("boom 2"));
    assert_eq!(seen[1].body["user"], "cloudo");

    // Success closes it.
    let third = run_to_end(&s, "pay").await;
    assert_eq!(third["status"], "succeeded");
    let seen = og.wait_for(3).await;
    assert_eq!(
        seen[2].uri,
        "/v2/alerts/cloudo%3Apay/close?identifierType=alias"
    );
    assert!(seen[2].body["note"].as_str().unwrap().contains("succeeded"));

    // Not on call: nothing sent.
    let quiet = run_to_end(&s, "quiet").await;
    assert_eq!(quiet["status"], "failed");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(og.seen().len(), 3);
    assert_eq!(
        slack.seen().len(),
        2,
        "two failures of an on-call runbook, no success post"
    );

    // No token in any log line or stored row.
    let db = std::fs::read(common::data_dir(&env).join("cloudo.db")).unwrap_or_default();
    let wal = std::fs::read(common::data_dir(&env).join("cloudo.db-wal")).unwrap_or_default();
    let logs = s.logs();
    for t in [OG_KEY, SLACK_TOKEN] {
        assert!(!logs.contains(t), "{t} in logs");
        let needle = t.as_bytes();
        for (name, bytes) in [("db", &db), ("wal", &wal)] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{t} in the {name} file"
            );
        }
    }
    assert!(!db.is_empty(), "the database was read");
}

fn alert(condition: &str, severity: &str) -> Value {
    json!({
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {
                "alertId": "/subscriptions/s1/providers/Microsoft.AlertsManagement/alerts/aaaa-1111",
                "alertRule": "pay-alert",
                "severity": severity,
                "signalType": "Metric",
                "monitorCondition": condition,
                "monitoringService": "Platform",
                "alertTargetIDs": ["/subscriptions/s1/resourceGroups/rg-payments-prod/providers/Microsoft.Compute/virtualMachines/vm-pay-1"],
                "configurationItems": ["vm-pay-1"],
                "firedDateTime": "2026-11-21T10:00:00Z"
            },
            "alertContext": {},
            "customProperties": null
        }
    })
}

#[tokio::test]
async fn alerts_route_to_teams_map_severity_and_resolved_closes_through_jsm() {
    let og = Fake::start(202, OG_OK).await;
    let slack = Fake::start(200, SLACK_OK).await;
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("notify.yaml");
    std::fs::write(
        &routes,
        "teams:\n  payments:\n    slack: {channel: \"#payments\"}\n    opsgenie:\n      key: {env: OG_PAYMENTS_KEY}\n      responders: [{type: team, name: Payments}]\nrules:\n  - when: {resource_group: {prefix: rg-payments}, severity: Sev0-Sev2}\n    then: {team: payments}\n",
    )
    .unwrap();
    let jsm = format!("{}/jsm/ops/integration", og.base);
    let cat = flaky_catalog(
        &dir.path().join("n"),
        &[
            r#"{"id": "pay-alert", "runbook": "fail.sh", "oncall": true, "monitor_condition": "Fired"}"#,
        ],
    );
    let (_env, mut s) = start(
        (&og, &slack),
        &[
            ("OG_PAYMENTS_KEY", OG_PAY_KEY),
            ("CLOUDO_OPSGENIE_API_URL", &jsm),
            ("CLOUDO_NOTIFY_ROUTES", routes.to_str().unwrap()),
        ],
        &cat,
    );
    let post = |body: Value| {
        let http = s.http.clone();
        let url = s.url("/api/Trigger");
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            r.json::<Value>().await.unwrap()
        }
    };
    let ack = post(alert("Fired", "Sev1")).await;
    let id = ack["executions"][0]["exec_id"]
        .as_str()
        .or(ack["exec_id"].as_str())
        .unwrap()
        .to_string();
    assert_eq!(s.wait(&id).await["status"], "failed");
    let seen = og.wait_for(1).await;
    let c = &seen[0];
    assert_eq!(
        c.uri, "/jsm/ops/integration/v2/alerts",
        "the JSM Operations path"
    );
    assert_eq!(
        c.headers["authorization"],
        format!("GenieKey {OG_PAY_KEY}"),
        "the team's key"
    );
    assert_eq!(c.body["priority"], "P2", "Sev1 -> P2");
    assert_eq!(
        c.body["alias"],
        "/subscriptions/s1/providers/Microsoft.AlertsManagement/alerts/aaaa-1111"
    );
    assert_eq!(c.body["message"], "[cloudo] pay-alert failed on vm-pay-1");
    assert_eq!(
        c.body["responders"],
        json!([{"type": "team", "name": "Payments"}])
    );
    assert_eq!(
        c.body["entity"],
        "/subscriptions/s1/resourceGroups/rg-payments-prod/providers/Microsoft.Compute/virtualMachines/vm-pay-1"
    );
    assert_eq!(c.body["details"]["severity"], "Sev1");
    let posts = slack.wait_for(1).await;
    assert_eq!(posts[0].body["channel"], "#payments", "the team's channel");

    // The Resolved alert (its runbook skips Resolved) closes the Opsgenie alert.
    let resolved = post(alert("Resolved", "Sev1")).await;
    assert!(resolved.to_string().contains("skipped"), "{resolved}");
    let seen = og.wait_for(2).await;
    assert_eq!(
        seen[1].uri,
        "/jsm/ops/integration/v2/alerts/%2Fsubscriptions%2Fs1%2Fproviders%2FMicrosoft.AlertsManagement%2Falerts%2Faaaa-1111/close?identifierType=alias"
    );
    assert_eq!(
        seen[1].headers["authorization"],
        format!("GenieKey {OG_PAY_KEY}")
    );
    assert!(seen[1].body["note"].as_str().unwrap().contains("resolved"));

    // Sev4 is outside the rule: the default team's key, P5.
    let mut low = alert("Fired", "Sev4");
    low["data"]["essentials"]["alertId"] = json!("/alerts/low-1");
    let ack = post(low).await;
    let id = ack["executions"][0]["exec_id"]
        .as_str()
        .or(ack["exec_id"].as_str())
        .unwrap()
        .to_string();
    assert_eq!(s.wait(&id).await["status"], "failed");
    let seen = og.wait_for(3).await;
    assert_eq!(
        seen[2].headers["authorization"],
        format!("GenieKey {OG_KEY}")
    );
    assert_eq!(seen[2].body["priority"], "P5");

    // A trigger URL naming a team (`/api/Trigger/{team}`, as in ClouDO) routes to it when
    // no rule matches.
    let r = s
        .http
        .post(s.url("/api/Trigger/payments?id=pay"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["exec_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.wait(&id).await["status"], "failed");
    let seen = og.wait_for(4).await;
    assert_eq!(seen[3].uri, "/jsm/ops/integration/v2/alerts");
    assert_eq!(
        seen[3].headers["authorization"],
        format!("GenieKey {OG_PAY_KEY}"),
        "the trigger's team"
    );
    assert_eq!(seen[3].body["alias"], "cloudo:pay");
    assert!(!s.final_logs().await.contains(OG_PAY_KEY));
}
