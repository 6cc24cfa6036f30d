//! The embedded engine end to end: the real `cloudo serve` binary over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
mod listing;

use std::collections::HashSet;

use common::{Env, catalog};
use serde_json::json;

const ARGS_SH: &str = "printf '[%s]\\n' \"$@\"\n";

fn basic_env() -> Env {
    Env::new(
        &catalog(&[
            r#"{"id": "args", "name": "args", "runbook": "args.sh", "run_args": "a 'b c'", "worker": "local"}"#,
            r#"{"id": "py", "runbook": "py/argv.py", "run_args": "--n 3 'x y'"}"#,
            r#"{"id": "fail", "runbook": "fail.sh", "oncall": "true"}"#,
            r#"{"id": "order", "runbook": "order.sh"}"#,
            r#"{"id": "missing", "runbook": "nope.sh"}"#,
            r#"{"id": "escape", "runbook": "../schemas.json"}"#,
            r#"{"id": "env", "runbook": "env.sh"}"#,
            r#"{"id": "off", "runbook": "args.sh", "enabled": false}"#,
            r#"{"id": "gate", "runbook": "args.sh", "require_approval": "true"}"#,
        ]),
        &[
            ("args.sh", ARGS_SH),
            ("py/argv.py", "import sys\nprint(sys.argv[1:])\n"),
            ("fail.sh", "echo about to fail\necho broken >&2\nexit 3\n"),
            // stdout and stderr are read from a pipe each (masked apart, then merged): writes
            // a few milliseconds apart keep their order.
            (
                "order.sh",
                "echo 1\nsleep 0.05\necho 2 >&2\nsleep 0.05\necho 3\nsleep 0.05\necho 4 >&2\n",
            ),
            ("env.sh", "env | sort\n"),
        ],
    )
}

