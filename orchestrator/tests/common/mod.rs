//! A real `cloudo serve` for integration tests: the built binary, on an ephemeral port,
//! with a temporary catalog, runbooks folder and data dir, driven over HTTP.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod azure;
pub mod fake;
pub mod git;
pub mod git_http;
pub mod host;
pub mod jwt;

#[allow(unused_imports)]
pub use host::{folders, processes_with, python, slack_signature, stored_bytes};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The bootstrap admin key every test server gets (and every test client sends).
pub const ADMIN_KEY: &str = "cloudo_test_admin_key_0123456789abcdef";

/// The standalone worker binary of the `cloudo-worker` crate, beside `cloudo` in the same
/// target folder (`cargo test --workspace` builds it with the worker crate's tests).
pub fn worker_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_cloudo")).with_file_name("cloudo-worker");
    assert!(
        path.exists(),
        "{} is missing: build it (cargo build -p cloudo-worker; make test does)",
        path.display()
    );
    path
}

/// A test environment: files on disk, and at most one running server over them.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub extra_env: Vec<(String, String)>,
    pub extra_args: Vec<String>,
}

impl Env {
    /// `catalog`: the ClouDO catalog JSON. `runbooks`: (name, content) pairs.
    pub fn new(catalog: &str, runbooks: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("schemas.json"), catalog).unwrap();
        let rb = dir.path().join("runbooks");
        std::fs::create_dir_all(&rb).unwrap();
        for (name, body) in runbooks {
            let p = rb.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, body).unwrap();
        }
        Self {
            dir,
            extra_env: Vec::new(),
            extra_args: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn arg(mut self, a: &str) -> Self {
        self.extra_args.push(a.to_string());
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.extra_env.push((k.to_string(), v.to_string()));
        self
    }

    /// The process sandbox unless the test chose one.
    fn sandbox_args(&self) -> Vec<&str> {
        if self.extra_args.iter().any(|a| a == "--sandbox") {
            Vec::new()
        } else {
            vec!["--sandbox", "process"]
        }
    }

    /// An ephemeral port unless the test chose an address.
    fn listen_args(&self) -> Vec<&str> {
        if self.extra_args.iter().any(|a| a == "--listen") {
            Vec::new()
        } else {
            vec!["--listen", "127.0.0.1:0"]
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloudo"));
        cmd.arg("serve")
            .args(self.listen_args())
            .args(["--log-format", "json"])
            .arg("--data-dir")
            .arg(self.path().join("data"))
            .arg("--catalog")
            .arg(self.path().join("schemas.json"))
            .arg("--runbooks")
            .arg(self.path().join("runbooks"))
            .args(self.sandbox_args())
            .args(&self.extra_args)
            .env_remove("RUST_LOG")
            .env("CLOUDO_ADMIN_KEY", ADMIN_KEY)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    /// Starts the server and waits until it listens.
    pub fn start(&self) -> Server {
        let mut child = self.command().spawn().expect("spawn cloudo");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::<String>::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["message"] == "listening"
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_string());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "cloudo did not start; logs:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
        };
        Server {
            child,
            base: format!("http://{addr}"),
            logs,
            http: client(Some(ADMIN_KEY)),
        }
    }

    /// Runs `cloudo serve` expecting it to fail at start-up; returns its stderr.
    pub fn start_fails(&self) -> String {
        let out = self
            .command()
            .stderr(Stdio::piped())
            .output()
            .expect("run cloudo");
        assert!(!out.status.success(), "cloudo should have refused to start");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// Runs a command that must succeed (its stderr is shown when it does not); its stdout.
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run the command");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Sends `req`: the status and the JSON answer (`Null` if none).
pub async fn answer(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// POSTs `body` as JSON with `http`: the status and the JSON answer (`Null` if none).
pub async fn post_json(http: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    answer(http.post(url).json(body)).await
}

/// A key with `role` made through the API by the admin; the key.
pub async fn new_key(s: &Server, name: &str, role: &str) -> String {
    let (code, k) = post_json(
        &s.http,
        &s.url("/api/keys"),
        &serde_json::json!({"name": name, "role": role}),
    )
    .await;
    assert_eq!(code, 201, "{k}");
    k["key"].as_str().unwrap().to_string()
}

/// An HTTP client sending `key` as a bearer token.
pub fn client(key: Option<&str>) -> reqwest::Client {
    // reqwest is built with rustls and no default crypto provider: the binary installs ring,
    // and so do the test clients.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(k) = key {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {k}").parse().unwrap(),
        );
    }
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .default_headers(headers)
        .build()
        .unwrap()
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub logs: Arc<Mutex<Vec<String>>>,
    pub http: reqwest::Client,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POST /api/Trigger?id=..., expecting a 202; returns the exec id.
    pub async fn trigger(&self, id: &str) -> String {
        let res = self
            .http
            .post(self.url(&format!("/api/Trigger?id={id}")))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 202, "{body}");
        body["exec_id"].as_str().unwrap().to_string()
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        answer(self.http.get(self.url(path))).await
    }

    /// The execution once terminal (long-polls, then fails the test if it never ends).
    pub async fn wait(&self, exec_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (code, e) = self
                .get(&format!("/api/executions/{exec_id}?wait=30"))
                .await;
            assert_eq!(code, 200, "{e}");
            let status = e["status"].as_str().unwrap().to_string();
            if !["accepted", "running", "pending"].contains(&status.as_str()) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "execution {exec_id} never ended: {e}"
            );
        }
    }

    /// Polls until the execution has `status`.
    pub async fn wait_for_status(&self, exec_id: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, e) = self.get(&format!("/api/executions/{exec_id}")).await;
            if e["status"] == status {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "{exec_id} never became {status}: {e}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// SIGTERM, then all it logged: for checks that something is *not* in the logs.
    pub async fn final_logs(&mut self) -> String {
        self.stop();
        // The reader thread drops its handle on the log at the end of the output.
        until(|| Arc::strong_count(&self.logs) == 1, "the log never ended").await;
        self.logs()
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free now (for a server or driver that must be on a known address).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A catalog with one group of entities given as JSON object literals.
pub fn catalog(entities: &[&str]) -> String {
    format!(
        r#"[{{"partition_key": "test", "entity": [{}]}}]"#,
        entities.join(",")
    )
}

pub fn data_dir(env: &Env) -> PathBuf {
    env.path().join("data")
}

/// Waits up to 10 s for `f` to hold, else fails with `what`.
pub async fn until(mut f: impl FnMut() -> bool, what: &str) {
    for _ in 0..100 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}");
}

/// An Alertmanager group of `n` distinct alerts (about 190 bytes each, as in the probe).
pub fn alertmanager_group(n: usize) -> String {
    let alerts: Vec<Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "status": "firing",
                "labels": {"alertname": "PodCrashLooping", "namespace": "checkout",
                           "pod": format!("checkout-web-{i:05}")},
                "annotations": {},
                "startsAt": "2026-11-21T20:54:49Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example/graph",
                "fingerprint": format!("{i:016x}"),
            })
        })
        .collect();
    serde_json::json!({
        "receiver": "runbook-engine", "status": "firing", "alerts": alerts,
        "groupLabels": {"alertname": "PodCrashLooping"}, "commonLabels": {},
        "commonAnnotations": {}, "externalURL": "http://127.0.0.1:19093", "version": "4",
        "groupKey": "{}:{alertname=\"PodCrashLooping\"}", "truncatedAlerts": 0,
    })
    .to_string()
}
