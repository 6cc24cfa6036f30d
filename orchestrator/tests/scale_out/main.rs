//! Scale-out on Azure Storage (Azurite): two orchestrators and standalone workers in two
//! pools, all real processes sharing one storage account.
//!
//! One test, in stages, because each stage needs the processes of the one before: 200
//! triggers spread over both orchestrators; kill -9 of a worker mid-run (lost within the
//! bound; requeued when the schema asks); kill -9 of an orchestrator right after it
//! accepted triggers (the other one serves on, nothing accepted is lost).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
mod setup;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::ADMIN_KEY;
use common::azure::{Worker, connection_string, uuid_like, worker_key};
use serde_json::json;
use setup::{LOST_AFTER, OG_KEY, lines, orchestrator, trigger_many};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_orchestrators_and_standalone_workers_share_azure_storage() {
    let shared = tempfile::tempdir().unwrap();
    let prefix = format!("e2e{}", &uuid_like());
    let og = common::fake::Fake::start(202, r#"{"result": "ok"}"#).await;
    let (env_a, mut a) = orchestrator(shared.path(), &prefix, &og.base);
    let (_env_b, b) = orchestrator(shared.path(), &prefix, &og.base);
    let runbooks = env_a.path().join("runbooks");
    let alpha_key = worker_key(&a, "w-alpha", "alpha").await;
    let beta_key = worker_key(&b, "w-beta", "beta").await;
    let both = format!("{},{}", a.base, b.base);
    let both_b_first = format!("{},{}", b.base, a.base);

    // Routing rules and notification routes PUT on one orchestrator reach the other within
    // a few seconds (it re-reads them from the store).
    let rules = serde_json::json!({"rules": [{"name": "shared-rule", "when": {"severity": "Sev0"},
        "run": "mark-a"}]});
    let res = a
        .http
        .put(a.url("/api/routes"))
        .json(&rules)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = a
        .http
        .put(a.url("/api/notify/routes"))
        .header("content-type", "application/yaml")
        .body("teams:\n  payments: {}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let t = Instant::now();
    loop {
        let (_, r) = b.get("/api/routes").await;
        let (_, n) = b.get("/api/notify/routes").await;
        if r["rules"][0]["name"] == "shared-rule" && n["teams"].get("payments").is_some() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "b still has {r} and {n}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "routing changes reached the other orchestrator after {:?}",
        t.elapsed()
    );
    let res = a
        .http
        .put(a.url("/api/routes"))
        .json(&serde_json::json!({"rules": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // `cloudo keys` works on the shared tables too.
    let keys = |args: &[&str]| {
        common::stdout_of(
            Command::new(env!("CARGO_BIN_EXE_cloudo"))
                .arg("keys")
                .args(args)
                .args(["--backend", "azure"])
                .env(
                    "CLOUDO_AZURE_STORAGE_CONNECTION_STRING",
                    connection_string(),
                )
                .env("CLOUDO_AZURE_PREFIX", &prefix),
        )
    };
    let cli_key = keys(&[
        "create", "--name", "w-cli", "--role", "worker", "--pool", "alpha",
    ]);
    assert!(cli_key.trim().len() >= 32, "{cli_key}");
    let listed = keys(&["list"]);
    for name in [
        "admin\tadmin",
        "w-alpha\tworker",
        "w-beta\tworker",
        "w-cli\tworker",
    ] {
        assert!(listed.contains(name), "{name} in {listed}");
    }
    let mut alpha = Worker::start(&runbooks, &prefix, "alpha", &both, cli_key.trim());
    let mut beta = Worker::start(&runbooks, &prefix, "beta", &both_b_first, &beta_key);

    // Both workers report themselves; either orchestrator shows them.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, w) = b.get("/api/workers").await;
        assert_eq!(code, 200, "{w}");
        let pools: BTreeSet<String> = w["pools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["pool"].as_str().unwrap().to_string())
            .collect();
        if pools.contains("alpha") && pools.contains("beta") {
            let one = &w["workers"][0];
            assert_eq!(one["capacity"], 16, "{w}");
            assert_eq!(one["alive"], true, "{w}");
            assert!(
                one["version"].as_str().is_some_and(|v| !v.is_empty()),
                "{w}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "workers never showed up: {w}\nalpha:\n{}\nbeta:\n{}",
            alpha.logs(),
            beta.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Cancelled through the other orchestrator, a run on a standalone worker stops at the
    // worker's next heartbeat, nothing left running, and keeps what it wrote.
    let hang = a.trigger("hang").await;
    b.wait_for_status(&hang, "running").await;
    common::until(
        || common::processes_with("cloudo-e2e-hang-4711") == 1,
        "the runbook started",
    )
    .await;
    let res = b
        .http
        .post(b.url(&format!("/api/executions/{hang}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let t = Instant::now();
    common::until(
        || common::processes_with("cloudo-e2e-hang-4711") == 0,
        "the cancelled run is still running on the standalone worker",
    )
    .await;
    eprintln!(
        "a cancel reached the standalone worker's runbook after {:?}",
        t.elapsed()
    );
    loop {
        let (_, e) = a.get(&format!("/api/executions/{hang}")).await;
        assert_eq!(e["status"], "stopped", "{e}");
        if e["output"].as_str().unwrap_or("").contains("hanging") {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "no output: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 200 triggers over both orchestrators and both pools: 200 executions, each run once.
    let started = Instant::now();
    let ids = trigger_many(&[&a, &b], &["mark-a", "mark-b"], 200).await;
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 200);
    for (n, id) in ids.iter().enumerate() {
        let e = if n % 2 == 0 {
            a.wait(id).await
        } else {
            b.wait(id).await
        };
        assert_eq!(e["status"], "succeeded", "{e}");
        assert_eq!(e["output"], "marked\n", "{e}");
    }
    eprintln!(
        "200 runs over 2 orchestrators and 2 workers: {:?}",
        started.elapsed()
    );
    let marks = lines(&shared.path().join("marks"));
    assert_eq!(marks.len(), 200, "each execution ran exactly once");
    let ran: BTreeSet<&String> = marks.iter().collect();
    assert_eq!(ran, unique);

    // Notifications with two orchestrators on one store: one page, then notes, each sent
    // once (one deliverer; the open alias is shared).
    for (n, s) in [&a, &b, &a].iter().enumerate() {
        let e = s.wait(&s.trigger("page-b").await).await;
        assert_eq!(e["status"], "failed", "{e}");
        og.wait_for(n + 1).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pages: Vec<String> = og.seen().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(
        pages,
        [
            "/v2/alerts",
            "/v2/alerts/cloudo%3Apage-b/notes?identifierType=alias",
            "/v2/alerts/cloudo%3Apage-b/notes?identifierType=alias"
        ],
        "each notification delivered exactly once"
    );

    // kill -9 of a worker mid-run: the execution ends lost within the bound.
    let slow = a.trigger("slow").await;
    b.wait_for_status(&slow, "running").await;
    // Output streams while it runs (with the heartbeats, through either orchestrator).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, e) = a.get(&format!("/api/executions/{slow}")).await;
        if e["output"] == "waiting\n" {
            assert_eq!(e["status"], "running", "{e}");
            break;
        }
        assert!(Instant::now() < deadline, "no live output: {e}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The log, by range, through the other orchestrator (Azure tables).
    let (code, log) = b
        .get(&format!("/api/executions/{slow}/output?offset=3"))
        .await;
    assert_eq!(code, 200, "{log}");
    assert_eq!(
        (&log["data"], &log["offset"], &log["next"], &log["done"]),
        (&json!("ting\n"), &json!(3), &json!(8), &json!(false)),
        "{log}"
    );
    alpha.kill9();
    let killed_at = Instant::now();
    let deadline = killed_at + Duration::from_secs(60);
    let lost = loop {
        let (_, e) = b.get(&format!("/api/executions/{slow}")).await;
        if e["status"] != "running" {
            break e;
        }
        assert!(Instant::now() < deadline, "never settled: {e}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let took = killed_at.elapsed();
    assert_eq!(lost["status"], "lost", "{lost}");
    assert!(
        lost["error"].as_str().unwrap().contains("no heartbeat"),
        "{lost}"
    );
    // lost-after plus a few reaper periods (lost-after / 4) and heartbeat slack.
    assert!(took < Duration::from_secs(LOST_AFTER * 3), "took {took:?}");
    eprintln!("killed worker's execution lost after {took:?} (lost-after {LOST_AFTER} s)");

    // A schema with retry_on_lost: the run is requeued and a new worker finishes it.
    let mut alpha2 = Worker::start(&runbooks, &prefix, "alpha", &both, &alpha_key);
    let retried = b.trigger("slow-retry").await;
    a.wait_for_status(&retried, "running").await;
    // "running" is recorded before the runbook starts: kill the worker once it has.
    let flag = shared.path().join("retry-flag");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !flag.exists() {
        assert!(
            Instant::now() < deadline,
            "the first attempt never started its runbook"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    alpha2.kill9();
    let _alpha3 = Worker::start(&runbooks, &prefix, "alpha", &both, &alpha_key);
    let e = b.wait(&retried).await;
    assert_eq!(e["status"], "succeeded", "{e}");
    let path: Vec<&str> = e["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        path,
        ["accepted", "running", "accepted", "running", "succeeded"],
        "{e}"
    );
    assert!(
        e["transitions"][2]["reason"]
            .as_str()
            .unwrap()
            .contains("requeued (retry 1 of 1)"),
        "{e}"
    );
    assert_eq!(
        lines(&shared.path().join("retry-marks")),
        [retried.clone(), retried.clone()]
    );

    // kill -9 of an orchestrator right after it accepted triggers: nothing accepted is
    // lost, and the other one keeps serving (workers fail over to it).
    let accepted = trigger_many(&[&a], &["mark-a", "mark-b"], 20).await;
    a.kill9();
    for id in &accepted {
        let e = b.wait(id).await;
        assert_eq!(e["status"], "succeeded", "{e}");
    }
    let more = trigger_many(&[&b], &["mark-a", "mark-b"], 10).await;
    for id in &more {
        assert_eq!(b.wait(id).await["status"], "succeeded");
    }
    let marks = lines(&shared.path().join("marks"));
    assert_eq!(marks.len(), 230, "each execution ran exactly once");
    assert!(
        !b.logs().contains(OG_KEY),
        "the Opsgenie key reached the logs"
    );
    // SIGTERM drains a worker: it takes no new job and finishes (and reports) the running one.
    let napping = b.trigger("nap-b").await;
    b.wait_for_status(&napping, "running").await;
    let status = beta.stop();
    assert!(status.success(), "{status:?}\n{}", beta.logs());
    let e = b.get(&format!("/api/executions/{napping}")).await.1;
    assert_eq!(
        e["status"], "succeeded",
        "finished before the worker exited: {e}"
    );
    assert_eq!(e["output"], "rested\n");
    for secret in [ADMIN_KEY, alpha_key.as_str(), beta_key.as_str()] {
        assert!(!b.logs().contains(secret), "a key reached the logs");
        assert!(
            !beta.logs().contains(secret),
            "a key reached the worker logs"
        );
    }
    // The hung first attempts are still sleeping: end them.
    let _ = Command::new("pkill")
        .args([
            "-f",
            &format!("cloudo-e2e-sleep {}", shared.path().display()),
        ])
        .status();
}
