//! Azure Storage (Azurite) for the scale-out tests: the connection string `make test` sets,
//! standalone worker processes, worker keys, fresh table prefixes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::Server;

pub fn connection_string() -> String {
    std::env::var("CLOUDO_TEST_AZURE_CONNECTION_STRING").expect(
        "CLOUDO_TEST_AZURE_CONNECTION_STRING is not set: run through test-env/with-azurite.sh (make test does)",
    )
}

/// `env` on the Azure backend under `prefix`, with no worker pool of its own (standalone
/// workers, or another replica's, run the jobs).
pub fn on_azure(env: super::Env, prefix: &str) -> super::Env {
    on_storage(env, prefix, &connection_string())
}

/// [`on_azure`] on the storage account of `connection`.
pub fn on_storage(env: super::Env, prefix: &str, connection: &str) -> super::Env {
    env.arg("--backend")
        .arg("azure")
        .arg("--worker-pools")
        .arg("none")
        .env("CLOUDO_AZURE_STORAGE_CONNECTION_STRING", connection)
        .env("CLOUDO_AZURE_PREFIX", prefix)
}

/// A standalone worker process (`cloudo-worker`).
pub struct Worker {
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    _data: tempfile::TempDir,
}

impl Worker {
    pub fn start(
        runbooks: &Path,
        prefix: &str,
        pool: &str,
        orchestrators: &str,
        key: &str,
    ) -> Self {
        Self::start_with(runbooks, prefix, (pool, orchestrators, key), &[])
    }

    /// With `extra` arguments.
    pub fn start_with(
        runbooks: &Path,
        prefix: &str,
        who: (&str, &str, &str),
        extra: &[&str],
    ) -> Self {
        Self::start_on(&connection_string(), runbooks, prefix, who, (extra, &[]))
    }

    /// On the storage account of `connection`, with `extra` arguments and variables.
    pub fn start_on(
        connection: &str,
        runbooks: &Path,
        prefix: &str,
        (pool, orchestrators, key): (&str, &str, &str),
        (extra, vars): (&[&str], &[(&str, &str)]),
    ) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut child = Command::new(super::worker_binary())
            .args(["--pool", pool, "--orchestrator", orchestrators])
            .args(extra)
            .args([
                "--backend",
                "azure",
                "--sandbox",
                "process",
                "--log-format",
                "json",
            ])
            .args(["--concurrency", "16"])
            .arg("--runbooks")
            .arg(runbooks)
            .arg("--data-dir")
            .arg(data.path())
            .env_remove("RUST_LOG")
            .env("CLOUDO_WORKER_KEY", key)
            .env("CLOUDO_AZURE_STORAGE_CONNECTION_STRING", connection)
            .env("CLOUDO_AZURE_PREFIX", prefix)
            .envs(vars.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cloudo-worker");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            logs,
            _data: data,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// SIGTERM, then the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A worker key for `pool`, made through the API.
pub async fn worker_key(s: &Server, name: &str, pool: &str) -> String {
    let res = s
        .http
        .post(s.url("/api/keys"))
        .json(&json!({"name": name, "role": "worker", "pool": pool}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    body["key"].as_str().unwrap().to_string()
}

/// A prefix of tables and queues no other test uses.
pub fn uuid_like() -> String {
    format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 0xffff_ffff
    )
}
