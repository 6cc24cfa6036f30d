//! On-call notifications: what to send when an execution changes (planning, into the
//! store's outbox) and the background deliverer that sends it (retries with exponential
//! backoff and jitter, `Retry-After`, a limit, then `failed`). Delivery never blocks or
//! fails an execution.

mod approvals;
mod deliver;
mod limits;
mod messages;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use cloudo_core::notify::{Delivery, FAILURES, Notification, NotifyRoutes, is_alert};
use cloudo_core::{ExecId, Execution, Status, Store};

use crate::services::documents::LiveCatalog;
use cloudo_worker::lazy_client::LazyClient;
use cloudo_worker::secrets::Secret;
use tokio::sync::Notify;

pub use approvals::{APPROVE_ACTION, REJECT_ACTION, decided_message};
pub use messages::alias_of;

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
    /// Verifies Slack's interactive requests (the approval buttons).
    pub slack_signing_secret: Option<Secret>,
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
    catalog: LiveCatalog,
    public_url: String,
    /// Built when the first message goes out.
    http: LazyClient,
    wake: Notify,
    /// Signs the approval links that requests carry.
    links: crate::services::links::LinkSigner,
}

/// Plans notifications and delivers them.
#[derive(Clone)]
pub struct Notifier(Arc<Inner>);

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

impl Notifier {
    pub fn new(
        store: Arc<dyn Store>,
        settings: NotifySettings,
        routes: NotifyRoutes,
        catalog: LiveCatalog,
        (public_url, links): (&str, crate::services::links::LinkSigner),
    ) -> Self {
        let http = LazyClient::new(|| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(20))
                .user_agent(concat!("cloudo/", env!("CARGO_PKG_VERSION")))
        });
        Self(Arc::new(Inner {
            store,
            settings,
            routes: RwLock::new(routes),
            catalog,
            public_url: public_url.to_string(),
            http,
            wake: Notify::new(),
            links,
        }))
    }

    /// Whether any channel is configured at all (else nothing is ever planned, and status
    /// changes skip planning).
    pub fn enabled(&self) -> bool {
        // Called on every final status: reads the routes in place, without a copy.
        self.has_global_opsgenie()
            || self.has_global_slack()
            || self.0.routes.read().is_ok_and(|r| {
                r.teams
                    .values()
                    .any(|t| t.has_opsgenie_key() || t.has_slack_credential())
            })
    }

    fn has_global_opsgenie(&self) -> bool {
        self.0.settings.opsgenie_key.is_some()
    }

    fn has_global_slack(&self) -> bool {
        let s = &self.0.settings;
        s.slack_token.is_some() || s.slack_webhook.is_some()
    }

    /// The Slack channel of `team`: its own, else `--slack-channel`.
    fn slack_channel(&self, team: &cloudo_core::notify::Team) -> String {
        team.slack
            .as_ref()
            .and_then(|s| s.channel.clone())
            .or_else(|| self.0.settings.slack_channel.clone())
            .unwrap_or_default()
    }

    /// A Slack post of `e`'s status to the channel of `team` (named `team_name`).
    fn slack_status_post(
        &self,
        e: &Execution,
        team_name: &str,
        team: &cloudo_core::notify::Team,
    ) -> Notification {
        let body = messages::slack_post(e, &self.slack_channel(team), &self.url(&e.exec_id));
        Notification::new(
            &e.exec_id,
            e.status,
            "slack",
            "post",
            team_name,
            &format!("slack/{team_name}"),
            "/chat.postMessage".into(),
            &body,
        )
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
        let catalog = self.0.catalog.get();
        let schema = catalog.get(&e.schema_id);
        let mut out = Vec::new();
        let team = routes.team(&d.team);
        // A channel nobody configured for the team is not planned (a configured reference
        // whose secret is missing is: delivery then fails and says why).
        let has_opsgenie = team.has_opsgenie_key() || self.has_global_opsgenie();
        let has_slack = team.has_slack_credential() || self.has_global_slack();
        // A dry run only simulates: it never pages.
        if e.oncall && !e.dry_run && d.opsgenie && has_opsgenie {
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
            out.push(self.slack_status_post(e, &d.team, &team));
        }
        for n in &mut out {
            n.state = Delivery::Held;
        }
        if out.is_empty() && e.oncall && FAILURES.contains(&e.status) {
            // Nobody is paged for this failure: the execution says why.
            let why = if e.dry_run {
                "not sent: a dry run pages nobody".to_string()
            } else if !self.enabled() {
                "not sent: no notification channel is configured (an Opsgenie key, Slack, or \
                 teams in --notify-routes), so this on-call failure paged nobody"
                    .to_string()
            } else if !has_opsgenie && !has_slack {
                format!(
                    "not sent: team {:?} has no Opsgenie key and no Slack channel, so this \
                     on-call failure paged nobody",
                    d.team
                )
            } else {
                format!(
                    "not sent: the notification routing pages nobody for a {} run of this schema",
                    e.status
                )
            };
            let mut n = Notification::new(
                &e.exec_id,
                e.status,
                "none",
                "none",
                &d.team,
                "none",
                String::new(),
                &serde_json::Value::Null,
            );
            n.state = Delivery::Skipped;
            n.last_error = Some(why);
            out.push(n);
        }
        out
    }

    /// On-call schemas whose failures no channel would carry (for the start-up warning).
    pub fn unpaged_oncall_schemas(&self) -> Vec<String> {
        if self.enabled() {
            return Vec::new();
        }
        self.0
            .catalog
            .get()
            .schemas()
            .iter()
            .filter(|s| s.oncall)
            .map(|s| s.id.clone())
            .collect()
    }

    /// An execution recorded for a `Resolved` alert closes its open Opsgenie alert.
    pub async fn on_created(&self, e: &Execution) {
        if e.status == Status::Pending {
            return self.on_requested(e).await;
        }
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
        let mut due = false;
        for mut n in held {
            if n.state == Delivery::Skipped {
                continue;
            }
            due |= stored;
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
        // Only a released message is work for the deliverer: waking it for every status
        // change cost each run a lease write and an outbox read.
        if due {
            self.0.wake.notify_one();
        }
    }
}
