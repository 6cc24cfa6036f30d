//! Which catalog entries name a runbook that does not exist at the runbooks' current
//! version (or at the schema's pinned `ref`): warned at start-up and reported by readiness,
//! instead of found at the first run.

use std::collections::BTreeSet;

use cloudo_core::Catalog;
use cloudo_worker::RunbookSource;

/// `(schema id, runbook)` of every runbook (the schema's and its verification's) that the
/// source cannot serve; `Err` when the source itself cannot be read.
pub async fn missing_runbooks(
    catalog: &Catalog,
    source: &dyn RunbookSource,
) -> Result<Vec<(String, String)>, String> {
    let files: BTreeSet<String> = source
        .list()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|f| f.path)
        .collect();
    let mut out = Vec::new();
    for s in catalog.schemas() {
        let names = std::iter::once(s.runbook.as_str())
            .chain(s.verify.as_ref().map(|v| v.runbook.as_str()));
        for name in names {
            let found = match &s.git_ref {
                // Pinned: only the source knows what that ref holds.
                Some(pin) => source.resolve(name, Some(pin)).await.is_ok(),
                None => files.contains(name.trim_start_matches("./")),
            };
            if !found {
                out.push((s.id.clone(), name.to_string()));
            }
        }
    }
    Ok(out)
}

/// Logs the catalog entries whose runbook is missing (at start-up).
pub async fn warn_missing(catalog: &Catalog, source: &dyn RunbookSource) {
    match missing_runbooks(catalog, source).await {
        Ok(missing) if missing.is_empty() => {}
        Ok(missing) => {
            for (schema_id, runbook) in &missing {
                tracing::warn!(
                    schema_id,
                    runbook,
                    "the catalog names a runbook that does not exist"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot list the runbooks to check the catalog"),
    }
}
