//! The deliverer: sends the outbox's pending notifications, one pass at a time, in order
//! per alias / team, with retries (exponential backoff with jitter, `Retry-After`) up to a
//! limit; one per deployment (the store's `notifier` lease).

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use cloudo_core::notify::{DEFAULT_TEAM, Delivery, Notification, SecretRef};
use cloudo_core::time;
use cloudo_worker::secrets::Secret;
use tokio::sync::watch;

use super::{Notifier, opsgenie_base};

/// Why a send did not succeed.
#[derive(Debug)]
enum SendError {
    /// Try again (429, 5xx, connection), after `after` if the server said so.
    Retry(String, Option<Duration>),
    /// Never going to work (other 4xx, missing credentials).
    Fatal(String),
}

impl Notifier {
    /// The deliverer: one per deployment at a time (the `notifier` lease), until shutdown.
    pub async fn run(self, holder: String, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = self.0.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.changed() => return,
            }
            match self
                .0
                .store
                .try_lease("notifier", &holder, Duration::from_secs(10), time::now())
                .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take the notifier lease");
                    continue;
                }
            }
            if let Err(e) = self.deliver_due().await {
                tracing::warn!(error = %e, "notification delivery pass failed");
            }
        }
    }

    /// One pass over the outbox: messages with the same key go out in order.
    async fn deliver_due(&self) -> anyhow::Result<()> {
        let now = time::now();
        let mut blocked: HashSet<String> = HashSet::new();
        for mut n in self.0.store.open_notifications(500).await? {
            if blocked.contains(&n.key) {
                continue;
            }
            if n.state == Delivery::Held {
                // Its status change should have followed at once; a writer that died in
                // between leaves it held: release or drop it by what the execution says.
                if now - n.created_at > chrono::Duration::seconds(30) {
                    let e = self.0.store.get_execution(&n.exec_id).await?;
                    let happened =
                        e.is_some_and(|e| e.transitions.iter().any(|t| t.to == n.status));
                    self.release(vec![n.clone()], happened).await;
                }
                blocked.insert(n.key.clone());
                continue;
            }
            if n.next_at > now {
                blocked.insert(n.key.clone());
                continue;
            }
            n.attempts += 1;
            match self.send(&n).await {
                Ok(reply) => {
                    n.reply = reply;
                    n.state = Delivery::Delivered;
                    n.delivered_at = Some(time::now());
                    tracing::info!(exec_id = %n.exec_id, channel = %n.channel, action = %n.action,
                        team = %n.team, attempts = n.attempts, "notification delivered");
                }
                Err(SendError::Fatal(why)) => {
                    n.state = Delivery::Failed;
                    n.last_error = Some(why);
                    tracing::warn!(exec_id = %n.exec_id, channel = %n.channel, error = n.last_error.as_deref().unwrap_or(""),
                        "notification failed; not retried");
                }
                Err(SendError::Retry(why, after)) => {
                    n.last_error = Some(why);
                    if n.attempts >= self.0.settings.max_attempts {
                        n.state = Delivery::Failed;
                        tracing::warn!(exec_id = %n.exec_id, channel = %n.channel, attempts = n.attempts,
                            error = n.last_error.as_deref().unwrap_or(""), "notification given up");
                    } else {
                        let wait = after.unwrap_or_else(|| self.backoff(n.attempts));
                        n.next_at = time::now()
                            + chrono::Duration::from_std(wait)
                                .unwrap_or(chrono::Duration::minutes(5));
                        blocked.insert(n.key.clone());
                        tracing::info!(exec_id = %n.exec_id, channel = %n.channel, attempts = n.attempts,
                            retry_in_ms = wait.as_millis() as u64, error = n.last_error.as_deref().unwrap_or(""),
                            "notification will be retried");
                    }
                }
            }
            crate::services::telemetry::notification(&n.channel, n.state);
            self.0.store.update_notification(&n).await?;
        }
        Ok(())
    }

    /// Exponential backoff with ±20 % jitter, at most 5 minutes.
    fn backoff(&self, attempts: u32) -> Duration {
        let base = self.0.settings.backoff.as_millis() as f64;
        let exp = base * 2f64.powi(attempts.saturating_sub(1).min(16) as i32);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(attempts);
        let jitter = 0.8 + 0.4 * ((h.finish() % 1000) as f64 / 1000.0);
        Duration::from_millis((exp * jitter).min(300_000.0) as u64)
    }

    fn secret(
        r: Option<&SecretRef>,
        default: Option<&Secret>,
        what: &str,
    ) -> Result<String, SendError> {
        match r {
            Some(r) => r
                .resolve()
                .map_err(|e| SendError::Fatal(format!("{what}: {e}"))),
            None => default
                .map(|s| s.expose().to_string())
                .ok_or_else(|| SendError::Fatal(format!("{what} is not configured"))),
        }
    }

    /// Sends `n`; what the service answered that later messages need (a Slack message's
    /// channel and `ts`).
    async fn send(&self, n: &Notification) -> Result<Option<String>, SendError> {
        let s = &self.0.settings;
        let team = self.routes().team(&n.team);
        let body: serde_json::Value = serde_json::from_str(&n.body)
            .map_err(|e| SendError::Fatal(format!("bad body: {e}")))?;
        let who = if n.team == DEFAULT_TEAM {
            String::new()
        } else {
            format!(" of team {}", n.team)
        };
        match n.channel.as_str() {
            "opsgenie" => {
                let og = team.opsgenie.unwrap_or_default();
                let key = Self::secret(
                    og.key.as_ref(),
                    s.opsgenie_key.as_ref(),
                    &format!("the Opsgenie key{who}"),
                )?;
                let base = og
                    .api_url
                    .as_deref()
                    .map(opsgenie_base)
                    .unwrap_or_else(|| s.opsgenie_url.clone());
                let req = self
                    .0
                    .http
                    .get()
                    .map_err(|e| SendError::Retry(e, None))?
                    .post(format!("{base}{}", n.path))
                    .header("Authorization", format!("GenieKey {key}"))
                    .json(&body);
                let rsp = req.send().await.map_err(transport)?;
                check(rsp).await.map(|_| None)
            }
            "slack" => {
                let sl = team.slack.unwrap_or_default();
                let webhook = match &sl.webhook {
                    Some(r) => Some(Self::secret(
                        Some(r),
                        None,
                        &format!("the Slack webhook{who}"),
                    )?),
                    // An incoming webhook posts only: updating a message needs the Web API.
                    None if n.action == "update" => None,
                    None if sl.token.is_none() && s.slack_token.is_none() => {
                        s.slack_webhook.as_ref().map(|w| w.expose().to_string())
                    }
                    None => None,
                };
                let rsp = match webhook {
                    Some(url) => {
                        let mut body = body;
                        if let Some(o) = body.as_object_mut() {
                            o.remove("channel");
                        }
                        self.0
                            .http
                            .get()
                            .map_err(|e| SendError::Retry(e, None))?
                            .post(url)
                            .json(&body)
                            .send()
                            .await
                            .map_err(transport)?
                    }
                    None => {
                        let token = Self::secret(
                            sl.token.as_ref(),
                            s.slack_token.as_ref(),
                            &format!("the Slack token{who}"),
                        )?;
                        self.0
                            .http
                            .get()
                            .map_err(|e| SendError::Retry(e, None))?
                            .post(format!("{}{}", s.slack_url, n.path))
                            .bearer_auth(token)
                            .json(&body)
                            .send()
                            .await
                            .map_err(transport)?
                    }
                };
                let text = check(rsp).await?;
                // The Web API answers 200 with {"ok": false, "error": "..."}; webhooks say "ok".
                match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(v) if v["ok"] == false => {
                        let err = v["error"].as_str().unwrap_or("unknown").to_string();
                        if err == "ratelimited"
                            || err == "internal_error"
                            || err == "service_unavailable"
                        {
                            Err(SendError::Retry(format!("Slack: {err}"), None))
                        } else {
                            Err(SendError::Fatal(format!("Slack: {err}")))
                        }
                    }
                    Ok(v) => Ok(v["channel"]
                        .as_str()
                        .zip(v["ts"].as_str())
                        .map(|(c, ts)| format!("{c} {ts}"))),
                    Err(_) => Ok(None),
                }
            }
            other => Err(SendError::Fatal(format!("unknown channel {other:?}"))),
        }
    }
}

