//! Git repositories for the runbook tests: a work tree and the bare repository it pushes to.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A work tree and the bare repository it pushes to.
pub struct Repo {
    pub work: PathBuf,
    pub bare: PathBuf,
}

impl Repo {
    pub fn new(root: &Path) -> Self {
        let work = root.join("work");
        let bare = root.join("repos/runbooks.git");
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        std::fs::create_dir_all(bare.parent().unwrap()).unwrap();
        git(
            root,
            &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
        );
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        Self { work, bare }
    }

    pub fn write(&self, path: &str, content: &str) {
        let p = self.work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    /// Commits everything and pushes; returns the commit id.
    pub fn commit(&self, msg: &str) -> String {
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "-m", msg]);
        git(&self.work, &["push", "-q", "origin", "main", "--tags"]);
        git(&self.work, &["rev-parse", "HEAD"])
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.bare.display())
    }
}

/// `POST /api/runbooks/refresh`: fetch now.
pub async fn refresh(s: &super::Server) -> reqwest::Response {
    s.http
        .post(s.url("/api/runbooks/refresh"))
        .send()
        .await
        .unwrap()
}

/// A server whose catalog has `hello` (`hello.sh`), its runbooks from `url`'s `ops` folder.
pub fn hello_from(url: &str) -> super::Env {
    super::Env::new(
        &super::catalog(&[r#"{"id": "hello", "runbook": "hello.sh"}"#]),
        &[],
    )
    .arg("--runbooks-git")
    .arg(url)
    .arg("--runbooks-path")
    .arg("ops")
}
