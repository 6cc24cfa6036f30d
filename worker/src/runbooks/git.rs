//! Runbooks from a git repository (file://, smart HTTP(S), ssh://), through libgit2 (its
//! network transports are [`net`]'s).
//!
//! A bare mirror lives under the data dir. It is fetched at start and on every refresh,
//! one fetch at a time; a failed fetch keeps the last good commit and is reported. Each
//! run reads its runbook's whole folder out of the object database at one commit into a
//! private directory, so a fetch that lands mid-run changes nothing for that run, and no
//! checkout is ever shared.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use git2::{AutotagOption, Direction, FetchOptions, Repository};

use super::net::{self, Access};
use super::tree::{self, hex, normalize};
use super::{
    ResolvedRunbook, RunbookError, RunbookFile, RunbookSource, SourceStatus, check_relative,
};
use crate::secrets::Secret;

/// Where and how to fetch.
#[derive(Debug, Clone)]
pub struct GitConfig {
    pub url: String,
    /// Branch, tag or commit; `None` for the remote's default branch.
    pub reference: Option<String>,
    /// Folder of the runbooks inside the repository (ClouDO's `runbook_path`).
    pub prefix: String,
    /// The bare mirror's folder.
    pub mirror: PathBuf,
    /// HTTPS token, sent as basic auth (GitHub and Azure DevOps accept a token this way).
    pub token: Option<Secret>,
    /// SSH private key file for ssh:// URLs.
    pub ssh_key: Option<PathBuf>,
    /// known_hosts file for ssh:// URLs, instead of the user's.
    pub known_hosts: Option<PathBuf>,
}

#[derive(Debug, Default)]
struct State {
    commit: Option<String>,
    /// `refs/heads/<x>` of the remote's default branch, learned at fetch.
    default_branch: Option<String>,
    last_fetch: Option<String>,
    last_error: Option<String>,
}

#[derive(Debug)]
pub struct GitRunbooks {
    cfg: Arc<GitConfig>,
    state: Arc<Mutex<State>>,
    fetching: tokio::sync::Mutex<()>,
}

/// `https://user:secret@host/x` -> `https://***@host/x`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

fn git_err(cfg: &GitConfig, e: &git2::Error) -> String {
    // libgit2 messages may quote the URL; never let credentials through.
    let msg = e.message().replace(&cfg.url, &redact_url(&cfg.url));
    match &cfg.token {
        Some(t) if !t.expose().is_empty() => msg.replace(t.expose(), "***"),
        _ => msg,
    }
}

/// A stuck server must not hold the (single) fetch forever (libgit2's own transport,
/// `git://`; HTTP(S) and ssh are [`net`]'s).
const CONNECT_TIMEOUT_MS: i32 = 15_000;
const IO_TIMEOUT_MS: i32 = 60_000;

#[allow(unsafe_code)]
fn set_network_timeouts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: libgit2's global options must not be changed while other threads use
        // libgit2; this runs once, when the first git source is built, before any fetch.
        unsafe {
            let _ = git2::opts::set_server_connect_timeout_in_milliseconds(CONNECT_TIMEOUT_MS);
            let _ = git2::opts::set_server_timeout_in_milliseconds(IO_TIMEOUT_MS);
        }
    });
}

