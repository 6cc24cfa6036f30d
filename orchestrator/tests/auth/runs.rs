//! What keys and secrets mean for runs: named secrets masked, worker keys bound to a pool.

use super::*;

#[tokio::test]
async fn named_secrets_reach_only_their_runbook_and_are_masked() {
    let secret = "s3cr3t-value-7f2a9c";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.json");
    std::fs::write(&file, r#"{"DB_PASSWORD": "file-secret-81bc"}"#).unwrap();
    let env = Env::new(
        &catalog(&[
            r#"{"id": "uses", "runbook": "show.sh", "secrets": ["API_TOKEN", "DB_PASSWORD"]}"#,
            r#"{"id": "other", "runbook": "show.sh"}"#,
            r#"{"id": "missing", "runbook": "show.sh", "secrets": ["NOT_THERE"]}"#,
        ]),
        &[("show.sh", "echo \"token=$API_TOKEN db=${DB_PASSWORD:-}\"; env | grep -c -e s3cr3t -e file-secret || true\n")],
    )
    .env("CLOUDO_SECRET_API_TOKEN", secret)
    .arg("--secrets-file")
    .arg(file.to_str().unwrap());
    let mut s = env.start();
    let e = s.wait(&s.trigger("uses").await).await;
    assert_eq!(e["status"], "succeeded", "{e}");
    assert_eq!(
        e["output"], "token=*** db=***\n2\n",
        "values arrive, and are masked in the output"
    );
    assert_eq!(
        e["secrets"],
        json!(["API_TOKEN", "DB_PASSWORD"]),
        "names are recorded, not values"
    );
    let e = s.wait(&s.trigger("other").await).await;
    assert_eq!(
        e["output"], "token= db=\n0\n",
        "a runbook that does not name them does not get them"
    );
    let e = s.wait(&s.trigger("missing").await).await;
    assert_eq!(e["status"], "error");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("secret NOT_THERE is not available"),
        "{e}"
    );
    let (_, all) = s.get("/api/executions?limit=10").await;
    assert!(!all.to_string().contains(secret));
    let logs = s.final_logs().await;
    assert!(!logs.contains(secret) && !logs.contains("file-secret-81bc"));
}

#[tokio::test]
async fn worker_keys_report_only_on_their_pool() {
    let env = Env::new(
        &catalog(&[
            r#"{"id": "remote", "runbook": "ok.sh", "worker": "aks"}"#,
            r#"{"id": "elsewhere", "runbook": "ok.sh", "worker": "vm"}"#,
        ]),
        &[("ok.sh", "echo ok\n")],
    )
    // No in-process worker: the jobs wait for standalone workers.
    .arg("--worker-pools")
    .arg("none");
    let s = env.start();
    let res = post_json(
        &s.http,
        &s.url("/api/keys"),
        &json!({"name": "w", "role": "worker"}),
    )
    .await;
    assert_eq!(res.0, 400, "a worker key needs a pool");
    let res = post_json(
        &s.http,
        &s.url("/api/keys"),
        &json!({"name": "v", "role": "viewer", "pool": "aks"}),
    )
    .await;
    assert_eq!(res.0, 400, "only worker keys have a pool");
    let res = post_json(
        &s.http,
        &s.url("/api/keys"),
        &json!({"name": "aks-1", "role": "worker", "pool": "aks"}),
    )
    .await;
    let aks = res.1;
    assert_eq!(aks["pool"], "aks");
    let aks = client(aks["key"].as_str());
    let res = post_json(
        &s.http,
        &s.url("/api/keys"),
        &json!({"name": "vm-1", "role": "worker", "pool": "vm"}),
    )
    .await;
    let vm = res.1;
    let vm = client(vm["key"].as_str());

    let id = s.trigger("remote").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, e) = s.get(&format!("/api/executions/{id}")).await;
    assert_eq!(e["status"], "accepted", "queued for a standalone worker");

    let path = |what: &str| s.url(&format!("/api/worker/executions/{id}/{what}"));
    let run = json!({"worker_id": "aks-host", "delivery": "m-0:1"});
    let with_run = |extra: Value| {
        let mut b = run.clone();
        if let (Some(b), Some(extra)) = (b.as_object_mut(), extra.as_object()) {
            b.extend(extra.clone());
        }
        b
    };
    let res = post_json(
        &vm,
        &path("start"),
        &json!({"worker_id": "vm-host", "delivery": "m-0:1"}),
    )
    .await;
    assert_eq!(res.0, 403, "another pool's worker");
    let res = post_json(&s.http, &path("start"), &run).await;
    assert_eq!(res.0, 403, "an admin is not a worker");
    let res = post_json(&aks, &path("start"), &json!({"worker_id": "aks-host"})).await;
    assert_eq!(res.0, 400, "the delivery is required");
    let res = post_json(&aks, &path("start"), &run).await;
    assert_eq!(res.1["run"], true);
    let res = post_json(
        &aks,
        &path("start"),
        &json!({"worker_id": "aks-host", "delivery": "m-0:2"}),
    )
    .await;
    assert_eq!(res.1["run"], false, "started once only");
    let res = post_json(&aks, &path("heartbeat"), &run).await;
    assert_eq!(res.1["running"], true);
    let res = post_json(
        &vm,
        &path("finish"),
        &with_run(json!({"status": "succeeded"})),
    )
    .await;
    assert_eq!(res.0, 403);
    let res = post_json(&aks, &path("finish"), &with_run(json!({"status": "failed", "reason": "exit code 2", "exit_code": 2, "output": "boom\n", "sandbox": "docker"}))).await;
    assert_eq!(res.0, 200);
    let res = post_json(
        &aks,
        &path("finish"),
        &with_run(json!({"status": "succeeded"})),
    )
    .await;
    assert_eq!(res.0, 409, "a final status is final");
    let e = s.wait(&id).await;
    assert_eq!(
        (
            e["status"].as_str(),
            e["exit_code"].as_i64(),
            e["worker_id"].as_str()
        ),
        (Some("failed"), Some(2), Some("aks-host"))
    );
    assert_eq!(
        (e["output"].as_str(), e["sandbox"].as_str()),
        (Some("boom\n"), Some("docker"))
    );

    // A start whose answer was lost (the orchestrator died after recording it) is asked
    // again for the same delivery: run it. Another delivery or worker: drop it.
    let id = s.trigger("remote").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = s.url(&format!("/api/worker/executions/{id}/start"));
    let first = json!({"worker_id": "aks-host", "delivery": "m-1:1"});
    assert_eq!(post_json(&aks, &start, &first).await.1["run"], true);
    assert_eq!(
        post_json(&aks, &start, &first).await.1["run"],
        true,
        "the same delivery asking again"
    );
    let later = json!({"worker_id": "aks-host", "delivery": "m-1:2"});
    assert_eq!(post_json(&aks, &start, &later).await.1["run"], false);
    let other = json!({"worker_id": "aks-other", "delivery": "m-1:1"});
    assert_eq!(post_json(&aks, &start, &other).await.1["run"], false);
    // The execution shows a digest of the delivery, never the delivery a report needs.
    let e = s.get(&format!("/api/executions/{id}")).await.1;
    let reason = e["transitions"][1]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("delivery ") && !reason.contains("m-1"),
        "{e}"
    );
}

