//! Runbooks from a local folder (what `--runbooks` serves when no git URL is given).

use std::path::PathBuf;

use async_trait::async_trait;

use super::{
    ResolvedRunbook, RunbookError, RunbookFile, RunbookSource, SourceStatus, check_relative,
};

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

#[async_trait]
impl RunbookSource for LocalRunbooks {
    async fn resolve(
        &self,
        name: &str,
        pin: Option<&str>,
    ) -> Result<ResolvedRunbook, RunbookError> {
        if let Some(pin) = pin {
            return Err(RunbookError(format!(
                "runbook {name:?} is pinned to {pin:?}, but runbooks come from a folder, not git"
            )));
        }
        let rel = check_relative(name)?.to_path_buf();
        // Right here, not on a blocking thread: three metadata look-ups in a local folder
        // take microseconds, and the hand-off to a blocking thread and back cost each run
        // two thread wake-ups.
        let path = locate(&self.root, &rel, name)?;
        Ok(ResolvedRunbook {
            path,
            commit: None,
            workspace: None,
        })
    }

    async fn check(&self) -> Result<SourceStatus, RunbookError> {
        let status = SourceStatus {
            kind: "local",
            location: self.root.display().to_string(),
            ..SourceStatus::default()
        };
        match tokio::fs::metadata(&self.root).await {
            Ok(m) if m.is_dir() => Ok(status),
            Ok(_) => Err(RunbookError(format!(
                "{} is not a folder",
                self.root.display()
            ))),
            Err(e) => Err(RunbookError(format!("{}: {e}", self.root.display()))),
        }
    }

    async fn list(&self) -> Result<Vec<RunbookFile>, RunbookError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk(&root, &root, &mut out);
            out.sort_by(|a, b| a.path.cmp(&b.path));
            out
        })
        .await
        .map_err(|e| RunbookError(format!("listing failed: {e}")))
    }

    async fn refresh(&self) -> Result<Option<String>, RunbookError> {
        Ok(None)
    }
}

/// The runbook `rel` (named `name`) in `root`: a regular file that resolves inside it.
fn locate(
    root: &std::path::Path,
    rel: &std::path::Path,
    name: &str,
) -> Result<PathBuf, RunbookError> {
    let real_root = std::fs::canonicalize(root).map_err(|e| {
        RunbookError(format!(
            "runbooks folder {} is not available: {e}",
            root.display()
        ))
    })?;
    let path = match std::fs::canonicalize(real_root.join(rel)) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RunbookError(format!(
                "runbook {name:?} not found in {}",
                root.display()
            )));
        }
        Err(e) => return Err(RunbookError(format!("runbook {name:?}: {e}"))),
    };
    if !path.starts_with(&real_root) {
        return Err(RunbookError(format!(
            "runbook {name:?} refused: it resolves outside the runbooks folder"
        )));
    }
    let meta =
        std::fs::metadata(&path).map_err(|e| RunbookError(format!("runbook {name:?}: {e}")))?;
    if !meta.is_file() {
        return Err(RunbookError(format!("runbook {name:?} is not a file")));
    }
    Ok(path)
}

/// Regular files below `dir` (symlinks are not followed), relative to `root`.
fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<RunbookFile>) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        let path = entry.path();
        if meta.is_dir() {
            walk(root, &path, out);
        } else if meta.is_file()
            && let Ok(rel) = path.strip_prefix(root)
        {
            out.push(RunbookFile {
                path: rel.display().to_string(),
                size: meta.len(),
                executable: meta.permissions().mode() & 0o111 != 0,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbooks::RunbookSource;

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
        assert!(src.resolve("sub/ok.sh", None).await.is_ok());
        assert!(src.resolve("./sub/ok.sh", None).await.is_ok());
        for bad in [
            "../secret",
            "sub/../../secret",
            "/etc/passwd",
            "link.sh",
            "missing.sh",
            "sub",
        ] {
            let e = src.resolve(bad, None).await.expect_err(bad);
            assert!(!e.0.is_empty(), "{bad}");
        }
        let e = src.resolve("missing.sh", None).await.expect_err("missing");
        assert!(e.0.contains("not found"), "{e}");
    }
}