impl GitRunbooks {
    pub fn new(cfg: GitConfig) -> Self {
        set_network_timeouts();
        net::register();
        Self {
            cfg: Arc::new(cfg),
            state: Arc::default(),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The mirror, created on first use.
    fn open(cfg: &GitConfig) -> Result<Repository, String> {
        match Repository::open_bare(&cfg.mirror) {
            Ok(r) => Ok(r),
            Err(_) => {
                std::fs::create_dir_all(&cfg.mirror).map_err(|e| e.to_string())?;
                Repository::init_bare(&cfg.mirror).map_err(|e| git_err(cfg, &e))
            }
        }
    }

    /// One fetch (blocking): returns the remote's default branch.
    fn fetch_blocking(cfg: &GitConfig) -> Result<Option<String>, String> {
        let access = Access {
            token: cfg.token.clone(),
            ssh_key: cfg.ssh_key.clone(),
            known_hosts: cfg.known_hosts.clone(),
        };
        net::with_access(&access, || Self::fetch_with_access(cfg))
    }

    fn fetch_with_access(cfg: &GitConfig) -> Result<Option<String>, String> {
        let repo = Self::open(cfg)?;
        let mut remote = repo
            .remote_anonymous(&cfg.url)
            .map_err(|e| git_err(cfg, &e))?;
        let default_branch = {
            let conn = remote
                .connect_auth(Direction::Fetch, None, None)
                .map_err(|e| git_err(cfg, &e))?;
            conn.default_branch()
                .ok()
                .and_then(|b| b.as_str().ok().map(str::to_string))
        };
        let mut opts = FetchOptions::new();
        opts.download_tags(AutotagOption::All);
        opts.prune(git2::FetchPrune::On);
        remote
            .fetch(
                &[
                    "+refs/heads/*:refs/remotes/origin/*",
                    "+refs/tags/*:refs/tags/*",
                ],
                Some(&mut opts),
                None,
            )
            .map_err(|e| git_err(cfg, &e))?;
        Ok(default_branch)
    }

    /// A branch, tag or commit id -> commit id, in the mirror.
    fn resolve_ref(repo: &Repository, reference: &str) -> Result<git2::Oid, String> {
        let candidates = [
            format!(
                "refs/remotes/origin/{}",
                reference.trim_start_matches("refs/heads/")
            ),
            format!("refs/tags/{reference}"),
            reference.to_string(),
        ];
        for c in &candidates {
            if let Ok(obj) = repo.revparse_single(c)
                && let Ok(commit) = obj.peel_to_commit()
            {
                return Ok(commit.id());
            }
        }
        Err(format!(
            "ref {reference:?} is not a branch, tag or commit of the repository"
        ))
    }

    /// Fetches and moves the current commit; on failure keeps the old one.
    pub async fn fetch(&self) -> Result<String, RunbookError> {
        let _one_at_a_time = self.fetching.lock().await;
        let cfg = self.cfg.clone();
        let configured = cfg.reference.clone();
        let result = tokio::task::spawn_blocking(move || {
            let default_branch = Self::fetch_blocking(&cfg)?;
            let repo = Self::open(&cfg)?;
            let wanted = configured
                .or_else(|| default_branch.clone())
                .ok_or_else(|| {
                    "the remote has no default branch; set --runbooks-ref".to_string()
                })?;
            let oid = Self::resolve_ref(&repo, &wanted)?;
            Ok::<_, String>((hex(oid), default_branch))
        })
        .await
        .map_err(|e| format!("fetch task failed: {e}"))
        .and_then(|r| r);
        let now = cloudo_core::time::rfc3339(cloudo_core::time::now());
        let mut st = self.state();
        st.last_fetch = Some(now);
        match result {
            Ok((commit, default_branch)) => {
                if st.commit.as_deref() != Some(commit.as_str()) {
                    tracing::info!(url = %redact_url(&self.cfg.url), commit = %commit, "runbooks at new commit");
                }
                st.commit = Some(commit.clone());
                st.default_branch = default_branch;
                st.last_error = None;
                Ok(commit)
            }
            Err(e) => {
                tracing::warn!(url = %redact_url(&self.cfg.url), error = %e,
                    serving = st.commit.as_deref().unwrap_or("nothing"), "runbooks fetch failed");
                st.last_error = Some(e.clone());
                Err(RunbookError(format!(
                    "fetching runbooks from {} failed: {e}",
                    redact_url(&self.cfg.url)
                )))
            }
        }
    }

    fn current(&self) -> Result<String, RunbookError> {
        let st = self.state();
        st.commit.clone().ok_or_else(|| {
            RunbookError(format!(
                "no runbooks yet: the repository {} has not been fetched{}",
                redact_url(&self.cfg.url),
                st.last_error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ))
        })
    }

    fn prefix(&self) -> Result<PathBuf, RunbookError> {
        let p = self.cfg.prefix.trim_matches('/');
        if p.is_empty() {
            return Ok(PathBuf::new());
        }
        normalize(Path::new(p)).ok_or_else(|| RunbookError(format!("invalid runbooks path {p:?}")))
    }
}

#[async_trait]
impl RunbookSource for GitRunbooks {
    async fn resolve(
        &self,
        name: &str,
        pin: Option<&str>,
    ) -> Result<ResolvedRunbook, RunbookError> {
        let rel = check_relative(name)?.to_path_buf();
        let prefix = self.prefix()?;
        let current = self.current()?;
        let cfg = self.cfg.clone();
        let (pin, name) = (pin.map(str::to_string), name.to_string());
        tokio::task::spawn_blocking(move || {
            let repo = Self::open(&cfg).map_err(RunbookError)?;
            let oid = match &pin {
                Some(p) => {
                    Self::resolve_ref(&repo, p).map_err(|e| RunbookError(format!("pinned {e}")))?
                }
                None => git2::Oid::from_str(&current).map_err(|e| RunbookError(e.to_string()))?,
            };
            let commit = hex(oid);
            let tree = repo
                .find_commit(oid)
                .and_then(|c| c.tree())
                .map_err(|e| RunbookError(format!("commit {commit}: {e}")))?;
            let at = |e: RunbookError| RunbookError(format!("{} (commit {commit})", e.0));
            let wanted = normalize(&prefix.join(&rel))
                .filter(|p| p.starts_with(&prefix))
                .ok_or_else(|| {
                    RunbookError(format!(
                        "runbook {name:?} refused: outside the runbooks folder"
                    ))
                })?;
            let file = tree::resolve_in_tree(&repo, &tree, &prefix, &wanted, &name).map_err(at)?;
            let folder = file.parent().map(Path::to_path_buf).unwrap_or_default();
            let workspace = tempfile::Builder::new()
                .prefix(&format!(
                    "cloudo-runbook-{}-",
                    crate::sandbox::cgroup::owner_tag()
                ))
                .tempdir()
                .map_err(|e| RunbookError(format!("cannot create a private folder: {e}")))?;
            tree::materialize(&repo, &tree, &folder, workspace.path()).map_err(at)?;
            // Readable by the unprivileged user sandboxes run as.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(workspace.path(), std::fs::Permissions::from_mode(0o755))
                .map_err(|e| RunbookError(format!("cannot prepare the runbook: {e}")))?;
            let file_name = file.file_name().map(PathBuf::from).unwrap_or_default();
            Ok(ResolvedRunbook {
                path: workspace.path().join(file_name),
                commit: Some(commit),
                workspace: Some(workspace),
            })
        })
        .await
        .map_err(|e| RunbookError(format!("resolve task failed: {e}")))?
    }

    async fn check(&self) -> Result<SourceStatus, RunbookError> {
        let st = self.state();
        let status = SourceStatus {
            kind: "git",
            location: redact_url(&self.cfg.url),
            reference: self
                .cfg
                .reference
                .clone()
                .or_else(|| st.default_branch.clone()),
            prefix: Some(self.cfg.prefix.clone()),
            commit: st.commit.clone(),
            last_fetch: st.last_fetch.clone(),
            last_error: st.last_error.clone(),
        };
        drop(st);
        match status.commit {
            Some(_) => Ok(status),
            None => Err(self
                .current()
                .err()
                .unwrap_or_else(|| RunbookError("no commit".into()))),
        }
    }

    async fn list(&self) -> Result<Vec<RunbookFile>, RunbookError> {
        let current = self.current()?;
        let prefix = self.prefix()?;
        let cfg = self.cfg.clone();
        tokio::task::spawn_blocking(move || {
            let repo = Self::open(&cfg).map_err(RunbookError)?;
            let oid = git2::Oid::from_str(&current).map_err(|e| RunbookError(e.to_string()))?;
            let tree = repo
                .find_commit(oid)
                .and_then(|c| c.tree())
                .map_err(|e| RunbookError(e.to_string()))?;
            tree::list(&repo, &tree, &prefix)
        })
        .await
        .map_err(|e| RunbookError(format!("listing failed: {e}")))?
    }

    async fn refresh(&self) -> Result<Option<String>, RunbookError> {
        self.fetch().await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact_url("https://u:tok@github.com/o/r.git"),
            "https://***@github.com/o/r.git"
        );
        assert_eq!(
            redact_url("https://github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
        assert_eq!(redact_url("file:///tmp/r.git"), "file:///tmp/r.git");
        assert_eq!(redact_url("ssh://git@host/r.git"), "ssh://***@host/r.git");
        assert_eq!(redact_url("https://host/a@b"), "https://host/a@b");
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
