//! Hourly rate limits and their single notification, guardrails, dry runs.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::fake::Fake;
use crate::common::{Env, catalog};
use crate::{post_alert, vm_alert};

const OG_KEY: &str = "og-limits-key-1234567890";
const OG_OK: &str = r#"{"result": "Request will be processed", "took": 0.1, "requestId": "r-1"}"#;

/// Opsgenie requests that create an alert.
fn creates(og: &Fake) -> Vec<Value> {
    og.seen()
        .into_iter()
        .filter(|r| r.method == "POST" && r.uri == "/v2/alerts")
        .map(|r| r.body)
        .collect()
}

#[tokio::test]
async fn an_hourly_limit_skips_the_excess_and_tells_on_call_once() {
    let og = Fake::start(202, OG_OK).await;
    let env = Env::new(
        &catalog(&[
            r#"{"id": "restart", "runbook": "ok.sh", "oncall": true, "max_runs_per_hour": 2}"#,
            r#"{"id": "per-vm", "runbook": "ok.sh", "max_runs_per_hour_per_resource": 1}"#,
        ]),
        &[("ok.sh", "echo done\n")],
    )
    .env("CLOUDO_OPSGENIE_API_URL", &og.base)
    .env("CLOUDO_OPSGENIE_API_KEY", OG_KEY)
    .env("CLOUDO_NOTIFY_BACKOFF_MS", "100");
    let s = env.start();
    for _ in 0..2 {
        let id = s.trigger("restart").await;
        assert_eq!(s.wait(&id).await["status"], "succeeded");
    }
    let mut skipped = Vec::new();
    for _ in 0..3 {
        let res = s
            .http
            .post(s.url("/api/Trigger?id=restart"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "skipped", "{body}");
        let reason = body["reason"].as_str().unwrap().to_string();
        assert!(reason.starts_with("rate_limited:"), "{reason}");
        skipped.push(body["exec_id"].as_str().unwrap().to_string());
    }
    // One alert for the stretch of refusals, not one per refusal.
    og.wait_for(1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = creates(&og);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0]["alias"], "cloudo:rate-limited:restart");
    assert!(
        sent[0]["description"]
            .as_str()
            .unwrap_or_default()
            .contains("rate_limited")
            || sent[0]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("skipped"),
        "{}",
        sent[0]
    );
    let (_, first) = s.get(&format!("/api/executions/{}", skipped[0])).await;
    assert_eq!(first["notifications"][0]["channel"], "opsgenie", "{first}");

    // Per resource: one run per VM per hour, other VMs unaffected.
    let (code, a) = post_alert(&s, "per-vm", &vm_alert(1, "s1", "rg", "vm-1")).await;
    assert_eq!(code, 202, "{a}");
    let (_, again) = post_alert(&s, "per-vm", &vm_alert(2, "s1", "rg", "vm-1")).await;
    assert_eq!(again["status"], "skipped", "{again}");
    assert!(
        again["reason"].as_str().unwrap().contains("vm-1"),
        "{again}"
    );
    let (code, other) = post_alert(&s, "per-vm", &vm_alert(3, "s1", "rg", "vm-2")).await;
    assert_eq!(code, 202, "{other}");
}

/// An Alertmanager group of one alert in `namespace`.
fn am_alert(namespace: &str) -> Value {
    json!({
        "version": "4", "status": "firing", "receiver": "cloudo",
        "groupKey": format!("{{}}:{{namespace=\"{namespace}\"}}"),
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "PodCrashLooping", "namespace": namespace, "pod": "api-1"},
            "annotations": {}, "startsAt": "2026-12-03T10:00:00Z",
            "fingerprint": format!("fp-{namespace}")
        }]
    })
}

