//! What a worker killed mid-run leaves behind, removed when the next one starts: run
//! folders (`cloudo-run-<owner>-*`: working directories, payload files), bwrap's staged
//! runbook folders (`cloudo-stage-<owner>-*`), git runbook copies (`cloudo-runbook-<owner>-*`)
//! and run cgroups (`<exec id>-<owner>`), where `<owner>` (`<pid>n<pid namespace>`) is a
//! worker process of this pid namespace that no longer runs. A live worker's (several may
//! share a host) and another container's are never touched. Containers carry
//! their own deadline and are swept by the docker sandbox.

use std::path::Path;

#[cfg(test)]
use super::cgroup::owner_tag;
use super::cgroup::{Cgroups, owner_is_gone};

/// Prefixes of the temporary folders a worker process makes, each followed by its pid.
const PREFIXES: [&str; 3] = ["cloudo-run-", "cloudo-stage-", "cloudo-runbook-"];

/// What was removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub folders: usize,
    pub cgroups: usize,
}

/// Removes the leftovers of dead worker processes in `tmp` and `cgroups`.
pub async fn remove(tmp: &Path, cgroups: Option<&Cgroups>) -> Removed {
    let mut removed = Removed::default();
    if let Ok(entries) = std::fs::read_dir(tmp) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = PREFIXES.iter().find_map(|p| name.strip_prefix(p)) else {
                continue;
            };
            // `<owner tag>-<random>`: the owner is what comes before the first dash.
            let owner = rest.split('-').next().unwrap_or_default();
            if owner_is_gone(&format!("x-{owner}")) && e.path().is_dir() {
                match std::fs::remove_dir_all(e.path()) {
                    Ok(()) => removed.folders += 1,
                    Err(err) => {
                        tracing::warn!(path = %e.path().display(), error = %err,
                            "cannot remove a leftover run folder")
                    }
                }
            }
        }
    }
    if let Some(c) = cgroups {
        for group in c.leftovers() {
            group.finish().await;
            removed.cgroups += 1;
        }
    }
    removed
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_folders_of_gone_processes_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        // A pid that cannot be running (above the kernel's maximum), in our pid namespace;
        // the same in another namespace (another container's) is not ours to remove.
        let tag = owner_tag();
        let ns = tag.split_once('n').unwrap().1;
        let dead = format!("4194305n{ns}");
        let foreign = "4194305n1";
        let live = tag.clone();
        for name in [
            format!("cloudo-run-{dead}-abc"),
            format!("cloudo-stage-{dead}-def"),
            format!("cloudo-runbook-{dead}-ghi"),
            format!("cloudo-run-{live}-mine"),
            "cloudo-run-notapid-x".to_string(),
            format!("other-{dead}-x"),
            format!("cloudo-run-{foreign}-y"),
        ] {
            std::fs::create_dir_all(tmp.path().join(name).join("sub")).unwrap();
        }
        let removed = remove(tmp.path(), None).await;
        assert_eq!(
            removed,
            Removed {
                folders: 3,
                cgroups: 0
            }
        );
        let mut left: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want = vec![
            "cloudo-run-notapid-x".to_string(),
            format!("cloudo-run-{foreign}-y"),
            format!("cloudo-run-{live}-mine"),
            format!("other-{dead}-x"),
        ];
        want.sort();
        assert_eq!(left, want);
    }
}