#[tokio::test]
async fn trigger_runs_the_runbook_with_argv_and_records_everything() {
    let env = basic_env();
    let s = env.start();

    let res = s
        .http
        .post(s.url("/api/Trigger?id=args"))
        .header("content-type", "application/json")
        .body(r#"{"note": "kept as received"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let ack: serde_json::Value = res.json().await.unwrap();
    assert_eq!(ack["status"], "accepted");
    assert_eq!(ack["schema_id"], "args");
    assert_eq!(ack["response"]["queue"], "local");
    let id = ack["exec_id"].as_str().unwrap();
    assert!(
        ack["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/executions/{id}"))
    );
    assert_eq!(ack["log"]["exec_id"], id);

    let e = s.wait(id).await;
    assert_eq!(e["status"], "succeeded", "{e}");
    assert_eq!(e["exit_code"], 0);
    assert_eq!(e["output"], "[a]\n[b c]\n", "'b c' arrives as one argument");
    assert_eq!(e["request_body"], r#"{"note": "kept as received"}"#);
    assert_eq!(e["initiator"], "manual");
    for field in ["requested_at", "started_at", "finished_at"] {
        let t = e[field].as_str().unwrap();
        assert!(t.ends_with('Z') && t.contains('T'), "{field} = {t}");
    }
    let path: Vec<_> = e["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap())
        .collect();
    assert_eq!(path, ["accepted", "running", "succeeded"]);

    // GET works too (ClouDO's test env used GET), and Python runbooks get their argv.
    let res = s
        .http
        .get(s.url("/api/Trigger?id=py"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let id: serde_json::Value = res.json().await.unwrap();
    let e = s.wait(id["exec_id"].as_str().unwrap()).await;
    assert_eq!(e["output"], "['--n', '3', 'x y']\n", "{e}");
}

#[tokio::test]
async fn failures_missing_runbooks_and_traversal_are_recorded_with_reasons() {
    let env = basic_env();
    let s = env.start();

    let e = s.wait(&s.trigger("fail").await).await;
    assert_eq!(e["status"], "failed");
    assert_eq!(e["exit_code"], 3);
    assert_eq!(e["error"], "exit code 3");
    assert_eq!(e["output"], "about to fail\nbroken\n");

    let e = s.wait(&s.trigger("order").await).await;
    assert_eq!(
        e["output"], "1\n2\n3\n4\n",
        "stdout and stderr keep their order"
    );

    let e = s.wait(&s.trigger("missing").await).await;
    assert_eq!(e["status"], "error");
    assert!(e["error"].as_str().unwrap().contains("not found"), "{e}");
    assert!(e["exit_code"].is_null());

    let e = s.wait(&s.trigger("escape").await).await;
    assert_eq!(e["status"], "error");
    assert!(e["error"].as_str().unwrap().contains("'..'"), "{e}");
    assert!(
        e["started_at"].is_string() && e["output"].is_null(),
        "nothing ran: {e}"
    );
}

#[tokio::test]
async fn the_servers_environment_never_reaches_a_runbook() {
    let env = basic_env()
        .env("CLOUDO_TEST_SECRET", "hunter2-do-not-leak")
        .env("AZURE_CLIENT_SECRET", "also-secret");
    let s = env.start();
    let e = s.wait(&s.trigger("env").await).await;
    assert_eq!(e["status"], "succeeded");
    let out = e["output"].as_str().unwrap();
    assert!(
        !out.contains("hunter2") && !out.contains("CLOUDO_TEST_SECRET"),
        "{out}"
    );
    assert!(
        !out.contains("also-secret") && !out.contains("AZURE_"),
        "{out}"
    );
    let names: HashSet<&str> = out
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k)
        .collect();
    for required in [
        "PATH",
        "HOME",
        "LANG",
        "CLOUDO_EXEC_ID",
        "CLOUDO_NAME",
        "CLOUDO_RUNBOOK",
        "CLOUDO_WORKER",
        "CLOUDO_ONCALL",
        "CLOUDO_REQUESTED_AT",
        "CLOUDO_PAYLOAD",
        "MONITOR_CONDITION",
        "RESOURCE_ID",
        "RESOURCE_RG",
        "RESOURCE_NAME",
        "AKS_JOB",
        "AKS_DEPLOYMENT",
        "AKS_NAMESPACE",
        "AKS_POD",
    ] {
        assert!(names.contains(required), "{required} missing from:\n{out}");
    }
    // bash adds a few of its own (PWD, SHLVL, _); nothing else from the server.
    let allowed_extra: HashSet<&str> = ["PWD", "SHLVL", "_", "CLOUDO_SCHEMA_ID", "OLDPWD"].into();
    for n in &names {
        let contract = ["CLOUDO_", "RESOURCE_", "AKS_", "MONITOR_"]
            .iter()
            .any(|p| n.starts_with(p));
        assert!(
            contract || ["PATH", "HOME", "LANG"].contains(n) || allowed_extra.contains(n),
            "unexpected variable {n}"
        );
    }
    assert!(out.contains(&format!(
        "CLOUDO_EXEC_ID={}",
        e["exec_id"].as_str().unwrap()
    )));
    let home = out.lines().find_map(|l| l.strip_prefix("HOME=")).unwrap();
    assert!(
        home.contains("cloudo-run-"),
        "HOME is the private working dir: {home}"
    );
    assert!(
        !std::path::Path::new(home).exists(),
        "working dir removed afterwards"
    );
}

#[tokio::test]
async fn bad_input_gets_clear_4xx_answers() {
    let env = basic_env().arg("--body-limit").arg("1024");
    let s = env.start();
    let check = |code: u16, body: serde_json::Value, want: u16, needle: &str| {
        assert_eq!(code, want, "{body}");
        let msg = body["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{needle:?} not in {body}");
        assert!(body["error"]["code"].is_string(), "{body}");
    };
    let post = |q: &str, body: &'static str| {
        s.http
            .post(s.url(&format!("/api/Trigger{q}")))
            .body(body)
            .send()
    };
    let r = post("?id=nope", "").await.unwrap();
    check(r.status().as_u16(), r.json().await.unwrap(), 404, "nope");
    let r = post("", "").await.unwrap();
    check(r.status().as_u16(), r.json().await.unwrap(), 400, "'id'");
    let r = post("?id=", "").await.unwrap();
    check(r.status().as_u16(), r.json().await.unwrap(), 400, "'id'");
    let r = post("?id=args", "this is { not json").await.unwrap();
    check(
        r.status().as_u16(),
        r.json().await.unwrap(),
        400,
        "not valid JSON",
    );
    let big: &'static str =
        Box::leak(format!("{{\"x\": \"{}\"}}", "a".repeat(4096)).into_boxed_str());
    let r = post("?id=args", big).await.unwrap();
    check(r.status().as_u16(), r.json().await.unwrap(), 413, "limit");
    let r = s
        .http
        .post(s.url("/api/Trigger/bad%20team?id=args"))
        .send()
        .await
        .unwrap();
    check(r.status().as_u16(), r.json().await.unwrap(), 400, "team");

    let (c, b) = s.get("/api/executions/not-an-id").await;
    check(c, b, 400, "not an execution id");
    let (c, b) = s
        .get("/api/executions/01a20047-ed88-7272-ba6c-fec97cd44c93")
        .await;
    check(c, b, 404, "no execution");
    let (c, b) = s.get("/api/executions?status=done").await;
    check(c, b, 400, "unknown status");
    let (c, b) = s.get("/api/executions?limit=0").await;
    check(c, b, 400, "limit");
    let (c, b) = s.get("/api/executions?limit=abc").await;
    check(c, b, 400, "query");
    let (c, b) = s.get("/api/executions?cursor=zzz").await;
    check(c, b, 400, "cursor");
    let (c, b) = s.get("/api/nothing-here").await;
    check(c, b, 404, "route");
    // A known route with a method it does not take: 405 and what it does take.
    let r = s.http.delete(s.url("/api/healthz")).send().await.unwrap();
    assert_eq!(r.headers()["allow"], "GET, HEAD");
    check(r.status().as_u16(), r.json().await.unwrap(), 405, "DELETE");
    let r = s.http.post(s.url("/api/executions")).send().await.unwrap();
    check(
        r.status().as_u16(),
        r.json().await.unwrap(),
        405,
        "allowed: GET",
    );

    // A disabled schema is recorded as skipped, with the reason; an approval-gated one
    // waits for its approval (and does not run).
    let r = post("?id=off", "").await.unwrap();
    assert_eq!(r.status(), 200);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["status"], "skipped");
    assert_eq!(b["reason"], "schema is disabled");
    let r = post("?id=gate", "").await.unwrap();
    assert_eq!(r.status(), 202);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["status"], "pending", "{b}");

    // After all that, the service is fine and still runs things.
    let (c, _) = s.get("/api/healthz").await;
    assert_eq!(c, 200);
    let e = s.wait(&s.trigger("args").await).await;
    assert_eq!(e["status"], "succeeded");
    let (_, all) = s.get("/api/executions?limit=100").await;
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        3,
        "only the skip, the request and the run: {all}"
    );
}

