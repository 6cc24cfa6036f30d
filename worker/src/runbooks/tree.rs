//! Reading a runbook out of a git tree: path checks inside the repository (symlinks
//! included) and materialising the runbook's folder into a private directory.

use std::path::{Component, Path, PathBuf};

use git2::{ObjectType, Oid, Repository, Tree};

use super::RunbookError;

/// At most this many files and bytes are written for one run.
const MAX_FILES: usize = 2000;
const MAX_BYTES: u64 = 64 << 20;
/// Symlink hops followed to reach the runbook.
const MAX_HOPS: usize = 8;

const MODE_EXEC: i32 = 0o100755;
const MODE_LINK: i32 = 0o120000;

/// `a/./b/../c` -> `a/c`; `None` if it climbs above the start.
pub fn normalize(p: &Path) -> Option<PathBuf> {
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out.iter().collect())
}

/// Follows symlinks from `path` (inside the repository) to a file, refusing any step that
/// leaves `prefix`. Returns the file's path in the repository.
pub fn resolve_in_tree(
    repo: &Repository,
    tree: &Tree<'_>,
    prefix: &Path,
    path: &Path,
    name: &str,
) -> Result<PathBuf, RunbookError> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_HOPS {
        let entry = tree
            .get_path(&current)
            .map_err(|_| RunbookError(format!("runbook {name:?} not found in the repository")))?;
        if entry.filemode() != MODE_LINK {
            return match entry.kind() {
                Some(ObjectType::Blob) => Ok(current),
                _ => Err(RunbookError(format!("runbook {name:?} is not a file"))),
            };
        }
        let blob = repo
            .find_blob(entry.id())
            .map_err(|e| RunbookError(format!("runbook {name:?}: {e}")))?;
        let target = Path::new(std::str::from_utf8(blob.content()).unwrap_or("/")).to_path_buf();
        let next = current.parent().map(|d| d.join(&target)).and_then(|p| {
            if target.is_absolute() {
                None
            } else {
                normalize(&p)
            }
        });
        match next {
            Some(n) if n.starts_with(prefix) => current = n,
            _ => {
                return Err(RunbookError(format!(
                    "runbook {name:?} refused: it is a symlink that points outside the runbooks folder"
                )));
            }
        }
    }
    Err(RunbookError(format!("runbook {name:?}: too many symlinks")))
}

/// Writes the subtree at `dir` (a folder of the repository) into `dest`: files with their
/// executable bit, and symlinks that stay inside the folder. Others are skipped.
pub fn materialize(
    repo: &Repository,
    tree: &Tree<'_>,
    dir: &Path,
    dest: &Path,
) -> Result<(), RunbookError> {
    let sub = if dir.as_os_str().is_empty() {
        tree.clone()
    } else {
        let entry = tree
            .get_path(dir)
            .map_err(|e| RunbookError(format!("folder {}: {e}", dir.display())))?;
        repo.find_tree(entry.id())
            .map_err(|e| RunbookError(format!("folder {}: {e}", dir.display())))?
    };
    let mut budget = (MAX_FILES, MAX_BYTES);
    write_tree(repo, &sub, dest, Path::new(""), &mut budget)
}

fn write_tree(
    repo: &Repository,
    tree: &Tree<'_>,
    root: &Path,
    rel: &Path,
    budget: &mut (usize, u64),
) -> Result<(), RunbookError> {
    let io = |e: std::io::Error| RunbookError(format!("cannot materialise the runbook: {e}"));
    std::fs::create_dir_all(root.join(rel)).map_err(io)?;
    for entry in tree.iter() {
        let Ok(name) = entry.name() else { continue };
        if name.contains('/') || name == ".." || name == "." {
            continue;
        }
        let path = rel.join(name);
        match entry.kind() {
            Some(ObjectType::Tree) => {
                let sub = repo
                    .find_tree(entry.id())
                    .map_err(|e| RunbookError(e.to_string()))?;
                write_tree(repo, &sub, root, &path, budget)?;
            }
            Some(ObjectType::Blob) => {
                let blob = repo
                    .find_blob(entry.id())
                    .map_err(|e| RunbookError(e.to_string()))?;
                budget.0 = budget.0.checked_sub(1).ok_or_else(|| {
                    RunbookError(format!(
                        "the runbook's folder has more than {MAX_FILES} files"
                    ))
                })?;
                budget.1 = budget.1.checked_sub(blob.size() as u64).ok_or_else(|| {
                    RunbookError(format!(
                        "the runbook's folder is larger than {MAX_BYTES} bytes"
                    ))
                })?;
                if entry.filemode() == MODE_LINK {
                    let target = std::str::from_utf8(blob.content()).unwrap_or("/");
                    let inside =
                        !Path::new(target).is_absolute() && normalize(&rel.join(target)).is_some();
                    if inside {
                        std::os::unix::fs::symlink(target, root.join(&path)).map_err(io)?;
                    }
                    continue;
                }
                std::fs::write(root.join(&path), blob.content()).map_err(io)?;
                if entry.filemode() == MODE_EXEC {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(
                        root.join(&path),
                        std::fs::Permissions::from_mode(0o755),
                    )
                    .map_err(io)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Every file below `dir` of `tree`, relative to `dir`.
pub fn list(
    repo: &Repository,
    tree: &Tree<'_>,
    dir: &Path,
) -> Result<Vec<super::RunbookFile>, RunbookError> {
    let sub = if dir.as_os_str().is_empty() {
        tree.clone()
    } else {
        let entry = tree.get_path(dir).map_err(|_| {
            RunbookError(format!(
                "folder {} not found in the repository",
                dir.display()
            ))
        })?;
        repo.find_tree(entry.id())
            .map_err(|e| RunbookError(e.to_string()))?
    };
    let mut out = Vec::new();
    sub.walk(git2::TreeWalkMode::PreOrder, |parent, entry| {
        if entry.kind() == Some(ObjectType::Blob) && entry.filemode() != MODE_LINK {
            let size = repo
                .find_blob(entry.id())
                .map(|b| b.size() as u64)
                .unwrap_or(0);
            out.push(super::RunbookFile {
                path: format!("{parent}{}", entry.name().unwrap_or("?")),
                size,
                executable: entry.filemode() == MODE_EXEC,
            });
        }
        git2::TreeWalkResult::Ok
    })
    .map_err(|e| RunbookError(e.to_string()))?;
    Ok(out)
}

/// A commit id as text.
pub fn hex(oid: Oid) -> String {
    oid.to_string()
}
