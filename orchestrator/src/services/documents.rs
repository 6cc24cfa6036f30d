//! Operator documents kept in the store (routing rules, notification routes): with several
//! orchestrators on one store, a `PUT` reaches the replica that answered it only, so every
//! replica re-reads them every few seconds and applies what changed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cloudo_core::Store;
use cloudo_core::notify::NotifyRoutes;
use cloudo_core::routing::RoutingRules;
use tokio::sync::watch;

use crate::services::ingest::Ingest;
use crate::services::notify::Notifier;

/// How often a replica re-reads the documents.
pub const REREAD_EVERY: Duration = Duration::from_secs(2);

/// The documents this module follows, by setting key.
const KEYS: [&str; 2] = [
    crate::api::routes::ROUTES_SETTING,
    crate::services::notify::ROUTES_SETTING,
];

/// What applies a re-read document.
#[derive(Clone)]
pub struct Appliers {
    pub ingest: Ingest,
    pub notifier: Notifier,
}

impl Appliers {
    /// Parses and applies the stored text of `key`; `Err` says why it was not.
    fn apply(&self, key: &str, text: &str) -> Result<(), String> {
        if key == crate::api::routes::ROUTES_SETTING {
            let routes = RoutingRules::parse(text).map_err(|e| e.to_string())?;
            if let Err(e) = routes.check_schemas(|id| self.ingest.catalog.get(id).is_some()) {
                tracing::warn!(error = %e, "stored routing rules name schemas not in this catalog");
            }
            tracing::info!(
                rules = routes.rules.len(),
                "routing rules changed in the store; applied"
            );
            self.ingest.set_routes(routes);
        } else {
            let routes = NotifyRoutes::parse(text).map_err(|e| e.to_string())?;
            tracing::info!(
                teams = routes.teams.len(),
                rules = routes.rules.len(),
                "notification routing changed in the store; applied"
            );
            self.notifier.set_routes(routes);
        }
        Ok(())
    }
}

/// Re-reads the documents every `every` until `stop`, applying each change once.
pub async fn follow(
    store: Arc<dyn Store>,
    appliers: Appliers,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    // What was applied at start-up (or last seen): only a different text is a change.
    let mut seen: HashMap<&str, Option<String>> = HashMap::new();
    for key in KEYS {
        seen.insert(key, store.get_setting(key).await.ok().flatten());
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        for key in KEYS {
            let text = match store.get_setting(key).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(setting = key, error = %e, "cannot re-read a document");
                    continue;
                }
            };
            if seen.get(key) == Some(&text) {
                continue;
            }
            if let Some(t) = &text
                && let Err(e) = appliers.apply(key, t)
            {
                tracing::warn!(setting = key, error = %e, "a stored document does not parse; kept the one in use");
            }
            seen.insert(key, text);
        }
    }
}
