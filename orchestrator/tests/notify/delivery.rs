//! Delivery: retries that honour `Retry-After` and stop at the limit; Slack through an
//! incoming webhook instead of the Web API.

use super::*;

#[tokio::test]
async fn retries_honour_retry_after_and_give_up_at_the_limit() {
    let og = Fake::start(202, OG_OK).await;
    let slack = Fake::start(200, SLACK_OK).await;
    og.answer(
        "/v2/alerts",
        429,
        &[("Retry-After", "1")],
        r#"{"message": "slow down"}"#,
    );
    og.answer("/v2/alerts", 503, &[], r#"{"message": "unavailable"}"#);
    slack.answer(
        "/chat.postMessage",
        400,
        &[],
        r#"{"ok": false, "error": "invalid_blocks"}"#,
    );
    let counter = tempfile::tempdir().unwrap();
    let (_env, s) = start(
        (&og, &slack),
        &[("CLOUDO_NOTIFY_MAX_ATTEMPTS", "3")],
        &flaky_catalog(
            &counter.path().join("n"),
            &[r#"{"id": "down", "runbook": "fail.sh", "oncall": true}"#],
        ),
    );
    let e = run_to_end(&s, "pay").await;
    let id = e["exec_id"].as_str().unwrap().to_string();
    let seen = og.wait_for(3).await;
    assert!(seen.iter().all(|r| r.uri == "/v2/alerts"));
    let gap = seen[1].at - seen[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "Retry-After: 1 honoured, waited {gap:?}"
    );
    let n = settled(&s, &id, none_pending).await;
    assert_eq!(n[0]["state"], "delivered", "after a 429 and a 503: {n:?}");
    assert_eq!(n[0]["attempts"], 3);
    assert_eq!(n[1]["state"], "failed", "a 400 is not retried: {n:?}");
    assert_eq!(n[1]["attempts"], 1);
    assert!(n[1]["last_error"].as_str().unwrap().contains("400"));
    assert_eq!(slack.seen().len(), 1);

    // Always 503: given up after the limit (3 attempts), recorded as failed.
    for _ in 0..3 {
        og.answer("/v2/alerts", 503, &[], "{}");
    }
    let e = run_to_end(&s, "down").await;
    let id = e["exec_id"].as_str().unwrap().to_string();
    let n = settled(&s, &id, |n| {
        n.first().is_some_and(|n| n["state"] == "failed")
    })
    .await;
    assert_eq!(n[0]["attempts"], 3);
    assert!(n[0]["last_error"].as_str().unwrap().contains("503"));
    assert_eq!(og.seen().len(), 6, "3 + 3 attempts, no more");
    // The executions themselves were never held up by delivery.
    assert_eq!(e["status"], "failed");
}

#[tokio::test]
async fn slack_incoming_webhook_instead_of_the_web_api() {
    let og = Fake::start(202, OG_OK).await;
    let hook = Fake::start(200, "ok").await;
    let counter = tempfile::tempdir().unwrap();
    let secret_path = "/services/T000/B000/XXXXSECRETXXXX";
    let routes = counter.path().join("notify.yaml");
    std::fs::write(
        &routes,
        "teams:\n  default:\n    opsgenie: {key: {env: CLOUDO_TEST_MISSING_KEY}}\n",
    )
    .unwrap();
    let env = Env::new(
        &flaky_catalog(&counter.path().join("n"), &[]),
        &[("flaky.sh", FLAKY), ("fail.sh", "exit 1\n")],
    )
    .env("CLOUDO_OPSGENIE_API_URL", &og.base)
    .env(
        "CLOUDO_SLACK_WEBHOOK_URL",
        &format!("{}{secret_path}", hook.base),
    )
    .env("CLOUDO_NOTIFY_ROUTES", routes.to_str().unwrap());
    let mut s = env.start();
    let e = run_to_end(&s, "pay").await;
    assert_eq!(e["status"], "failed");
    let posts = hook.wait_for(1).await;
    assert_eq!(posts[0].uri, secret_path);
    assert!(
        posts[0].body.get("channel").is_none(),
        "webhooks take no channel"
    );
    assert!(
        posts[0].body["text"]
            .as_str()
            .unwrap()
            .starts_with("[cloudo] pay failed")
    );
    assert!(posts[0].body["blocks"].is_array());
    // The default team's Opsgenie key refers to a variable that is not set: the page is
    // recorded as failed at once, with the reason, and not retried.
    let id = e["exec_id"].as_str().unwrap();
    let n = settled(&s, id, |n| n.len() == 2 && none_pending(n)).await;
    assert_eq!(n[0]["state"], "failed", "{n:?}");
    assert_eq!(n[0]["attempts"], 1);
    assert!(
        n[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("CLOUDO_TEST_MISSING_KEY is not set"),
        "{n:?}"
    );
    assert_eq!(n[1]["state"], "delivered");

    // Nothing configured for Opsgenie at all: no page is planned.
    let put = s
        .http
        .put(s.url("/api/notify/routes"))
        .header("content-type", "application/yaml")
        .body("teams: {}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let e = run_to_end(&s, "pay").await;
    let id = e["exec_id"].as_str().unwrap();
    let n = settled(&s, id, none_pending).await;
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0]["channel"], "slack");
    assert!(og.seen().is_empty());
    assert!(
        !s.final_logs().await.contains("XXXXSECRETXXXX"),
        "the webhook URL is a secret"
    );
    let db = std::fs::read(common::data_dir(&env).join("cloudo.db")).unwrap();
    assert!(!db.windows(14).any(|w| w == b"XXXXSECRETXXXX"));
}
