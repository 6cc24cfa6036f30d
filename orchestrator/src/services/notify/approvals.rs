//! Approval requests in Slack: a pending execution's request is posted to its team's
//! channel with Approve / Reject buttons (and the signed links); once it is decided the
//! message loses its buttons and says who decided and when (through `response_url` for a
//! decision made with the buttons, `chat.update` otherwise, and for the expiry).

use cloudo_core::approval::{Decision, Verdict};
use cloudo_core::notify::{Delivery, Notification};
use cloudo_core::{Execution, Status, time};
use serde_json::{Value, json};

use super::Notifier;
use super::messages::{cut, env};

/// `action_id`s of the buttons.
pub const APPROVE_ACTION: &str = "cloudo_approve";
pub const REJECT_ACTION: &str = "cloudo_reject";

impl Notifier {
    /// A new request: its team's Slack channel hears of it, with buttons and links.
    pub(super) async fn on_requested(&self, e: &Execution) {
        let Some(a) = &e.approval else { return };
        let routes = self.routes();
        let team_name = routes.decide(e).team;
        let team = routes.team(&team_name);
        if !(team.has_slack_credential() || self.has_global_slack()) {
            return;
        }
        let channel = self.slack_channel(&team);
        let links = (
            self.0.links.url(&e.exec_id, Verdict::Approve, a.expires_at),
            self.0.links.url(&e.exec_id, Verdict::Reject, a.expires_at),
        );
        let mut body = request_message(e, &self.url(&e.exec_id), Some(&links));
        body["channel"] = json!(channel);
        let n = Notification::new(
            &e.exec_id,
            Status::Pending,
            "slack",
            "request",
            &team_name,
            &format!("slack/{team_name}"),
            "/chat.postMessage".into(),
            &body,
        );
        self.queue(n).await;
    }

    /// A request was decided: its Slack message (when one was posted) loses its buttons.
    /// A decision made with the buttons updates its own message instead.
    pub async fn on_decided(&self, e: &Execution) {
        let last = e.approval.as_ref().and_then(|a| a.approvals.last());
        if last.is_some_and(|d| d.via == "slack") {
            return;
        }
        let requests = match self.0.store.notifications_for(&e.exec_id).await {
            Ok(ns) => ns,
            Err(err) => {
                tracing::warn!(exec_id = %e.exec_id, error = %err, "cannot read the request's messages");
                return;
            }
        };
        for r in requests.iter().filter(|n| n.action == "request") {
            let Some((channel, ts)) = r.reply.as_deref().and_then(|x| x.split_once(' ')) else {
                continue;
            };
            let mut body = decided_message(e, &self.url(&e.exec_id));
            body["channel"] = json!(channel);
            body["ts"] = json!(ts);
            let n = Notification::new(
                &e.exec_id,
                e.status,
                "slack",
                "update",
                &r.team,
                &r.key,
                "/chat.update".into(),
                &body,
            );
            self.queue(n).await;
        }
    }

    /// The secret Slack signs interactive requests with (`CLOUDO_SLACK_SIGNING_SECRET`).
    pub fn slack_signing_secret(&self) -> Option<&cloudo_worker::secrets::Secret> {
        self.0.settings.slack_signing_secret.as_ref()
    }

