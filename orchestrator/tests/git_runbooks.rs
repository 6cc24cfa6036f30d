//! Runbooks from git through the real binary (file://): pinned commits per execution,
//! refresh, schema `ref` pins, traversal refused, concurrency during fetches. Smart HTTP
//! is `git_http.rs`'s, ssh `git_ssh.rs`'s.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::git::{Repo, git, refresh};
use common::{Env, catalog};
use serde_json::Value;

fn v1(repo: &Repo) -> String {
    repo.write("ops/hello.sh", "source \"$(dirname \"$0\")/lib/common.sh\"\necho \"$(cat \"$(dirname \"$0\")/version.txt\") $(greet)\"\n");
    repo.write("ops/lib/common.sh", "greet() { echo hi-from-lib; }\n");
    repo.write("ops/version.txt", "v1");
    repo.write(
        "ops/slow.sh",
        "sleep 2\ncat \"$(dirname \"$0\")/version.txt\"\n",
    );
    repo.write("secret.sh", "echo SECRET-RAN\n");
    std::os::unix::fs::symlink("../secret.sh", repo.work.join("ops/escape.sh")).unwrap();
    std::os::unix::fs::symlink("lib/common.sh", repo.work.join("ops/inside.sh")).unwrap();
    let c = repo.commit("v1");
    git(&repo.work, &["tag", "v1"]);
    git(&repo.work, &["push", "-q", "origin", "v1"]);
    c
}

fn schemas() -> String {
    catalog(&[
        r#"{"id": "hello", "runbook": "hello.sh"}"#,
        r#"{"id": "slow", "runbook": "slow.sh"}"#,
        r#"{"id": "pinned", "runbook": "hello.sh", "ref": "v1"}"#,
        r#"{"id": "gated", "runbook": "hello.sh", "require_approval": true, "self_approval": true}"#,
        r#"{"id": "escape", "runbook": "escape.sh"}"#,
        r#"{"id": "inside", "runbook": "inside.sh"}"#,
        r#"{"id": "dotdot", "runbook": "../secret.sh"}"#,
        r#"{"id": "deep-dotdot", "runbook": "../../etc/passwd"}"#,
        r#"{"id": "absolute", "runbook": "/etc/passwd"}"#,
        r#"{"id": "missing", "runbook": "nope.sh"}"#,
    ])
}

