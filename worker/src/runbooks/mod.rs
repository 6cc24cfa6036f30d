//! The `RunbookSource` port: turn a schema's `runbook` name into a file to run.
//!
//! [`LocalRunbooks`] serves a folder; [`GitRunbooks`] a git repository mirrored under the
//! data dir, each run reading its runbook's folder at a pinned commit. Names are paths
//! relative to the folder (or repository prefix); absolute paths, `..` and symlinks that
//! lead outside are refused, so a catalog entry can never run an arbitrary file of the host
//! (ClouDO's `dev/runScript` did, §9.1-11).

mod git;
mod local;
mod net;
mod tree;

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use serde::Serialize;

pub use git::{GitConfig, GitRunbooks, redact_url};
pub use local::LocalRunbooks;

/// A runbook ready to run.
#[derive(Debug)]
pub struct ResolvedRunbook {
    pub path: PathBuf,
    /// The commit it came from, for sources that have one.
    pub commit: Option<String>,
    /// The private copy `path` lives in, removed when this is dropped.
    pub workspace: Option<tempfile::TempDir>,
}

/// One runbook file, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RunbookFile {
    pub path: String,
    pub size: u64,
    pub executable: bool,
}

/// What a source serves now (for `/api/runbooks` and readiness).
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct SourceStatus {
    /// `local` or `git`.
    pub kind: &'static str,
    /// The folder, or the repository URL with any credentials removed.
    pub location: String,
    pub reference: Option<String>,
    pub prefix: Option<String>,
    pub commit: Option<String>,
    pub last_fetch: Option<String>,
    pub last_error: Option<String>,
}

/// Why a runbook could not be resolved; the message goes on the execution as its reason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RunbookError(pub String);

#[async_trait]
pub trait RunbookSource: Send + Sync + 'static {
    /// The runbook `name`, at `pin` (a branch, tag or commit) if given, else at the
    /// source's current version.
    async fn resolve(&self, name: &str, pin: Option<&str>)
    -> Result<ResolvedRunbook, RunbookError>;
    /// Can runbooks be served at all (for readiness)? `Ok` carries the details.
    async fn check(&self) -> Result<SourceStatus, RunbookError>;
    /// Every runbook file at the current version.
    async fn list(&self) -> Result<Vec<RunbookFile>, RunbookError>;
    /// One file's content at the current version.
    async fn read(&self, name: &str) -> Result<Vec<u8>, RunbookError> {
        let resolved = self.resolve(name, None).await?;
        tokio::fs::read(&resolved.path)
            .await
            .map_err(|e| RunbookError(format!("runbook {name:?}: {e}")))
    }
    /// Fetches new versions now (a no-op for a folder). Returns the current commit.
    async fn refresh(&self) -> Result<Option<String>, RunbookError>;
}

/// Checks that `name` is a plain relative path (no root, no `..`).
pub fn check_relative(name: &str) -> Result<&Path, RunbookError> {
    let p = Path::new(name);
    if name.is_empty() || name.contains('\0') {
        return Err(RunbookError(format!("invalid runbook name {name:?}")));
    }
    for c in p.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err(RunbookError(format!(
                    "runbook {name:?} refused: '..' is not allowed in a runbook path"
                )));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(RunbookError(format!(
                    "runbook {name:?} refused: absolute paths are not allowed"
                )));
            }
        }
    }
    Ok(p)
}