    /// Whether the Slack user `user` may decide `e`'s request: its team's `approvers`
    /// (users, or members of user groups), or anyone when the team lists none.
    pub async fn slack_user_may_decide(&self, e: &Execution, user: &str) -> Result<bool, String> {
        let routes = self.routes();
        let team = routes.team(&routes.decide(e).team);
        let Some(slack) = team.slack.as_ref().filter(|s| !s.approvers.is_empty()) else {
            return Ok(true);
        };
        if slack.approvers.iter().any(|a| a == user) {
            return Ok(true);
        }
        // Slack ids are letters and digits: safe in a query string as they are.
        let groups = slack
            .approvers
            .iter()
            .filter(|a| a.starts_with('S') && a.chars().all(|c| c.is_ascii_alphanumeric()));
        for group in groups {
            let token = match &slack.token {
                Some(r) => r.resolve().map_err(|e| format!("the Slack token: {e}"))?,
                None => self
                    .0
                    .settings
                    .slack_token
                    .as_ref()
                    .map(|t| t.expose().to_string())
                    .ok_or("a user group in approvers needs a Slack bot token")?,
            };
            let rsp = self
                .0
                .http
                .get()?
                .get(format!(
                    "{}/usergroups.users.list?usergroup={group}",
                    self.0.settings.slack_url
                ))
                .bearer_auth(token)
                .send()
                .await
                .map_err(|e| format!("cannot reach Slack: {}", e.without_url()))?;
            let v: Value = rsp
                .json()
                .await
                .map_err(|e| format!("Slack answered no JSON: {e}"))?;
            if v["ok"] != true {
                return Err(format!(
                    "Slack: {}",
                    v["error"].as_str().unwrap_or("unknown error")
                ));
            }
            if v["users"]
                .as_array()
                .is_some_and(|us| us.iter().any(|u| u == user))
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Answers an interaction through its `response_url` (in the background: Slack wants
    /// the interactive request itself answered within 3 s).
    pub fn respond(&self, response_url: &str, body: Value) {
        let http = match self.0.http.get() {
            Ok(c) => c.clone(),
            Err(e) => return tracing::warn!(error = %e, "cannot answer Slack's response_url"),
        };
        let url = response_url.to_string();
        tokio::spawn(async move {
            match http.post(&url).json(&body).send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => {
                    tracing::warn!(status = %r.status(), "Slack refused a response_url message")
                }
                Err(e) => {
                    tracing::warn!(error = %e.without_url(), "cannot reach Slack's response_url")
                }
            }
        });
    }

    async fn queue(&self, mut n: Notification) {
        n.state = Delivery::Pending;
        match self.0.store.add_notifications(&[n]).await {
            Ok(()) => self.0.wake.notify_one(),
            Err(err) => tracing::error!(error = %err, "cannot queue a notification"),
        }
    }
}

/// The request's facts, as Block Kit fields.
fn facts(e: &Execution) -> Vec<Value> {
    let resource = match env(e, "RESOURCE_NAME") {
        "" => "-".to_string(),
        r => r.to_string(),
    };
    let a = e.approval.as_ref();
    vec![
        json!({"type": "mrkdwn", "text": format!("*Schema*\n{}", e.schema_id)}),
        json!({"type": "mrkdwn", "text": format!("*Resource*\n{resource}")}),
        json!({"type": "mrkdwn", "text": format!("*Requested by*\n{}", a.map_or("-", |a| a.requested_by.as_str()))}),
        json!({"type": "mrkdwn", "text": format!("*Approvals*\n{} of {}", a.map_or(0, |a| a.approved()), a.map_or(1, |a| a.required))}),
        json!({"type": "mrkdwn", "text": format!("*Runbook*\n`{}`", cut(&format!("{} {}", e.runbook, e.run_args), 200))}),
        json!({"type": "mrkdwn", "text": format!("*Expires*\n{}", a.map_or(String::new(), |a| time::rfc3339(a.expires_at)))}),
    ]
}

/// The request as first posted: facts, buttons, and the signed links.
pub fn request_message(e: &Execution, url: &str, links: Option<&(String, String)>) -> Value {
    let title = cut(&format!("Approval requested: {}", e.name), 150);
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": title}}),
        json!({"type": "section", "fields": facts(e)}),
        json!({"type": "actions", "block_id": "cloudo_decision", "elements": [
            {"type": "button", "action_id": APPROVE_ACTION, "style": "primary",
             "text": {"type": "plain_text", "text": "Approve"}, "value": e.exec_id.as_str()},
            {"type": "button", "action_id": REJECT_ACTION, "style": "danger",
             "text": {"type": "plain_text", "text": "Reject"}, "value": e.exec_id.as_str()},
        ]}),
    ];
    let mut context = format!("<{url}|Execution {}>", e.exec_id);
    if let Some((approve, reject)) = links {
        context.push_str(&format!(
            " · signed links: <{approve}|approve> · <{reject}|reject>"
        ));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}));
    json!({"text": format!("{title} ({url})"), "blocks": blocks, "unfurl_links": false})
}

/// Who decided and when, in words.
fn decided_line(e: &Execution) -> String {
    let last: Option<&Decision> = e.approval.as_ref().and_then(|a| {
        a.approvals
            .iter()
            .rev()
            .find(|d| d.decision == Verdict::Reject)
            .or(a.approvals.last())
    });
    let Some(d) = last else {
        return format!("Now {}", e.status);
    };
    let who = match d.by.strip_prefix("slack:") {
        Some(user) => format!("<@{user}>"),
        None => d.by.clone(),
    };
    let what = match (e.status, d.via.as_str()) {
        (Status::Rejected, "expiry") => "Expired: nobody approved in time".to_string(),
        (Status::Rejected, _) => format!("Rejected by {who}"),
        (Status::Pending, _) => format!("Approved by {who}; more approvals are needed"),
        _ => format!("Approved by {who}"),
    };
    let comment = d
        .comment
        .as_deref()
        .map(|c| format!(": {}", cut(c, 500)))
        .unwrap_or_default();
    format!("{what} at {}{comment}", time::rfc3339(d.at))
}

/// The request once decided (or after a decision that left it waiting): the facts, who
/// decided and when; no buttons unless it still waits.
pub fn decided_message(e: &Execution, url: &str) -> Value {
    if e.status == Status::Pending {
        let mut m = request_message(e, url, None);
        let line = decided_line(e);
        if let Some(blocks) = m["blocks"].as_array_mut() {
            blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": line}]}));
        }
        return m;
    }
    let line = decided_line(e);
    let title = cut(&format!("Approval request: {} — {}", e.name, e.status), 150);
    json!({
        "text": format!("{title}: {line}"),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title}},
            {"type": "section", "fields": facts(e)},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("{line} · <{url}|Execution {}>", e.exec_id)}]},
        ],
        "unfurl_links": false,
    })
}
