//! Operator documents (routing rules, notification routes), all handled the same way:
//!
//! * **loaded** at start from their file when one is given (checked strictly, and stored,
//!   replacing what the API stored), else from the store (a stored document that no longer
//!   fits the catalog is kept, with a warning), else empty;
//! * **replaced** through the API (`PUT`): parsed, checked, stored, applied;
//! * **re-read** every few seconds on a shared store, since a `PUT` reaches only the replica
//!   that answered it: each replica applies what changed.
//!
//! A document type says how it parses and checks itself ([`Document`]); [`Appliers`] says
//! where each goes once accepted. The schema catalog is the file's alone: each process loads
//! it from `--catalog` and stores it for the others to read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cloudo_core::notify::NotifyRoutes;
use cloudo_core::routing::RoutingRules;
use cloudo_core::store::StoreResult;
use cloudo_core::{Catalog, Store};
use tokio::sync::watch;

use crate::services::ingest::Ingest;
use crate::services::notify::Notifier;

/// How often a replica re-reads the documents.
pub const REREAD_EVERY: Duration = Duration::from_secs(2);

/// A document operators give as a file or replace through the API.
pub trait Document: serde::Serialize + Default + Sized {
    /// What it is, for messages ("routing rules").
    const WHAT: &'static str;
    /// The setting it is stored under.
    const SETTING: &'static str;
    fn parse(text: &str) -> Result<Self, String>;
    /// Whether it fits the catalog.
    fn check(&self, _catalog: &Catalog) -> Result<(), String> {
        Ok(())
    }
    /// A few words on what it holds, for the log.
    fn summary(&self) -> String;
}

impl Document for RoutingRules {
    const WHAT: &'static str = "routing rules";
    const SETTING: &'static str = "routes";

    fn parse(text: &str) -> Result<Self, String> {
        RoutingRules::parse(text).map_err(|e| e.to_string())
    }

    fn check(&self, catalog: &Catalog) -> Result<(), String> {
        self.check_schemas(|id| catalog.get(id).is_some())
            .map_err(|e| e.to_string())
    }

    fn summary(&self) -> String {
        format!("{} rules", self.rules.len())
    }
}

impl Document for NotifyRoutes {
    const WHAT: &'static str = "notification routing";
    const SETTING: &'static str = "notify-routes";

    fn parse(text: &str) -> Result<Self, String> {
        NotifyRoutes::parse(text).map_err(|e| e.to_string())
    }

    fn summary(&self) -> String {
        format!("{} teams, {} rules", self.teams.len(), self.rules.len())
    }
}

/// Loads a document at start: its file (checked, stored), else the stored one, else empty.
pub async fn load<D: Document>(
    file: Option<&Path>,
    store: &dyn Store,
    catalog: &Catalog,
) -> anyhow::Result<(D, Option<PathBuf>)> {
    let what = D::WHAT;
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {what} file {}", path.display()))?;
        let doc = D::parse(&text)
            .and_then(|d| d.check(catalog).map(|()| d))
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("{what} file {}", path.display()))?;
        store
            .put_setting(D::SETTING, &serde_json::to_string(&doc)?)
            .await?;
        tracing::info!(what, file = %path.display(), summary = doc.summary(), "loaded");
        return Ok((doc, Some(path.to_path_buf())));
    }
    let Some(text) = store.get_setting(D::SETTING).await? else {
        return Ok((D::default(), None));
    };
    let doc = D::parse(&text)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("stored {what}"))?;
    if let Err(e) = doc.check(catalog) {
        tracing::warn!(what, error = %e, "the stored document no longer fits the catalog; kept");
    }
    tracing::info!(what, summary = doc.summary(), "loaded from the store");
    Ok((doc, None))
}

/// Why a replacement was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReplaceError {
    #[error("invalid {what}: {why}")]
    Invalid { what: &'static str, why: String },
    #[error(transparent)]
    Store(#[from] cloudo_core::StoreError),
}

/// Replacements the API makes (the handlers hold no writer).
#[derive(Clone)]
pub struct Documents(Arc<dyn Store>);

impl std::fmt::Debug for Documents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Documents").finish_non_exhaustive()
    }
}

impl Documents {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self(store)
    }

    /// See [`replace`].
    pub async fn replace<D: Document>(
        &self,
        text: &str,
        catalog: &Catalog,
    ) -> Result<D, ReplaceError> {
        replace(text, &*self.0, catalog).await
    }
}

/// Parses, checks and stores a replacement; the caller applies what it returns.
pub async fn replace<D: Document>(
    text: &str,
    store: &dyn Store,
    catalog: &Catalog,
) -> Result<D, ReplaceError> {
    let invalid = |why| ReplaceError::Invalid { what: D::WHAT, why };
    let doc = D::parse(text).map_err(invalid)?;
    doc.check(catalog).map_err(invalid)?;
    store_doc(store, &doc).await?;
    tracing::info!(what = D::WHAT, summary = doc.summary(), "replaced");
    Ok(doc)
}

async fn store_doc<D: Document>(store: &dyn Store, doc: &D) -> StoreResult<()> {
    let text =
        serde_json::to_string(doc).map_err(|e| cloudo_core::StoreError::Corrupt(e.to_string()))?;
    store.put_setting(D::SETTING, &text).await
}

/// Where each document goes once accepted.
#[derive(Clone)]
pub struct Appliers {
    pub ingest: Ingest,
    pub notifier: Notifier,
}

/// The documents [`follow`] re-reads, by setting.
const FOLLOWED: [&str; 2] = [RoutingRules::SETTING, NotifyRoutes::SETTING];

impl Appliers {
    /// Parses and applies the stored text of `setting`; `Err` says why it was not.
    fn apply(&self, setting: &str, text: &str) -> Result<(), String> {
        if setting == RoutingRules::SETTING {
            let rules = self.reread::<RoutingRules>(text)?;
            self.ingest.set_routes(rules);
        } else {
            let routes = self.reread::<NotifyRoutes>(text)?;
            self.notifier.set_routes(routes);
        }
        Ok(())
    }

    fn reread<D: Document>(&self, text: &str) -> Result<D, String> {
        let doc = D::parse(text)?;
        if let Err(e) = doc.check(&self.ingest.catalog) {
            tracing::warn!(what = D::WHAT, error = %e, "the stored document does not fit this catalog");
        }
        tracing::info!(
            what = D::WHAT,
            summary = doc.summary(),
            "changed in the store; applied"
        );
        Ok(doc)
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
    for key in FOLLOWED {
        seen.insert(key, store.get_setting(key).await.ok().flatten());
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        for key in FOLLOWED {
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