#[tokio::test]
async fn guardrails_skip_runs_outside_namespaces_groups_and_subscriptions() {
    let env = Env::new(
        &catalog(&[
            r#"{"id": "pods", "runbook": "ok.sh", "allowed_namespaces": ["payments", "team-*"]}"#,
            r#"{"id": "vms", "runbook": "ok.sh", "allowed_resource_groups": "rg-prod, rg-stage"}"#,
        ]),
        &[(
            "ok.sh",
            "echo \"ran in ${AKS_NAMESPACE:-} ${RESOURCE_RG:-}\"\n",
        )],
    );
    std::fs::write(
        env.path().join("cloudo.toml"),
        "[guardrails]\nallowed_subscriptions = [\"sub-ok\"]\n",
    )
    .unwrap();
    let config = env.path().join("cloudo.toml");
    let env = env.arg("--config").arg(config.to_str().unwrap());
    let s = env.start();
    let am = |ns: &str| {
        let body = am_alert(ns);
        let url = s.url("/api/webhooks/alertmanager?id=pods");
        let http = s.http.clone();
        async move { crate::common::post_json(&http, &url, &body).await }
    };
    let (code, ok) = am("team-blue").await;
    assert_eq!(code, 202, "{ok}");
    let id = ok["alerts"][0]["executions"][0]["exec_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.wait(&id).await["status"], "succeeded");
    let (code, out) = am("kube-system").await;
    assert_eq!(code, 200, "{out}");
    let skipped = &out["alerts"][0]["executions"][0];
    assert_eq!(skipped["status"], "skipped", "{out}");
    assert!(
        skipped["reason"]
            .as_str()
            .unwrap()
            .contains("guardrail: namespace \"kube-system\" is not in the schema's allowed list"),
        "{out}"
    );

    let (code, ok) = post_alert(&s, "vms", &vm_alert(1, "sub-ok", "RG-PROD", "vm")).await;
    assert_eq!(code, 202, "{ok}");
    let (_, rg) = post_alert(&s, "vms", &vm_alert(2, "sub-ok", "rg-dev", "vm")).await;
    assert_eq!(rg["status"], "skipped", "{rg}");
    assert!(
        rg["reason"]
            .as_str()
            .unwrap()
            .contains("resource group \"rg-dev\""),
        "{rg}"
    );
    let (_, sub) = post_alert(&s, "vms", &vm_alert(3, "sub-other", "rg-prod", "vm")).await;
    assert_eq!(sub["status"], "skipped", "{sub}");
    assert!(
        sub["reason"]
            .as_str()
            .unwrap()
            .contains("subscription \"sub-other\" is not in the orchestrator's allowed list"),
        "{sub}"
    );
}

#[tokio::test]
async fn a_dry_run_reaches_the_runbook_and_pages_nobody() {
    let og = Fake::start(202, OG_OK).await;
    let env = Env::new(
        &catalog(&[
            r#"{"id": "fix", "runbook": "fix.sh", "oncall": true}"#,
            r#"{"id": "sim", "runbook": "fix.sh", "dry_run": true}"#,
        ]),
        &[("fix.sh", "echo \"dry=$CLOUDO_DRY_RUN\"\nexit 3\n")],
    )
    .env("CLOUDO_OPSGENIE_API_URL", &og.base)
    .env("CLOUDO_OPSGENIE_API_KEY", OG_KEY)
    .env("CLOUDO_NOTIFY_BACKOFF_MS", "100");
    let s = env.start();
    let res = s
        .http
        .post(s.url("/api/Trigger?id=fix&dry_run=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["exec_id"]
        .as_str()
        .unwrap()
        .to_string();
    let e = s.wait(&id).await;
    assert_eq!(
        (e["status"].as_str(), e["dry_run"].as_bool()),
        (Some("failed"), Some(true)),
        "{e}"
    );
    assert!(e["output"].as_str().unwrap().contains("dry=1"), "{e}");
    let why = e["notifications"][0]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(why.contains("a dry run pages nobody"), "{e}");
    // The same failure for real pages: the fake Opsgenie is listening.
    let real = s.trigger("fix").await;
    let e = s.wait(&real).await;
    assert_eq!(e["dry_run"], false);
    assert!(e["output"].as_str().unwrap().contains("dry=0"), "{e}");
    og.wait_for(1).await;
    let sent = creates(&og);
    assert_eq!(sent.len(), 1, "only the real failure paged: {sent:#?}");
    assert!(
        sent[0]["details"]["exec_id"] == real.as_str(),
        "{}",
        sent[0]
    );
    // A schema's default, and a trigger that overrides it.
    let sim = s.trigger("sim").await;
    assert!(
        s.wait(&sim).await["output"]
            .as_str()
            .unwrap()
            .contains("dry=1")
    );
    let res = s
        .http
        .post(s.url("/api/Trigger?id=sim&dry_run=false"))
        .send()
        .await
        .unwrap();
    let id = res.json::<Value>().await.unwrap()["exec_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        s.wait(&id).await["output"]
            .as_str()
            .unwrap()
            .contains("dry=0")
    );
}
