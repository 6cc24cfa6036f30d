//! Verification runbooks: after a success, after the delay, with the same variables;
//! passed or failed on the original; a failed one pages.

use std::time::{Duration, Instant};

use chrono::DateTime;
use serde_json::Value;

use crate::common::fake::Fake;
use crate::common::{Env, Server, catalog};
use crate::{post_alert, vm_alert};

const OG_KEY: &str = "og-verify-key-1234567890";
const OG_OK: &str = r#"{"result": "Request will be processed", "took": 0.1, "requestId": "r-1"}"#;

/// The original once its verification ended (its `verification.status` not pending).
async fn verified(s: &Server, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, e) = s.get(&format!("/api/executions/{id}")).await;
        let status = e["verification"]["status"].as_str().unwrap_or("none");
        if status == "passed" || status == "failed" {
            return e;
        }
        assert!(Instant::now() < deadline, "never verified: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn at(v: &Value) -> DateTime<chrono::FixedOffset> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a time")).expect("RFC 3339")
}

#[tokio::test]
async fn a_success_is_verified_after_the_delay_and_a_failed_verification_pages() {
    let og = Fake::start(202, OG_OK).await;
    let env = Env::new(
        &catalog(&[
            r#"{"id": "fix", "runbook": "fix.sh", "oncall": true,
                "verify": {"runbook": "check.sh", "run_args": "healthy", "delay_secs": 1, "timeout": 30}}"#,
            r#"{"id": "fix-bad", "runbook": "fix.sh", "oncall": true,
                "verify": {"runbook": "check.sh", "run_args": "sick", "delay_secs": 0}}"#,
        ]),
        &[
            ("fix.sh", "echo fixed\n"),
            (
                "check.sh",
                "echo \"verifying $CLOUDO_VERIFY_OF on ${RESOURCE_NAME:-none}: $1\"\n[ \"$1\" = healthy ]\n",
            ),
        ],
    )
    .env("CLOUDO_OPSGENIE_API_URL", &og.base)
    .env("CLOUDO_OPSGENIE_API_KEY", OG_KEY)
    .env("CLOUDO_NOTIFY_BACKOFF_MS", "100");
    let s = env.start();
    let (code, body) = post_alert(&s, "fix", &vm_alert(1, "s1", "rg", "vm-7")).await;
    assert_eq!(code, 202, "{body}");
    let id = body["exec_id"].as_str().unwrap().to_string();
    let original = s.wait(&id).await;
    assert_eq!(original["status"], "succeeded", "{original}");
    let original = verified(&s, &id).await;
    assert_eq!(original["verification"]["status"], "passed", "{original}");
    let vid = original["verification"]["exec_id"].as_str().unwrap();
    assert!(
        original["verification_url"]
            .as_str()
            .unwrap()
            .ends_with(vid)
    );
    let v = s.wait(vid).await;
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(v["initiator"], format!("verify:{id}"));
    assert_eq!(v["env"]["CLOUDO_VERIFY_OF"], id.as_str());
    assert!(
        v["output"]
            .as_str()
            .unwrap()
            .contains(&format!("verifying {id} on vm-7: healthy")),
        "the same variables: {v}"
    );
    let waited = at(&v["started_at"]) - at(&original["finished_at"]);
    assert!(
        waited >= chrono::Duration::milliseconds(900),
        "the delay: {waited}"
    );
    assert!(og.seen().is_empty(), "a passed verification pages nobody");

    let (_, body) = post_alert(&s, "fix-bad", &vm_alert(2, "s1", "rg", "vm-8")).await;
    let id = body["exec_id"].as_str().unwrap().to_string();
    assert_eq!(s.wait(&id).await["status"], "succeeded");
    let original = verified(&s, &id).await;
    assert_eq!(original["verification"]["status"], "failed", "{original}");
    let vid = original["verification"]["exec_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.wait(&vid).await["status"], "failed");
    let sent = og.wait_for(1).await;
    let create = sent
        .iter()
        .find(|r| r.uri == "/v2/alerts")
        .expect("an alert was created");
    assert_eq!(
        create.body["details"]["exec_id"],
        vid.as_str(),
        "{:?}",
        create.body
    );
}
