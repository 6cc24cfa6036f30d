//! `POST /api/executions/{id}/cancel`: queued runs never start, running ones stop in each
//! sandbox with nothing left behind, ended ones answer 409.

use super::*;
use common::{Env, catalog, processes_with, until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_runs_in_every_sandbox_and_queued_ones_never_start() {
    let env = Env::new(
        &catalog(&[
            r#"{"id": "long-p", "runbook": "long.sh", "run_args": "4000.101", "sandbox": "process"}"#,
            r#"{"id": "long-b", "runbook": "long.sh", "run_args": "4000.102", "sandbox": "bwrap"}"#,
            r#"{"id": "long-d", "runbook": "long.sh", "run_args": "4000.103", "sandbox": "docker"}"#,
            r#"{"id": "queued", "runbook": "long.sh", "run_args": "4000.104", "worker": "nobody"}"#,
            r#"{"id": "quick", "runbook": "quick.sh"}"#,
        ]),
        &[
            // Its child too: the whole tree must go.
            ("long.sh", "echo started\nsleep \"$1\" &\nsleep \"$1\"\n"),
            ("quick.sh", "echo done\n"),
        ],
    )
    .arg("--sandbox-image")
    .arg(&image())
    .arg("--kill-grace")
    .arg("1")
    .arg("--worker-pools")
    .arg("default");
    let s = env.start();

    for (id, mark) in [
        ("long-p", "4000.101"),
        ("long-b", "4000.102"),
        ("long-d", "4000.103"),
    ] {
        let exec = s.trigger(id).await;
        s.wait_for_status(&exec, "running").await;
        until(
            || processes_with(mark) >= 3,
            &format!("{id}: the runbook and both sleeps started"),
        )
        .await;
        let t = std::time::Instant::now();
        let (code, e) = post(&s, &format!("/api/executions/{exec}/cancel")).await;
        assert_eq!(code, 200, "{id}: {e}");
        assert_eq!(e["status"], "stopped", "{id}: {e}");
        assert_eq!(e["error"], "cancelled by admin", "{id}: {e}");
        until(
            || processes_with(mark) == 0,
            &format!("{id}: a process of the cancelled run is still there"),
        )
        .await;
        eprintln!("{id}: stopped, nothing left after {:?}", t.elapsed());
        assert!(t.elapsed() < SETTLE, "{id}");
        // What it wrote until it stopped reaches the log with the worker's last report.
        let deadline = std::time::Instant::now() + SETTLE;
        loop {
            let (_, e) = s.get(&format!("/api/executions/{exec}")).await;
            assert_eq!(e["status"], "stopped", "{id}: stays stopped: {e}");
            if e["output"].as_str().unwrap_or("").contains("started") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{id}: no output: {e}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (code, again) = post(&s, &format!("/api/executions/{exec}/cancel")).await;
        assert_eq!(code, 409, "{id}: {again}");
        assert_eq!(again["error"]["code"], "already_ended");
        assert!(
            again["error"]["message"]
                .as_str()
                .unwrap()
                .contains("stopped"),
            "{again}"
        );
    }

    // Queued for a pool nobody serves: cancelled, it never runs.
    let exec = s.trigger("queued").await;
    let (code, e) = post(&s, &format!("/api/executions/{exec}/cancel")).await;
    assert_eq!((code, e["status"].as_str()), (200, Some("stopped")), "{e}");
    assert_eq!(e["started_at"], Value::Null, "{e}");

    // Ended runs are not cancelled; unknown and malformed ids are clear errors.
    let done = s.wait(&s.trigger("quick").await).await;
    let id = done["exec_id"].as_str().unwrap();
    let (code, e) = post(&s, &format!("/api/executions/{id}/cancel")).await;
    assert_eq!(code, 409, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("succeeded"),
        "{e}"
    );
    let (code, _) = post(
        &s,
        "/api/executions/01a23b20-796b-7409-9fec-c528480c03db/cancel",
    )
    .await;
    assert_eq!(code, 404);
    let (code, _) = post(&s, "/api/executions/nope/cancel").await;
    assert_eq!(code, 400);

    // Who cancelled is in the audit log.
    let (_, audit) = s.get("/api/audit").await;
    let cancels = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "POST /api/executions/{exec_id}/cancel" && r["outcome"] == 200)
        .count();
    assert_eq!(cancels, 4, "{audit}");
}
