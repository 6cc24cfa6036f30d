//! The circuit breaker's message: the first run a schema's hourly limit refuses tells the
//! on-call routing once (Opsgenie for on-call schemas, Slack where the team has it), so an
//! alert storm is noticed without a page per alert.

use cloudo_core::Execution;
use cloudo_core::notify::Notification;

use super::{Notifier, messages};

impl Notifier {
    /// Tells the team of `e` (just `skipped` as `rate_limited`) that its schema's runs are
    /// being refused, through the outbox.
    pub async fn on_rate_limited(&self, e: &Execution) {
        let routes = self.routes();
        let d = routes.decide(e);
        let team = routes.team(&d.team);
        let url = self.url(&e.exec_id);
        let mut out = Vec::new();
        if e.oncall && !e.dry_run && (team.has_opsgenie_key() || self.has_global_opsgenie()) {
            let alias = format!("cloudo:rate-limited:{}", e.schema_id);
            let responders = team
                .opsgenie
                .as_ref()
                .map(|o| o.responders.clone())
                .unwrap_or_default();
            let catalog = self.0.catalog.get();
            let (action, path, body) =
                messages::opsgenie_create(e, catalog.get(&e.schema_id), &alias, &responders, &url);
            out.push(Notification::new(
                &e.exec_id, e.status, "opsgenie", action, &d.team, &alias, path, &body,
            ));
        }
        if team.has_slack_credential() || self.has_global_slack() {
            out.push(self.slack_status_post(e, &d.team, &team));
        }
        if out.is_empty() {
            tracing::warn!(exec_id = %e.exec_id, schema_id = %e.schema_id,
                "runs are rate limited and no channel is configured to say so");
            return;
        }
        match self.0.store.add_notifications(&out).await {
            Ok(()) => self.0.wake.notify_one(),
            Err(err) => {
                tracing::error!(exec_id = %e.exec_id, error = %err, "cannot queue a notification")
            }
        }
    }
}