#[tokio::test]
async fn runs_are_pinned_to_a_commit_and_refresh_moves_new_runs_only() {
    let env = Env::new(&schemas(), &[]);
    let repo = Repo::new(env.path());
    let c1 = v1(&repo);
    let env = env
        .arg("--runbooks-git")
        .arg(&repo.url())
        .arg("--runbooks-path")
        .arg("ops")
        .arg("--runbooks-refresh")
        .arg("3600");
    let s = env.start();

    let e = s.wait(&s.trigger("hello").await).await;
    assert_eq!(e["status"], "succeeded", "{e}");
    assert_eq!(
        e["output"], "v1 hi-from-lib\n",
        "helper files next to the runbook are there"
    );
    assert_eq!(e["runbook_commit"], c1.as_str());

    // A request waiting for approval is pinned to the commit of its time.
    let gated = s.trigger("gated").await;
    let (_, e) = s.get(&format!("/api/executions/{gated}")).await;
    assert_eq!(e["runbook_ref"], c1.as_str(), "{e}");

    // A run in progress keeps its commit while a new one lands.
    let slow = s.trigger("slow").await;
    s.wait_for_status(&slow, "running").await;
    repo.write("ops/version.txt", "v2");
    let c2 = repo.commit("v2");
    let res = refresh(&s).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["commit"], c2.as_str());
    let e = s.wait(&slow).await;
    assert_eq!(
        (e["output"].as_str(), e["runbook_commit"].as_str()),
        (Some("v1"), Some(c1.as_str()))
    );

    let e = s.wait(&s.trigger("hello").await).await;
    assert_eq!(
        (e["output"].as_str(), e["runbook_commit"].as_str()),
        (Some("v2 hi-from-lib\n"), Some(c2.as_str()))
    );
    // Approved after v2 landed, the request runs what was asked for: v1.
    let res = s
        .http
        .post(s.url(&format!("/api/executions/{gated}/approve")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let e = s.wait(&gated).await;
    assert_eq!(
        (e["output"].as_str(), e["runbook_commit"].as_str()),
        (Some("v1 hi-from-lib\n"), Some(c1.as_str())),
        "{e}"
    );
    // The schema pinned to the tag v1 still runs v1.
    let e = s.wait(&s.trigger("pinned").await).await;
    assert_eq!(
        (e["output"].as_str(), e["runbook_commit"].as_str()),
        (Some("v1 hi-from-lib\n"), Some(c1.as_str()))
    );
    // A symlink that stays inside the folder is fine.
    let e = s.wait(&s.trigger("inside").await).await;
    assert_eq!(e["status"], "succeeded", "{e}");

    // Traversal is refused and nothing runs.
    for (id, needle) in [
        ("escape", "symlink"),
        ("dotdot", "'..'"),
        ("deep-dotdot", "'..'"),
        ("absolute", "absolute"),
        ("missing", "not found"),
    ] {
        let e = s.wait(&s.trigger(id).await).await;
        assert_eq!(e["status"], "error", "{id}: {e}");
        assert!(e["error"].as_str().unwrap().contains(needle), "{id}: {e}");
        assert!(e["output"].is_null(), "{id} ran something: {e}");
    }

    // Listing and reading at the current commit.
    let (code, list) = s.get("/api/runbooks").await;
    assert_eq!(code, 200);
    assert_eq!(list["commit"], c2.as_str());
    let paths: Vec<&str> = list["runbooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"hello.sh") && paths.contains(&"lib/common.sh"),
        "{paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.contains("secret")),
        "only the prefix is listed: {paths:?}"
    );
    let (code, file) = s.get("/api/runbooks/version.txt").await;
    assert_eq!((code, file["content"].as_str()), (200, Some("v2")));
    let (code, _) = s.get("/api/runbooks/../secret.sh").await;
    assert!(code == 404 || code == 400, "{code}");
}

#[tokio::test]
async fn executions_during_fetches_all_succeed() {
    let env = Env::new(&schemas(), &[]);
    let repo = Repo::new(env.path());
    v1(&repo);
    let env = env
        .arg("--runbooks-git")
        .arg(&repo.url())
        .arg("--runbooks-path")
        .arg("ops");
    let s = std::sync::Arc::new(env.start());
    let mut set = tokio::task::JoinSet::new();
    for i in 0..30 {
        let s = s.clone();
        if i % 5 == 0 {
            repo.write("ops/version.txt", &format!("v{i}"));
            repo.commit(&format!("c{i}"));
            set.spawn(async move {
                let res = refresh(&s).await;
                assert_eq!(res.status(), 200);
                None
            });
        } else {
            set.spawn(async move { Some(s.trigger("hello").await) });
        }
    }
    let mut ids = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Some(id) = r.unwrap() {
            ids.push(id);
        }
    }
    assert_eq!(ids.len(), 24);
    for id in ids {
        let e = s.wait(&id).await;
        assert_eq!(e["status"], "succeeded", "{e}");
        assert!(e["runbook_commit"].as_str().unwrap().len() == 40);
    }
}

#[tokio::test]
async fn an_unreachable_repository_fails_readiness_with_a_clear_reason() {
    let env = Env::new(&schemas(), &[]);
    let missing = format!("file://{}/nowhere.git", env.path().display());
    let env = env.arg("--runbooks-git").arg(&missing);
    let s = env.start();
    let (code, ready) = s.get("/api/readyz").await;
    assert_eq!(code, 503);
    assert!(
        !ready.to_string().contains(&missing) && !ready.to_string().contains("nowhere"),
        "no paths or URLs to anonymous callers: {ready}"
    );
    let (code, list) = s.get("/api/runbooks").await;
    assert_eq!(code, 503, "{list}");
    assert!(
        list["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has not been fetched"),
        "{list}"
    );
    common::until(
        || s.logs().contains("has not been fetched"),
        "the reason is logged",
    )
    .await;
    let e = s.wait(&s.trigger("hello").await).await;
    assert_eq!(e["status"], "error");
    assert!(e["error"].as_str().unwrap().contains("nowhere.git"), "{e}");
}