/// The one-request path: `?wait=` answers with the execution once it ended (200), or as it
/// is when the wait runs out (202); an ingest key, which may not read executions, is refused
/// before anything runs.
#[tokio::test]
async fn trigger_with_wait_answers_the_finished_execution_to_readers_only() {
    let env = Env::new(
        &catalog(&[
            r#"{"id": "ok", "runbook": "ok.sh"}"#,
            r#"{"id": "slow", "runbook": "slow.sh"}"#,
        ]),
        &[("ok.sh", "echo ok\n"), ("slow.sh", "sleep 5\n")],
    );
    let s = env.start();
    let (code, e) = common::answer(s.http.post(s.url("/api/Trigger?id=ok&wait=30"))).await;
    assert_eq!(code, 200, "{e}");
    assert_eq!(
        (e["status"].as_str(), e["output"].as_str()),
        (Some("succeeded"), Some("ok\n")),
        "{e}"
    );
    assert!(e["transitions"].as_array().unwrap().len() >= 3, "{e}");

    let (code, e) = common::answer(s.http.post(s.url("/api/Trigger?id=slow&wait=1"))).await;
    assert_eq!(code, 202, "{e}");
    assert_eq!(e["schema_id"], "slow");
    assert!(
        matches!(e["status"].as_str(), Some("accepted" | "running")),
        "{e}"
    );

    let ingest = common::new_key(&s, "sender", "ingest").await;
    let before = s.get("/api/executions?limit=100").await.1["items"]
        .as_array()
        .unwrap()
        .len();
    let (code, err) =
        common::answer(client(Some(&ingest)).post(s.url("/api/Trigger?id=ok&wait=5"))).await;
    assert_eq!(code, 403, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("operator or admin"),
        "{err}"
    );
    let after = s.get("/api/executions?limit=100").await.1["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "a refused trigger ran something");
}

/// `?wait=` with an Idempotency-Key already used: the one execution of that key, waited
/// for if it still runs, answered at once if it ended; nothing runs twice.
#[tokio::test]
async fn trigger_with_wait_on_a_repeated_key_answers_the_first_execution() {
    let env = Env::new(
        &catalog(&[r#"{"id": "mid", "runbook": "mid.sh"}"#]),
        &[("mid.sh", "sleep 1; echo once\n")],
    );
    let s = env.start();
    let keyed = |wait: &str| {
        s.http
            .post(s.url(&format!("/api/Trigger?id=mid{wait}")))
            .header("Idempotency-Key", "deploy-42")
    };
    let (code, first) = common::answer(keyed("")).await;
    assert_eq!(code, 202, "{first}");
    let id = first["exec_id"].as_str().unwrap().to_string();

    // Still running: the repeat waits for it to end.
    let (code, e) = common::answer(keyed("&wait=30")).await;
    assert_eq!(code, 200, "{e}");
    assert_eq!(
        (
            e["exec_id"].as_str(),
            e["status"].as_str(),
            e["output"].as_str()
        ),
        (Some(id.as_str()), Some("succeeded"), Some("once\n")),
        "{e}"
    );
    // Ended: answered as it is.
    let (code, again) = common::answer(keyed("&wait=30")).await;
    assert_eq!(code, 200, "{again}");
    assert_eq!(again["exec_id"], e["exec_id"]);
    assert_eq!(again["status"], "succeeded");

    let (_, list) = s.get("/api/executions?schema_id=mid").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
}
