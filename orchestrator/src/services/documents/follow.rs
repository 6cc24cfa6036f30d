//! Re-reading the documents on a shared store: a `PUT` reaches only the replica that
//! answered it, so every replica re-reads each document every few seconds and applies
//! what changed.

use std::sync::Arc;
use std::time::Duration;

use cloudo_core::notify::NotifyRoutes;
use cloudo_core::routing::RoutingRules;
use cloudo_core::schedule::ScheduleSet;
use cloudo_core::{Catalog, Store};
use tokio::sync::watch;

use super::{Document, LiveCatalog};
use crate::services::ingest::Ingest;
use crate::services::notify::Notifier;

/// How often a replica re-reads the documents.
pub const REREAD_EVERY: Duration = Duration::from_secs(2);

/// Where each document goes once accepted.
#[derive(Debug, Clone)]
pub struct Appliers {
    pub catalog: LiveCatalog,
    pub ingest: Ingest,
    pub notifier: Notifier,
    pub schedules: crate::services::scheduler::LiveSchedules,
}

/// The stored form of one document last applied (`None`: nothing stored).
#[derive(Debug, Default)]
struct Seen(Option<String>);

impl Seen {
    /// Re-reads `D`; the document when its stored form changed since the last look.
    async fn changed<D: Document>(&mut self, store: &dyn Store) -> Option<D> {
        let read = match D::read(store).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(
                    what = D::WHAT,
                    error = format!("{e:#}"),
                    "cannot re-read a document; kept the one in use"
                );
                return None;
            }
        };
        let (doc, text) = read?;
        if self.0.as_ref() == Some(&text) {
            return None;
        }
        self.0 = Some(text);
        tracing::info!(
            what = D::WHAT,
            summary = doc.summary(),
            "changed in the store; applied"
        );
        Some(doc)
    }

    /// Takes what is stored now as already applied (at start).
    async fn current<D: Document>(store: &dyn Store) -> Self {
        Self(D::read(store).await.ok().flatten().map(|(_, text)| text))
    }
}

/// Warns when a document no longer fits the catalog in use (it is applied anyway: the
/// catalog may be what changed, and a rule that names a missing schema only skips it).
fn check_fit<D: Document>(doc: &D, catalog: &Catalog) {
    if let Err(e) = doc.check(catalog) {
        tracing::warn!(what = D::WHAT, error = %e, "the stored document does not fit this catalog");
    }
}

/// Re-reads the documents every `every` until `stop`, applying each change once.
pub async fn follow(
    store: Arc<dyn Store>,
    appliers: Appliers,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut catalog = Seen::current::<Catalog>(&*store).await;
    let mut rules = Seen::current::<RoutingRules>(&*store).await;
    let mut notify = Seen::current::<NotifyRoutes>(&*store).await;
    let mut schedules = Seen::current::<ScheduleSet>(&*store).await;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        if let Some(c) = catalog.changed::<Catalog>(&*store).await {
            check_fit(&*appliers.ingest.routes(), &c);
            appliers.catalog.set(c);
        }
        let in_use = appliers.catalog.get();
        if let Some(r) = rules.changed::<RoutingRules>(&*store).await {
            check_fit(&r, &in_use);
            appliers.ingest.set_routes(r);
        }
        if let Some(n) = notify.changed::<NotifyRoutes>(&*store).await {
            check_fit(&n, &in_use);
            appliers.notifier.set_routes(n);
        }
        if let Some(s) = schedules.changed::<ScheduleSet>(&*store).await {
            check_fit(&s, &in_use);
            appliers.schedules.set(s);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::services::executions::Executions;
    use crate::services::notify::NotifySettings;
    use cloudo_sqlite::{Db, Durability, SqliteQueue, SqliteStore};

    /// What another replica stores (a catalog, then rules that name its schema) is applied
    /// here by re-reading: the catalog every service reads, and the rules.
    #[tokio::test]
    async fn documents_stored_by_another_replica_are_applied_here() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), Durability::Process).unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::new(db.clone()));
        let live = LiveCatalog::new(Catalog::default());
        let executions = Executions::new(store.clone(), Arc::new(SqliteQueue::new(db, 2)));
        let ingest = Ingest::new(
            executions,
            live.clone(),
            RoutingRules::default(),
            Duration::ZERO,
            true,
        );
        let settings = NotifySettings {
            opsgenie_url: "http://127.0.0.1:9".into(),
            opsgenie_key: None,
            slack_url: "http://127.0.0.1:9".into(),
            slack_token: None,
            slack_channel: None,
            slack_webhook: None,
            slack_signing_secret: None,
            routes_file: None,
            max_attempts: 1,
            backoff: Duration::from_millis(10),
        };
        let notifier = Notifier::new(
            store.clone(),
            settings,
            NotifyRoutes::default(),
            live.clone(),
            (
                "http://cloudo.test",
                crate::services::links::LinkSigner::new(b"k", "http://cloudo.test"),
            ),
        );
        let appliers = Appliers {
            catalog: live.clone(),
            ingest: ingest.clone(),
            notifier,
            schedules: Default::default(),
        };
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(follow(
            store.clone(),
            appliers,
            Duration::from_millis(20),
            stopped,
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let catalog = <Catalog as Document>::parse(
            r#"[{"partition_key": "p", "entity": [{"id": "a", "runbook": "a.sh"}]}]"#,
        )
        .unwrap();
        catalog.write(&*store).await.unwrap();
        let rules =
            <RoutingRules as Document>::parse("rules:\n  - when: {severity: Sev0}\n    run: a\n")
                .unwrap();
        rules.write(&*store).await.unwrap();
        let t = std::time::Instant::now();
        while live.get().get("a").is_none() || ingest.routes().rules.len() != 1 {
            assert!(t.elapsed() < Duration::from_secs(5), "not applied");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(ingest.catalog.get().schemas().len(), 1, "the one catalog");
        stop.send(true).unwrap();
        task.await.unwrap();
    }
}
