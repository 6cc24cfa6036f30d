//! Handler tests in process: the engine of `cloudo serve` built by the library, its router
//! driven with `tower::ServiceExt::oneshot` (no port, no child process). The end-to-end
//! behaviour is tested through the real binary in the other files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use cloudo_orchestrator::testing::{PUBLIC_URL, TestEngine};
use serde_json::{Value, json};

struct Api {
    engine: TestEngine,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn start() -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), true).await
    }

    /// The engine over `dir`, with its `--catalog` file or (`with_catalog` false) without
    /// one, taking the stored catalog.
    async fn start_in(dir: tempfile::TempDir, with_catalog: bool) -> Self {
        let root = dir.path();
        std::fs::create_dir_all(root.join("runbooks")).unwrap();
        std::fs::write(
            root.join("runbooks/hello.sh"),
            "echo \"hello $CLOUDO_NAME\"\nprintf 'caf\\xc3\\xa9\\n'\n",
        )
        .unwrap();
        std::fs::write(
            root.join("catalog.json"),
            r#"[{"partition_key": "p", "entity": [
                {"id": "hello", "name": "greeter", "runbook": "hello.sh", "worker": "local",
                 "oncall": "false", "require_approval": "false"}]}]"#,
        )
        .unwrap();
        let s = |p: &str| root.join(p).display().to_string();
        let (data, catalog, runbooks) = (s("data"), s("catalog.json"), s("runbooks"));
        let mut args = vec![
            "--data-dir",
            &data,
            "--runbooks",
            &runbooks,
            "--sandbox",
            "process",
            "--dev-no-auth",
        ];
        if with_catalog {
            args.extend(["--catalog", &catalog]);
        }
        let engine = TestEngine::start(&args).await.expect("engine starts");
        Self { engine, _dir: dir }
    }

    async fn stop(self) -> tempfile::TempDir {
        self.engine.stop().await;
        self._dir
    }

    async fn call(&self, method: Method, path: &str, body: Option<&str>) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        let rsp = self.engine.call(req).await;
        let code = rsp.status();
        let bytes = axum::body::to_bytes(rsp.into_body(), 16 << 20)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{path}: not JSON ({code}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (code, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }
}

#[tokio::test]
async fn a_trigger_answers_cloudo_fields_and_the_run_reads_back_whole() {
    let api = Api::start().await;
    let (code, t) = api.call(Method::POST, "/api/Trigger?id=hello", None).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{t}");
    let id = t["exec_id"].as_str().unwrap().to_string();
    // ClouDO's shape beside ours.
    assert_eq!(t["schema"]["worker"], "local", "{t}");
    assert_eq!(
        t["response"],
        json!({"status": "accepted", "queue": "local"})
    );
    assert_eq!(t["log"]["exec_id"], id.as_str());
    assert!(t["log"]["partitionKey"].is_string(), "{t}");
    assert_eq!(
        t["executions"][0]["url"],
        format!("{PUBLIC_URL}/api/executions/{id}")
    );
    assert_eq!(t["duplicate"], false);

    let (code, e) = api.get(&format!("/api/executions/{id}?wait=30")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(e["status"], "succeeded", "{e}");
    assert_eq!(e["output"], "hello greeter\ncafé\n");
    assert_eq!(
        e["worker"], "local",
        "the pool keeps its ClouDO name on the wire"
    );
    assert_eq!(e["notifications"], json!([]));

    // The log by ranges: a range that would end inside "é" stops before it.
    let (_, head) = api
        .get(&format!("/api/executions/{id}/output?limit=18"))
        .await;
    assert_eq!(
        (&head["data"], &head["next"], &head["done"]),
        (&json!("hello greeter\ncaf"), &json!(17), &json!(false)),
        "{head}"
    );
    let (_, rest) = api
        .get(&format!("/api/executions/{id}/output?offset=17"))
        .await;
    assert_eq!(
        (&rest["data"], &rest["size"], &rest["done"]),
        (&json!("é\n"), &json!(20), &json!(true)),
        "{rest}"
    );

    let (_, list) = api.get("/api/executions?schema_id=hello").await;
    assert_eq!(list["items"][0]["exec_id"], id.as_str());
    assert!(list["next"].is_null() && list["items"][0].get("notifications").is_none());
    api.engine.stop().await;
}

#[tokio::test]
async fn malformed_bodies_and_unknown_ids_get_the_json_error() {
    let api = Api::start().await;
    let id = cloudo_core::ExecId::generate();
    for what in ["start", "heartbeat", "finish", "payload"] {
        let path = format!("/api/worker/executions/{id}/{what}");
        let (code, body) = api.call(Method::POST, &path, Some("{not json")).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{what}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{what}: {body}");
    }
    let (code, body) = api.get(&format!("/api/executions/{id}")).await;
    assert_eq!(
        (code, &body["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("not_found"))
    );
    let (code, body) = api.get("/api/executions/nope/output").await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not an execution id")
    );
    api.engine.stop().await;
}

#[tokio::test]
async fn documents_are_checked_replaced_and_shown() {
    let api = Api::start().await;
    let (code, body) = api
        .call(
            Method::PUT,
            "/api/routes",
            Some(r#"{"rules": [{"run": "ghost"}]}"#),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid routing rules:"),
        "{body}"
    );
    let rules = r#"{"rules": [{"name": "all", "run": "hello"}]}"#;
    let (code, body) = api.call(Method::PUT, "/api/routes", Some(rules)).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["rules"][0]["name"], "all");
    assert!(body["file"].is_null());
    let (_, shown) = api.get("/api/routes").await;
    assert_eq!(shown, body);

    let (code, body) = api
        .call(Method::PUT, "/api/notify/routes", Some(r#"{"teams": 3}"#))
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid notification routing:"),
        "{body}"
    );
    let (_, kept) = api.get("/api/notify/routes").await;
    assert_eq!(
        kept["teams"],
        json!({}),
        "a refused document changes nothing: {kept}"
    );
    api.engine.stop().await;
}

/// The catalog is a document like the others: a file given at start is stored; a start
/// without one runs on the stored catalog; a file that does not parse stops the start
/// with where and why.
#[tokio::test]
async fn a_start_without_a_catalog_file_runs_the_stored_catalog() {
    let api = Api::start().await;
    let dir = api.stop().await;
    std::fs::remove_file(dir.path().join("catalog.json")).unwrap();
    let api = Api::start_in(dir, false).await;
    let (code, body) = api.call(Method::POST, "/api/Trigger?id=hello", None).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    let id = body["exec_id"].as_str().unwrap().to_string();
    let (_, done) = api.get(&format!("/api/executions/{id}?wait=30")).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(
        done["output"].as_str().unwrap().contains("hello greeter"),
        "{done}"
    );
    let dir = api.stop().await;

    std::fs::write(
        dir.path().join("catalog.json"),
        r#"[{"partition_key": "p", "entity": [{"id": "x", "runbook": "x.sh", "timeout": -1}]}]"#,
    )
    .unwrap();
    let catalog = dir.path().join("catalog.json").display().to_string();
    let data = dir.path().join("data").display().to_string();
    let e = TestEngine::start(&["--data-dir", &data, "--catalog", &catalog, "--dev-no-auth"])
        .await
        .expect_err("an invalid catalog file stops the start");
    let msg = format!("{e:#}");
    assert!(
        msg.contains("catalog file") && msg.contains("entry [0].entity[0] (id \"x\")"),
        "{msg}"
    );
}
