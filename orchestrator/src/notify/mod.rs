//! On-call notifications: what to send when an execution changes (planning, into the
//! store's outbox) and the background deliverer that sends it (retries with exponential
//! backoff and jitter, `Retry-After`, a limit, then `failed`). Delivery never blocks or
//! fails an execution.

mod messages;

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cloudo_core::notify::{
    DEFAULT_TEAM, Delivery, FAILURES, Notification, NotifyRoutes, SecretRef, is_alert,
};
use cloudo_core::{Catalog, ExecId, Execution, Status, Store, time};
use cloudo_worker::runbooks::Secret;
use tokio::sync::{Notify, watch};

pub use messages::alias_of;

/// The store setting holding the routing document set through the API.
pub const ROUTES_SETTING: &str = "notify-routes";

/// Global channels and delivery settings (the default team's credentials).
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// Base URL of the Opsgenie (or JSM Operations) alert API.
    pub opsgenie_url: String,
    pub opsgenie_key: Option<Secret>,
    pub slack_url: String,
    pub slack_token: Option<Secret>,
    pub slack_channel: Option<String>,
    pub slack_webhook: Option<Secret>,
    pub routes_file: Option<std::path::PathBuf>,
    /// Attempts before a notification is recorded as failed.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt (with jitter), at most 5 minutes.
    pub backoff: Duration,
}

/// `us`, `eu`, `jsm` or a URL.
pub fn opsgenie_base(s: &str) -> String {
    match s.trim() {
        "" | "us" => "https://api.opsgenie.com".into(),
        "eu" => "https://api.eu.opsgenie.com".into(),
        "jsm" => "https://api.atlassian.com/jsm/ops/integration".into(),
        url => url.trim_end_matches('/').to_string(),
    }
}

struct Inner {
    store: Arc<dyn Store>,
    settings: NotifySettings,
    routes: RwLock<NotifyRoutes>,
    catalog: Arc<Catalog>,
    public_url: String,
    http: reqwest::Client,
    wake: Notify,
}

/// Plans notifications and delivers them.
#[derive(Clone)]
pub struct Notifier(Arc<Inner>);

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

/// Why a send did not succeed.
#[derive(Debug)]
enum SendError {
    /// Try again (429, 5xx, connection), after `after` if the server said so.
    Retry(String, Option<Duration>),
    /// Never going to work (other 4xx, missing credentials).
    Fatal(String),
}

