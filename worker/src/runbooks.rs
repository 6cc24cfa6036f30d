//! The `RunbookSource` port: turn a schema's `runbook` name into a file to run.
//!
//! [`LocalRunbooks`] serves a folder. Names are paths relative to it; absolute paths, `..`
//! and symlinks that lead outside the folder are refused, so a catalog entry can never run
//! an arbitrary file of the host (ClouDO's `dev/runScript` did, §9.1-11).

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;

/// A runbook ready to run.
#[derive(Debug, Clone)]
pub struct ResolvedRunbook {
    pub path: PathBuf,
    /// The commit it came from, for sources that have one.
    pub commit: Option<String>,
}

/// Why a runbook could not be resolved; the message goes on the execution as its reason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RunbookError(pub String);

#[async_trait]
pub trait RunbookSource: Send + Sync + 'static {
    async fn resolve(&self, name: &str) -> Result<ResolvedRunbook, RunbookError>;
    /// Can runbooks be served at all (for readiness)?
    async fn check(&self) -> Result<(), RunbookError>;
}

/// Runbooks from a local folder.
#[derive(Debug, Clone)]
pub struct LocalRunbooks {
    root: PathBuf,
}

impl LocalRunbooks {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
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

#[async_trait]
impl RunbookSource for LocalRunbooks {
    async fn resolve(&self, name: &str) -> Result<ResolvedRunbook, RunbookError> {
        let rel = check_relative(name)?;
        let root = tokio::fs::canonicalize(&self.root).await.map_err(|e| {
            RunbookError(format!(
                "runbooks folder {} is not available: {e}",
                self.root.display()
            ))
        })?;
        let path = match tokio::fs::canonicalize(root.join(rel)).await {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RunbookError(format!(
                    "runbook {name:?} not found in {}",
                    self.root.display()
                )));
            }
            Err(e) => return Err(RunbookError(format!("runbook {name:?}: {e}"))),
        };
        if !path.starts_with(&root) {
            return Err(RunbookError(format!(
                "runbook {name:?} refused: it resolves outside the runbooks folder"
            )));
        }
        let meta = tokio::fs::metadata(&path)
            .await
            .map_err(|e| RunbookError(format!("runbook {name:?}: {e}")))?;
        if !meta.is_file() {
            return Err(RunbookError(format!("runbook {name:?} is not a file")));
        }
        Ok(ResolvedRunbook { path, commit: None })
    }

    async fn check(&self) -> Result<(), RunbookError> {
        match tokio::fs::metadata(&self.root).await {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(RunbookError(format!(
                "{} is not a folder",
                self.root.display()
            ))),
            Err(e) => Err(RunbookError(format!("{}: {e}", self.root.display()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_traversal_absolute_and_symlinks_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("runbooks");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("sub/ok.sh"), "echo ok").expect("write");
        std::fs::write(dir.path().join("secret"), "s").expect("write");
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link.sh"))
            .expect("symlink");
        let src = LocalRunbooks::new(&root);
        assert!(src.resolve("sub/ok.sh").await.is_ok());
        assert!(src.resolve("./sub/ok.sh").await.is_ok());
        for bad in [
            "../secret",
            "sub/../../secret",
            "/etc/passwd",
            "link.sh",
            "missing.sh",
            "sub",
        ] {
            let e = src.resolve(bad).await.expect_err(bad);
            assert!(!e.0.is_empty(), "{bad}");
        }
        let e = src.resolve("missing.sh").await.expect_err("missing");
        assert!(e.0.contains("not found"), "{e}");
    }
}
