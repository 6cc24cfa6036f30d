//! Runbooks from git over smart HTTP through the real binary, against `git http-backend`:
//! the token kept secret, credentials written in the URL, redirects.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Env;
use common::git::{Repo, hello_from, refresh};
use common::git_http::GitHttp;

const TOKEN: &str = "tok-3f9a71c2e5-never-log-me";

/// A repository with `ops/hello.sh`, and its commit.
fn repository(root: &std::path::Path) -> (Repo, String) {
    let repo = Repo::new(root);
    repo.write("ops/hello.sh", "echo over-http\n");
    let commit = repo.commit("v1");
    (repo, commit)
}

/// Ready, and a run of `hello` succeeds at `commit`.
async fn runs_at(env: &Env, commit: &str) {
    let s = env.start();
    let (code, ready) = s.get("/api/readyz").await;
    assert_eq!(code, 200, "{ready}\n{}", s.logs());
    let e = s.wait(&s.trigger("hello").await).await;
    assert_eq!(
        (e["status"].as_str(), e["runbook_commit"].as_str()),
        (Some("succeeded"), Some(commit)),
        "{e}"
    );
}

// Multi-threaded: the git server runs while the test blocks starting cloudo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_http_needs_the_token_and_keeps_it_secret() {
    let root = tempfile::tempdir().unwrap();
    let (_repo, commit) = repository(root.path());
    let git = GitHttp::start(root.path().join("repos"), Some(TOKEN)).await;
    let url = git.url("/runbooks.git");

    // Without the token: not ready, the error says why, runs end in error with a reason.
    let no_token = hello_from(&url);
    let s = no_token.start();
    let (code, ready) = s.get("/api/readyz").await;
    assert_eq!(code, 503, "{ready}");
    assert_eq!(
        ready["checks"]["runbooks"],
        serde_json::json!({"ok": false}),
        "states only"
    );
    // The reason: for key holders (and in the log), never to anonymous callers.
    let (code, list) = s.get("/api/runbooks").await;
    assert_eq!(code, 503, "{list}");
    let err = list["error"]["message"].as_str().unwrap();
    assert!(
        err.contains("asks for credentials: set CLOUDO_GIT_TOKEN"),
        "{err}"
    );
    let e = s.wait(&s.trigger("hello").await).await;
    assert_eq!(e["status"], "error");
    assert!(
        e["error"].as_str().unwrap().contains("no runbooks yet"),
        "{e}"
    );
    let res = refresh(&s).await;
    assert_eq!(res.status(), 502);
    drop(s);

    // With it: ready, runs work; the token appears in no log line and no answer.
    let with_token = hello_from(&url).env("CLOUDO_GIT_TOKEN", TOKEN);
    let mut s = with_token.start();
    let (code, ready) = s.get("/api/readyz").await;
    assert_eq!(code, 200, "{ready}");
    let e = s.wait(&s.trigger("hello").await).await;
    assert_eq!(
        (e["status"].as_str(), e["runbook_commit"].as_str()),
        (Some("succeeded"), Some(commit.as_str()))
    );
    let (_, list) = s.get("/api/runbooks").await;
    assert!(!list.to_string().contains(TOKEN));
    assert!(!ready.to_string().contains(TOKEN));
    assert!(!s.final_logs().await.contains(TOKEN), "token in logs");
}

/// A user written in the URL (percent-encoded) gets the token as password, as Azure
/// DevOps' clone URLs (`https://org@dev.azure.com/...`) need; a redirect on the same host
/// keeps them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_urls_user_gets_the_token_and_keeps_it_across_a_redirect_on_its_host() {
    let root = tempfile::tempdir().unwrap();
    let (_repo, commit) = repository(root.path());
    let git = GitHttp::start(root.path().join("repos"), Some(TOKEN)).await;
    git.redirect("/moved.git", &git.url("/runbooks.git"));
    let url = format!("http://me%40corp@{}/moved.git", git.addr);
    runs_at(&hello_from(&url).env("CLOUDO_GIT_TOKEN", TOKEN), &commit).await;
    let seen = git.seen();
    assert!(
        seen.iter().any(|r| r.path.starts_with("/moved.git")),
        "{seen:?}"
    );
    let served: Vec<_> = seen
        .iter()
        .filter(|r| r.path.starts_with("/runbooks.git"))
        .collect();
    assert!(
        served.iter().any(|r| r.path.ends_with("/git-upload-pack")),
        "{seen:?}"
    );
    for r in served {
        assert_eq!(
            r.credentials,
            Some(("me@corp".to_string(), TOKEN.to_string())),
            "{r:?}"
        );
    }
}

/// A repository that moved to another host is fetched from there without the credentials
/// (meant for the first host) on any request, the negotiation's included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_follow_a_redirect_to_another_host() {
    let root = tempfile::tempdir().unwrap();
    let (_repo, commit) = repository(root.path());
    let public = GitHttp::start(root.path().join("repos"), None).await;
    let first = GitHttp::start(root.path().join("repos"), Some(TOKEN)).await;
    // Two hops: the second stays on the other host, where a client that restores the
    // first request's headers at each hop would send them again.
    first.redirect("/runbooks.git", &public.url("/hop.git"));
    public.redirect("/hop.git", &public.url("/runbooks.git"));
    runs_at(
        &hello_from(&first.url("/runbooks.git")).env("CLOUDO_GIT_TOKEN", TOKEN),
        &commit,
    )
    .await;
    let seen = public.seen();
    assert!(
        seen.iter().any(|r| r.path.ends_with("/git-upload-pack")),
        "{seen:?}"
    );
    assert!(seen.iter().all(|r| r.credentials.is_none()), "{seen:?}");
    assert!(
        first
            .seen()
            .iter()
            .all(|r| !r.path.ends_with("/git-upload-pack"))
    );
}