impl Notifier {
    pub fn new(
        store: Arc<dyn Store>,
        settings: NotifySettings,
        routes: NotifyRoutes,
        catalog: Arc<Catalog>,
        public_url: &str,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .user_agent(concat!("cloudo/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self(Arc::new(Inner {
            store,
            settings,
            routes: RwLock::new(routes),
            catalog,
            public_url: public_url.to_string(),
            http,
            wake: Notify::new(),
        })))
    }

    /// Whether any channel is configured at all (else nothing is ever planned, and status
    /// changes skip planning).
    pub fn enabled(&self) -> bool {
        let s = &self.0.settings;
        s.opsgenie_key.is_some()
            || s.slack_token.is_some()
            || s.slack_webhook.is_some()
            || self.routes().teams.values().any(|t| {
                t.opsgenie.as_ref().is_some_and(|o| o.key.is_some())
                    || t.slack
                        .as_ref()
                        .is_some_and(|s| s.token.is_some() || s.webhook.is_some())
            })
    }

    pub fn routes(&self) -> NotifyRoutes {
        self.0.routes.read().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn set_routes(&self, routes: NotifyRoutes) {
        if let Ok(mut r) = self.0.routes.write() {
            *r = routes;
        }
    }

    /// The routes file given at start-up, if any.
    pub fn routes_file(&self) -> Option<&std::path::Path> {
        self.0.settings.routes_file.as_deref()
    }

    fn alias_key(alias: &str) -> String {
        format!("opsgenie-alias/{alias}")
    }

    async fn alias_open(&self, alias: &str) -> bool {
        matches!(
            self.0.store.get_setting(&Self::alias_key(alias)).await,
            Ok(Some(v)) if v == "open"
        )
    }

    async fn set_alias(&self, alias: &str, open: bool) {
        let v = if open { "open" } else { "closed" };
        if let Err(e) = self.0.store.put_setting(&Self::alias_key(alias), v).await {
            tracing::warn!(error = %e, "cannot record the Opsgenie alert state");
        }
    }

    fn url(&self, id: &ExecId) -> String {
        format!("{}/api/executions/{id}", self.0.public_url)
    }

    /// What `e` (in its new status) sends, as held notifications. Also records the
    /// Opsgenie alias as open or closed.
    pub async fn plan(&self, e: &Execution) -> Vec<Notification> {
        let routes = self.routes();
        let d = routes.decide(e);
        let schema = self.0.catalog.get(&e.schema_id);
        let mut out = Vec::new();
        let team = routes.team(&d.team);
        let s = &self.0.settings;
        // A channel nobody configured for the team is not planned (a configured reference
        // whose secret is missing is: delivery then fails and says why).
        let has_opsgenie =
            team.opsgenie.as_ref().is_some_and(|o| o.key.is_some()) || s.opsgenie_key.is_some();
        let has_slack = team
            .slack
            .as_ref()
            .is_some_and(|t| t.token.is_some() || t.webhook.is_some())
            || s.slack_token.is_some()
            || s.slack_webhook.is_some();
        if e.oncall && d.opsgenie && has_opsgenie {
            let alias = alias_of(e);
            let responders = team
                .opsgenie
                .as_ref()
                .map(|o| o.responders.clone())
                .unwrap_or_default();
            if FAILURES.contains(&e.status) {
                let open = self.alias_open(&alias).await;
                let (action, path, body) = if open {
                    messages::opsgenie_note(e, &alias, &self.url(&e.exec_id))
                } else {
                    messages::opsgenie_create(e, schema, &alias, &responders, &self.url(&e.exec_id))
                };
                out.push(Notification::new(
                    &e.exec_id, e.status, "opsgenie", action, &d.team, &alias, path, &body,
                ));
                self.set_alias(&alias, true).await;
            } else if e.status == Status::Succeeded && self.alias_open(&alias).await {
                let note = format!("cloudo: {} succeeded ({})", e.name, self.url(&e.exec_id));
                let (path, body) = messages::opsgenie_close(&alias, &note);
                out.push(Notification::new(
                    &e.exec_id, e.status, "opsgenie", "close", &d.team, &alias, path, &body,
                ));
                self.set_alias(&alias, false).await;
            }
        }
        if d.slack.contains(&e.status) && has_slack {
            let channel = team
                .slack
                .as_ref()
                .and_then(|s| s.channel.clone())
                .or_else(|| self.0.settings.slack_channel.clone())
                .unwrap_or_default();
            let body = messages::slack_post(e, &channel, &self.url(&e.exec_id));
            out.push(Notification::new(
                &e.exec_id,
                e.status,
                "slack",
                "post",
                &d.team,
                &format!("slack/{}", d.team),
                "/chat.postMessage".into(),
                &body,
            ));
        }
        for n in &mut out {
            n.state = Delivery::Held;
        }
        out
    }

    /// An execution recorded for a `Resolved` alert closes its open Opsgenie alert.
    pub async fn on_created(&self, e: &Execution) {
        if !is_alert(e) || e.env.get("MONITOR_CONDITION").map(String::as_str) != Some("Resolved") {
            return;
        }
        let alias = alias_of(e);
        if !self.alias_open(&alias).await {
            return;
        }
        let d = self.routes().decide(e);
        let note = format!("cloudo: the alert was resolved ({})", self.url(&e.exec_id));
        let (path, body) = messages::opsgenie_close(&alias, &note);
        let n = Notification::new(
            &e.exec_id, e.status, "opsgenie", "close", &d.team, &alias, path, &body,
        );
        self.set_alias(&alias, false).await;
        match self.0.store.add_notifications(&[n]).await {
            Ok(()) => self.0.wake.notify_one(),
            Err(err) => {
                tracing::error!(exec_id = %e.exec_id, error = %err, "cannot queue a notification")
            }
        }
    }

    /// Releases held notifications once their status change is stored (or marks them
    /// failed when it was refused).
    pub async fn release(&self, held: Vec<Notification>, stored: bool) {
        for mut n in held {
            if stored {
                n.state = Delivery::Pending;
            } else {
                n.state = Delivery::Failed;
                n.last_error = Some("not sent: the status change was not recorded".into());
            }
            if let Err(e) = self.0.store.update_notification(&n).await {
                tracing::error!(exec_id = %n.exec_id, error = %e, "cannot release a notification");
            }
        }
        self.0.wake.notify_one();
    }

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
                Ok(()) => {
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

    async fn send(&self, n: &Notification) -> Result<(), SendError> {
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
                    .post(format!("{base}{}", n.path))
                    .header("Authorization", format!("GenieKey {key}"))
                    .json(&body);
                let rsp = req.send().await.map_err(transport)?;
                check(rsp).await.map(|_| ())
            }
            "slack" => {
                let sl = team.slack.unwrap_or_default();
                let webhook = match &sl.webhook {
                    Some(r) => Some(Self::secret(
                        Some(r),
                        None,
                        &format!("the Slack webhook{who}"),
                    )?),
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
                    _ => Ok(()),
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