#[tokio::test]
async fn a_bad_catalog_stops_start_up_naming_file_entry_and_field() {
    let env = Env::new(
        &catalog(&[
            r#"{"id": "ok", "runbook": "a.sh"}"#,
            r#"{"id": "broken", "runbook": "a.sh", "oncall": "maybe"}"#,
        ]),
        &[],
    );
    let err = env.start_fails();
    assert!(err.contains("schemas.json"), "{err}");
    assert!(
        err.contains(r#"entry [0].entity[1] (id "broken"), field "oncall""#),
        "{err}"
    );

    let env = Env::new(
        &catalog(&[
            r#"{"id": "x", "runbook": "a.sh"}"#,
            r#"{"id": "x", "runbook": "b.sh"}"#,
        ]),
        &[],
    );
    let err = env.start_fails();
    assert!(err.contains("duplicate id"), "{err}");
}

#[tokio::test]
async fn output_shows_while_running_with_secrets_masked() {
    let env = Env::new(
        &catalog(&[
            r#"{"id": "live", "runbook": "live.sh", "secrets": ["LIVE_TOKEN"], "timeout": 60}"#,
        ]),
        &[(
            "live.sh",
            "echo \"start with $LIVE_TOKEN\"\nsleep 8\necho end\n",
        )],
    )
    .env("CLOUDO_SECRET_LIVE_TOKEN", "tok-very-secret-123");
    let s = env.start();
    let id = s.trigger("live").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, e) = s.get(&format!("/api/executions/{id}")).await;
        if e["status"] == "running" && e["output"].is_string() {
            assert_eq!(e["output"], "start with ***\n", "{e}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no live output: {e}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // A follower reads the log by offset while it runs, then the rest once it ended.
    let (code, first) = s
        .get(&format!("/api/executions/{id}/output?offset=6&limit=4"))
        .await;
    assert_eq!(code, 200, "{first}");
    assert_eq!(
        (
            &first["data"],
            &first["offset"],
            &first["next"],
            &first["done"]
        ),
        (&json!("with"), &json!(6), &json!(10), &json!(false)),
        "{first}"
    );
    let e = s.wait(&id).await;
    assert_eq!(e["status"], "succeeded");
    assert_eq!(e["output"], "start with ***\nend\n");
    let (_, rest) = s
        .get(&format!("/api/executions/{id}/output?offset=10"))
        .await;
    assert_eq!(
        (&rest["data"], &rest["size"], &rest["next"], &rest["done"]),
        (&json!(" ***\nend\n"), &json!(19), &json!(19), &json!(true)),
        "the whole log, once ended: {rest}"
    );
    assert_eq!(rest["status"], "succeeded");
    for bad in ["offset=-1", "limit=0", "limit=99999999", "offset=x"] {
        let (code, body) = s.get(&format!("/api/executions/{id}/output?{bad}")).await;
        assert_eq!(code, 400, "{bad}: {body}");
        assert!(body["error"]["message"].is_string(), "{bad}: {body}");
    }
    let (code, _) = s
        .get(&format!(
            "/api/executions/{}/output",
            cloudo_core::ExecId::generate()
        ))
        .await;
    assert_eq!(code, 404);
    assert!(!s.logs().contains("tok-very-secret-123"));
}
