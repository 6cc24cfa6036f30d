//! Approvals in Slack, against a loopback fake Slack that records every request: the
//! request message with buttons, signed actions (and unsigned, stale and unknown-user
//! ones refused), the message rewritten once decided, by the buttons, the API or the expiry.

use super::*;
use common::fake::{Fake, Seen};
use common::{Env, catalog, client};
use serde_json::json;

const SIGNING: &str = "slack-signing-secret-for-tests";

/// Slack's interactive request for a button click by `user` on `id`'s request.
fn action_body(user: &str, action: &str, id: &str, response_url: &str) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": user.to_lowercase()},
        "actions": [{"action_id": action, "block_id": "cloudo_decision", "value": id,
                     "type": "button", "action_ts": "1700000001.000200"}],
        "response_url": response_url,
        "channel": {"id": "C42"},
        "message": {"ts": "1700000000.000100"},
    });
    serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
}

async fn send_action(s: &Server, body: &str, ts: i64, secret: &str) -> (u16, Value) {
    let sig = crate::common::slack_signature(secret, ts, body.as_bytes());
    crate::common::answer(
        client(None)
            .post(s.url("/api/integrations/slack/actions"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", sig)
            .body(body.to_string()),
    )
    .await
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The requests to `path` so far.
fn to(fake: &Fake, path: &str) -> Vec<Seen> {
    fake.seen()
        .into_iter()
        .filter(|r| r.uri.starts_with(path))
        .collect()
}

async fn until_seen(fake: &Fake, path: &str, n: usize) -> Vec<Seen> {
    let deadline = std::time::Instant::now() + SETTLE;
    loop {
        let seen = to(fake, path);
        if seen.len() >= n {
            return seen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{n} requests to {path}: {:#?}",
            fake.seen()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn has_buttons(body: &Value) -> bool {
    body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["type"] == "actions")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_buttons_decide_for_allowed_people_and_messages_follow_the_decision() {
    let slack = Fake::start(
        200,
        r#"{"ok": true, "channel": "C42", "ts": "1700000000.000100"}"#,
    )
    .await;
    // Every lookup of the group answers its members.
    for _ in 0..4 {
        slack.answer(
            "/usergroups.users.list",
            200,
            &[],
            r#"{"ok": true, "users": ["UGROUPIE"]}"#,
        );
    }
    let env = Env::new(
        &catalog(&[
            r#"{"id": "gated", "name": "restart web", "runbook": "say.sh", "require_approval": true}"#,
            r#"{"id": "brief", "runbook": "say.sh", "require_approval": true, "approval_timeout": 1}"#,
        ]),
        &[("say.sh", "echo ran\n")],
    );
    std::fs::write(
        env.path().join("notify.yaml"),
        "teams:\n  default:\n    slack: {channel: \"#ops\", approvers: [UBOSS, SONCALL]}\n",
    )
    .unwrap();
    let routes = env.path().join("notify.yaml").display().to_string();
    let env = env
        .arg("--notify-routes")
        .arg(&routes)
        .arg("--lost-after")
        .arg("6")
        .env("CLOUDO_SLACK_API_URL", &slack.base)
        .env("CLOUDO_SLACK_TOKEN", "xoxb-test-token")
        .env("CLOUDO_SLACK_SIGNING_SECRET", SIGNING);
    let s = env.start();
    let respond = format!("{}/respond/T1/1", slack.base);

    // The request reaches the channel with its buttons and links.
    let id = s.trigger("gated").await;
    let post = &until_seen(&slack, "/chat.postMessage", 1).await[0];
    assert_eq!(post.headers["authorization"], "Bearer xoxb-test-token");
    assert_eq!(post.body["channel"], "#ops");
    let actions = post.body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .unwrap()
        .clone();
    assert_eq!(actions["elements"][0]["action_id"], "cloudo_approve");
    assert_eq!(actions["elements"][0]["value"], id.as_str());
    assert_eq!(actions["elements"][1]["action_id"], "cloudo_reject");
    assert!(
        post.body
            .to_string()
            .contains(&format!("/api/approvals/{id}/approve?expires=")),
        "{}",
        post.body
    );

    // Not signed by Slack, or too old: 401, nothing decided, no message.
    let body = action_body("UBOSS", "cloudo_approve", &id, &respond);
    let (code, e) = send_action(&s, &body, now(), "wrong-secret").await;
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (401, Some("bad_signature")),
        "{e}"
    );
    let (code, _) = send_action(&s, &body, now() - 400, SIGNING).await;
    assert_eq!(code, 401);
    let (code, _) = send_action(&s, &format!("{body}&x=1"), now(), "wrong-secret").await;
    assert_eq!(code, 401);

    // Someone not among the approvers is told so, only them; nothing is decided.
    let (code, _) = send_action(
        &s,
        &action_body("UMALLORY", "cloudo_approve", &id, &respond),
        now(),
        SIGNING,
    )
    .await;
    assert_eq!(code, 200);
    let told = &until_seen(&slack, "/respond/", 1).await[0];
    assert_eq!(
        (
            told.body["response_type"].as_str(),
            told.body["replace_original"].as_bool()
        ),
        (Some("ephemeral"), Some(false)),
        "{:?}",
        told.body
    );
    assert!(
        told.body["text"]
            .as_str()
            .unwrap()
            .contains("not one of this team's approvers")
    );
    let (_, e) = s.get(&format!("/api/executions/{id}")).await;
    assert_eq!(e["status"], "pending", "{e}");
    assert!(
        to(&slack, "/usergroups.users.list?usergroup=SONCALL").len() == 1,
        "{:#?}",
        slack.seen()
    );

    // A member of the approvers' user group approves: it runs, and the message loses its
    // buttons and says who.
    let (code, _) = send_action(
        &s,
        &action_body("UGROUPIE", "cloudo_approve", &id, &respond),
        now(),
        SIGNING,
    )
    .await;
    assert_eq!(code, 200);
    let rewritten = until_seen(&slack, "/respond/", 2).await[1].body.clone();
    assert_eq!(rewritten["replace_original"], true, "{rewritten}");
    assert!(!has_buttons(&rewritten), "{rewritten}");
    assert!(
        rewritten.to_string().contains("Approved by <@UGROUPIE>"),
        "{rewritten}"
    );
    let done = s.wait(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let d = &done["approval"]["approvals"][0];
    assert_eq!(
        (d["by"].as_str(), d["via"].as_str()),
        (Some("slack:UGROUPIE"), Some("slack"))
    );
    // Clicking again changes nothing: the user hears why.
    send_action(
        &s,
        &action_body("UBOSS", "cloudo_reject", &id, &respond),
        now(),
        SIGNING,
    )
    .await;
    let again = &until_seen(&slack, "/respond/", 3).await[2];
    assert!(
        again.body["text"]
            .as_str()
            .unwrap()
            .contains("not waiting for approval"),
        "{:?}",
        again.body
    );

    // Decided through the API (and by the expiry), the posted message is updated with
    // chat.update: same channel and ts, no buttons.
    let other = s.trigger("gated").await;
    until_seen(&slack, "/chat.postMessage", 2).await;
    let (code, k) = common::post_json(
        &s.http,
        &s.url("/api/keys"),
        &json!({"name": "boss", "role": "operator"}),
    )
    .await;
    assert_eq!(code, 201);
    let boss = client(k["key"].as_str());
    // Wait for the request to be delivered (its ts known) before deciding.
    let deadline = std::time::Instant::now() + SETTLE;
    loop {
        let (_, e) = s.get(&format!("/api/executions/{other}")).await;
        if e["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["action"] == "request" && n["state"] == "delivered")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let res = boss
        .post(s.url(&format!("/api/executions/{other}/reject")))
        .json(&json!({"comment": "no"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let update = until_seen(&slack, "/chat.update", 1).await[0].body.clone();
    assert_eq!(
        (update["channel"].as_str(), update["ts"].as_str()),
        (Some("C42"), Some("1700000000.000100")),
        "{update}"
    );
    assert!(
        !has_buttons(&update) && update.to_string().contains("Rejected by boss"),
        "{update}"
    );

    let brief = s.trigger("brief").await;
    assert_eq!(s.wait(&brief).await["status"], "rejected");
    let update = until_seen(&slack, "/chat.update", 2).await[1].body.clone();
    assert!(
        update
            .to_string()
            .contains("Expired: nobody approved in time"),
        "{update}"
    );

    // Decisions and refusals in Slack are audited under the Slack user.
    let (_, audit) = s.get("/api/audit?limit=200").await;
    let items = audit["items"].as_array().unwrap();
    for (actor, outcome) in [
        ("slack:UMALLORY", 403),
        ("slack:UGROUPIE", 200),
        ("slack:UBOSS", 409),
    ] {
        assert!(
            items
                .iter()
                .any(|r| r["actor"] == actor && r["outcome"] == outcome),
            "{actor} {outcome}: {audit}"
        );
    }
}