/// A transport error, without its URL (a Slack webhook URL is a secret).
fn transport(e: reqwest::Error) -> SendError {
    SendError::Retry(
        format!("cannot reach the service: {}", e.without_url()),
        None,
    )
}

/// 2xx: the body; 429 / 5xx: retry (after `Retry-After`); other: fatal.
async fn check(rsp: reqwest::Response) -> Result<String, SendError> {
    let status = rsp.status();
    let after = rsp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(retry_after);
    let text = rsp.text().await.unwrap_or_default();
    let excerpt: String = text.chars().take(300).collect();
    if status.is_success() {
        Ok(text)
    } else if status.as_u16() == 429 || status.is_server_error() || status.as_u16() == 408 {
        Err(SendError::Retry(format!("HTTP {status}: {excerpt}"), after))
    } else {
        Err(SendError::Fatal(format!("HTTP {status}: {excerpt}")))
    }
}

/// `Retry-After`: seconds, or an HTTP date; at most an hour.
fn retry_after(v: &str) -> Option<Duration> {
    let d = match v.trim().parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(v.trim()).ok()?;
            (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .unwrap_or_default()
        }
    };
    Some(d.min(Duration::from_secs(3600)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(retry_after("999999"), Some(Duration::from_secs(3600)));
        assert_eq!(
            retry_after("Mon, 01 Jan 2001 00:00:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
        assert_eq!(opsgenie_base("eu"), "https://api.eu.opsgenie.com");
        assert_eq!(
            opsgenie_base("jsm"),
            "https://api.atlassian.com/jsm/ops/integration"
        );
        assert_eq!(opsgenie_base("http://x/"), "http://x");
    }
}
