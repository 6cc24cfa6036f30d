//! Operator documents (the schema catalog, routing rules, notification routes), all
//! handled the same way:
//!
//! * **loaded** at start from their file when one is given (checked strictly, and stored,
//!   replacing what the API stored), else from the store (a stored document that no longer
//!   fits the catalog is kept, with a warning), else empty;
//! * **replaced** through the API (`PUT`): parsed, checked, stored, applied;
//! * **re-read** every few seconds on a shared store (`follow.rs`), since a `PUT` reaches
//!   only the replica that answered it: each replica applies what changed.
//!
//! A document type says how it parses, checks, reads and writes itself ([`Document`]);
//! [`Appliers`] says where each goes once accepted.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use cloudo_core::notify::NotifyRoutes;
use cloudo_core::routing::RoutingRules;
use cloudo_core::store::StoreResult;
use cloudo_core::{Catalog, Store, StoreError};

mod catalog;
mod follow;
pub mod runbooks;
pub use catalog::LiveCatalog;
pub use follow::{Appliers, REREAD_EVERY, follow};

/// A document operators give as a file or replace through the API.
pub trait Document: Default + Sized + Send + Sync + 'static {
    /// What it is, for messages ("routing rules").
    const WHAT: &'static str;
    /// Parses the operator's text (a file, a `PUT` body).
    fn parse(text: &str) -> Result<Self, String>;
    /// Whether it fits the catalog.
    fn check(&self, _catalog: &Catalog) -> Result<(), String> {
        Ok(())
    }
    /// A few words on what it holds, for the log.
    fn summary(&self) -> String;
    /// The stored document and its stored form (compared between re-reads), if any.
    fn read(
        store: &dyn Store,
    ) -> impl Future<Output = anyhow::Result<Option<(Self, String)>>> + Send;
    /// Stores it, replacing the stored one.
    fn write(&self, store: &dyn Store) -> impl Future<Output = StoreResult<()>> + Send;
}

/// A document kept as one setting: its JSON form, read back with its own parser.
async fn read_setting<D: Document>(
    store: &dyn Store,
    setting: &str,
) -> anyhow::Result<Option<(D, String)>> {
    let Some(text) = store.get_setting(setting).await? else {
        return Ok(None);
    };
    let doc = D::parse(&text)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("stored {}", D::WHAT))?;
    Ok(Some((doc, text)))
}

async fn write_setting<D: serde::Serialize>(
    store: &dyn Store,
    setting: &str,
    doc: &D,
) -> StoreResult<()> {
    let text = serde_json::to_string(doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    store.put_setting(setting, &text).await
}

impl Document for RoutingRules {
    const WHAT: &'static str = "routing rules";

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

    async fn read(store: &dyn Store) -> anyhow::Result<Option<(Self, String)>> {
        read_setting(store, "routes").await
    }

    async fn write(&self, store: &dyn Store) -> StoreResult<()> {
        write_setting(store, "routes", self).await
    }
}

impl Document for NotifyRoutes {
    const WHAT: &'static str = "notification routing";

    fn parse(text: &str) -> Result<Self, String> {
        NotifyRoutes::parse(text).map_err(|e| e.to_string())
    }

    fn summary(&self) -> String {
        format!("{} teams, {} rules", self.teams.len(), self.rules.len())
    }

    async fn read(store: &dyn Store) -> anyhow::Result<Option<(Self, String)>> {
        read_setting(store, "notify-routes").await
    }

    async fn write(&self, store: &dyn Store) -> StoreResult<()> {
        write_setting(store, "notify-routes", self).await
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
        doc.write(store).await?;
        tracing::info!(what, file = %path.display(), summary = doc.summary(), "loaded");
        return Ok((doc, Some(path.to_path_buf())));
    }
    let Some((doc, _)) = D::read(store).await? else {
        tracing::info!(what, "none given or stored: empty");
        return Ok((D::default(), None));
    };
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
    Store(#[from] StoreError),
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

    /// Changes the stored schedules document (one entry at a time: compare-and-swap);
    /// returns it as it now is.
    pub async fn edit_schedules(
        &self,
        f: impl Fn(&mut cloudo_core::schedule::ScheduleSet) + Send + Sync,
    ) -> StoreResult<cloudo_core::schedule::ScheduleSet> {
        crate::services::scheduler::edit_stored(&*self.0, f).await
    }

    /// Changes the stored catalog in one atomic step (one entry added, replaced or
    /// removed); returns the catalog as it now is, for the caller to apply.
    pub async fn edit_catalog(
        &self,
        f: cloudo_core::store::SchemaEdit,
    ) -> Result<Catalog, ReplaceError> {
        let invalid = |why| ReplaceError::Invalid {
            what: "catalog",
            why,
        };
        let list = self.0.edit_schemas(f).await?.map_err(invalid)?;
        let catalog = Catalog::from_schemas(list)
            .map_err(|e| invalid(format!("{}: {}", e.location, e.message)))?;
        tracing::info!(summary = catalog.schemas().len(), "catalog edited");
        Ok(catalog)
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
    doc.write(store).await?;
    tracing::info!(what = D::WHAT, summary = doc.summary(), "replaced");
    Ok(doc)
}
