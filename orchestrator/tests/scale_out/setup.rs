//! The scale-out test's cast: orchestrators on one storage account, triggers spread over
//! them, and the marks runbooks leave.

use std::path::{Path, PathBuf};

use crate::common::azure::connection_string;
use crate::common::{Env, Server, catalog};
use serde_json::Value;

pub const OG_KEY: &str = "og-scale-out-key-13579";

/// Workers heartbeat every 3 s.
pub const LOST_AFTER: u64 = 6;

pub fn orchestrator(shared: &Path, prefix: &str, opsgenie: &str) -> (Env, Server) {
    let marks = shared.join("marks");
    let slow = |marks: &str, flag: &str| {
        format!(
            "{} {}",
            shared.join(marks).display(),
            shared.join(flag).display()
        )
    };
    let cat = catalog(&[
        r#"{"id": "nap-b", "runbook": "nap.sh", "worker": "beta"}"#,
        r#"{"id": "page-b", "runbook": "page.sh", "worker": "beta", "oncall": true}"#,
        &format!(
            r#"{{"id": "mark-a", "runbook": "mark.sh", "run_args": "{}", "worker": "alpha"}}"#,
            marks.display()
        ),
        &format!(
            r#"{{"id": "mark-b", "runbook": "mark.sh", "run_args": "{}", "worker": "beta"}}"#,
            marks.display()
        ),
        &format!(
            r#"{{"id": "slow", "runbook": "slow.sh", "run_args": "{}", "worker": "alpha", "timeout": 300}}"#,
            slow("slow-marks", "slow-flag")
        ),
        r#"{"id": "hang", "runbook": "hang.sh", "worker": "beta", "timeout": 300}"#,
        &format!(
            r#"{{"id": "slow-retry", "runbook": "slow.sh", "run_args": "{}", "worker": "alpha", "timeout": 300, "retry_on_lost": 1}}"#,
            slow("retry-marks", "retry-flag")
        ),
    ]);
    let env = Env::new(
        &cat,
        &[
            ("mark.sh", "echo \"$CLOUDO_EXEC_ID\" >> \"$1\"\necho marked\n"),
            ("nap.sh", "sleep 2\necho rested\n"),
            ("page.sh", "echo broken\nexit 2\n"),
            ("hang.sh", "echo hanging\nexec -a cloudo-e2e-hang-4711 sleep 600\n"),
            // Records each start; the first attempt hangs, a later one (flag set) succeeds.
            (
                "slow.sh",
                "echo \"$CLOUDO_EXEC_ID\" >> \"$1\"\n[ -e \"$2\" ] && exit 0\ntouch \"$2\"\necho waiting\nexec -a \"cloudo-e2e-sleep $2\" sleep 600\n",
            ),
        ],
    )
    .arg("--backend")
    .arg("azure")
    .arg("--worker-pools")
    .arg("none")
    .arg("--lost-after")
    .arg(&LOST_AFTER.to_string())
    .env("CLOUDO_AZURE_STORAGE_CONNECTION_STRING", &connection_string())
    .env("CLOUDO_AZURE_PREFIX", prefix)
    .env("CLOUDO_OPSGENIE_API_URL", opsgenie)
    .env("CLOUDO_OPSGENIE_API_KEY", OG_KEY);
    let server = env.start();
    (env, server)
}

/// Triggers `id` on each server in turn, `n` times in all, concurrently; all must be 202.
pub async fn trigger_many(servers: &[&Server], ids: &[&str], n: usize) -> Vec<String> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let s = servers[i % servers.len()];
        let url = s.url(&format!("/api/Trigger?id={}", ids[i % ids.len()]));
        let http = s.http.clone();
        set.spawn(async move {
            let res = http.post(url).send().await.unwrap();
            assert_eq!(res.status(), 202);
            let body: Value = res.json().await.unwrap();
            body["exec_id"].as_str().unwrap().to_string()
        });
    }
    let mut out = Vec::new();
    while let Some(id) = set.join_next().await {
        out.push(id.unwrap());
    }
    out
}

pub fn lines(path: &PathBuf) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}
