//! `POST /api/integrations/slack/actions`: Slack's interactive requests, the Approve /
//! Reject buttons of an approval request. Verified with Slack's v0 signature (HMAC-SHA256 of
//! `v0:<timestamp>:<body>` with the signing secret, timestamps at most 5 minutes old,
//! compared in constant time); the clicking user decides as `slack:<user id>`, if the
//! team's `approvers` allow; the message is then rewritten without its buttons.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cloudo_core::approval::{Decision, Verdict};
use cloudo_core::auth::AuditRecord;
use cloudo_core::{ExecId, time};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

use super::AppState;
use super::error::ApiError;
use crate::services::executions::DecideError;
use crate::services::notify::{APPROVE_ACTION, REJECT_ACTION, decided_message};

/// How old a signed request may be.
const REPLAY_WINDOW_SECS: i64 = 300;

/// Checks Slack's `X-Slack-Signature` over `body` at `now` (unix seconds).
pub fn verify(secret: &[u8], headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("missing {name}"))
    };
    let ts: i64 = header("x-slack-request-timestamp")?
        .trim()
        .parse()
        .map_err(|_| "X-Slack-Request-Timestamp is not a number".to_string())?;
    if (now - ts).abs() > REPLAY_WINDOW_SECS {
        return Err("the request is older than 5 minutes (or from the future)".into());
    }
    let sig = header("x-slack-signature")?;
    let hex = sig
        .strip_prefix("v0=")
        .ok_or("X-Slack-Signature is not a v0 signature")?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("X-Slack-Signature is malformed".into());
    }
    let given: Vec<u8> = (0..64)
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(format!("v0:{ts}:").as_bytes());
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| "the signature does not match".to_string())
}

#[derive(Debug, Deserialize)]
struct Form {
    payload: String,
}

#[derive(Debug, Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    user: SlackUser,
    #[serde(default)]
    actions: Vec<Action>,
    #[serde(default)]
    response_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SlackUser {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Action {
    action_id: String,
    #[serde(default)]
    value: Option<String>,
}

/// Tells the clicking user only.
fn ephemeral(text: &str) -> serde_json::Value {
    json!({"response_type": "ephemeral", "replace_original": false, "text": text})
}

pub async fn actions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let Some(secret) = state.notifier.slack_signing_secret() else {
        // Not a failure of this server: the route is off until a secret is set.
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "slack_not_configured",
            "Slack actions need CLOUDO_SLACK_SIGNING_SECRET",
        ));
    };
    verify(
        secret.expose().as_bytes(),
        &headers,
        &body,
        time::now().timestamp(),
    )
    .map_err(|why| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            format!("not a request from Slack: {why}"),
        )
    })?;
    let form: Form = serde_urlencoded::from_bytes(&body)
        .map_err(|e| ApiError::bad_request(format!("expected a form with a payload: {e}")))?;
    let p: Payload = serde_json::from_str(&form.payload)
        .map_err(|e| ApiError::bad_request(format!("payload: {e}")))?;
    let Some((action, verdict)) = p.actions.iter().find_map(|a| match a.action_id.as_str() {
        APPROVE_ACTION => Some((a, Verdict::Approve)),
        REJECT_ACTION => Some((a, Verdict::Reject)),
        _ => None,
    }) else {
        // Other interactions (a link button, another app's): nothing to do.
        return Ok(StatusCode::OK.into_response());
    };
    if p.kind != "block_actions" {
        return Ok(StatusCode::OK.into_response());
    }
    let id = action
        .value
        .as_deref()
        .and_then(ExecId::parse)
        .ok_or_else(|| ApiError::bad_request("the button carries no execution id"))?;
    let by = format!("slack:{}", p.user.id);
    let respond = |msg: serde_json::Value| {
        if let Some(url) = &p.response_url {
            state.notifier.respond(url, msg);
        }
    };
    let e = state
        .store
        .get_execution(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no execution {id}")))?;
    let (outcome, said) = match state.notifier.slack_user_may_decide(&e, &p.user.id).await {
        Ok(false) => {
            respond(ephemeral(
                "You are not one of this team's approvers: nothing was decided.",
            ));
            (StatusCode::FORBIDDEN, "not an approver".to_string())
        }
        Err(why) => {
            respond(ephemeral(&format!("Cannot check who may approve: {why}")));
            (StatusCode::SERVICE_UNAVAILABLE, why)
        }
        Ok(true) => {
            let decision = Decision {
                by: by.clone(),
                via: "slack".into(),
                decision: verdict,
                at: time::now(),
                comment: None,
            };
            match state.executions.decide(&id, decision).await {
                Ok(done) => {
                    let mut m = decided_message(&done, &state.execution_url(&id));
                    m["replace_original"] = json!(true);
                    respond(m);
                    (StatusCode::OK, done.status.to_string())
                }
                Err(DecideError::Refused(why)) => {
                    respond(ephemeral(&format!("Not recorded: {why}")));
                    (StatusCode::CONFLICT, why)
                }
                Err(err) => {
                    respond(ephemeral(
                        "Not recorded: cloudo could not store it; try again.",
                    ));
                    (StatusCode::SERVICE_UNAVAILABLE, err.to_string())
                }
            }
        }
    };
    tracing::info!(exec_id = %id, by = %by, decision = verdict.as_str(), outcome = %said, "Slack action");
    state
        .audit
        .record(AuditRecord {
            at: time::now(),
            actor: by,
            role: "slack".into(),
            action: format!("{} via slack", verdict.as_str()),
            target: format!("/api/executions/{id}"),
            source: "slack".into(),
            outcome: outcome.as_u16(),
        })
        .await;
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(secret: &[u8], ts: i64, body: &[u8]) -> HeaderMap {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("key");
        mac.update(format!("v0:{ts}:").as_bytes());
        mac.update(body);
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut h = HeaderMap::new();
        h.insert(
            "x-slack-request-timestamp",
            ts.to_string().parse().expect("header"),
        );
        h.insert(
            "x-slack-signature",
            format!("v0={hex}").parse().expect("header"),
        );
        h
    }

    /// Slack's documented example signature (api.slack.com/authentication/verifying-requests-from-slack).
    #[test]
    fn slacks_own_example_verifies_and_anything_else_does_not() {
        let secret = b"8f742231b10e8888abcd99yyyzzz85a5";
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let mut h = HeaderMap::new();
        h.insert(
            "x-slack-request-timestamp",
            "1531420618".parse().expect("header"),
        );
        h.insert(
            "x-slack-signature",
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
                .parse()
                .expect("header"),
        );
        assert_eq!(verify(secret, &h, body, 1531420618 + 10), Ok(()));
        assert!(verify(secret, &h, body, 1531420618 + 301).is_err(), "stale");
        assert!(
            verify(b"other", &h, body, 1531420618).is_err(),
            "other secret"
        );
        assert!(
            verify(secret, &h, b"token=changed", 1531420618).is_err(),
            "other body"
        );
        let ours = signed(secret, 100, b"x");
        assert_eq!(verify(secret, &ours, b"x", 100), Ok(()));
        assert!(
            verify(secret, &HeaderMap::new(), b"x", 100).is_err(),
            "no headers"
        );
    }
}
