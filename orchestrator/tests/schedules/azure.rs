//! Two orchestrators on one Azure store (Azurite): each tick of a schedule runs once.

use std::time::Duration;

use crate::common::azure::{connection_string, uuid_like};
use crate::common::{Env, catalog};
use crate::{ECHO, consecutive, scheduled};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_orchestrators_run_each_tick_once() {
    let prefix = format!("sch{}", uuid_like());
    let env = || {
        Env::new(
            &catalog(&[r#"{"id": "tick", "runbook": "echo.sh", "schedule": "* * * * * *"}"#]),
            &[("echo.sh", ECHO)],
        )
        .arg("--backend")
        .arg("azure")
        .arg("--worker-pools")
        .arg("none")
        .env(
            "CLOUDO_AZURE_STORAGE_CONNECTION_STRING",
            &connection_string(),
        )
        .env("CLOUDO_AZURE_PREFIX", &prefix)
    };
    let (env_a, env_b) = (env(), env());
    let (a, _b) = (env_a.start(), env_b.start());
    tokio::time::sleep(Duration::from_secs(7)).await;
    let runs = scheduled(&a, "tick", "schedule:tick").await;
    assert!(runs.len() >= 4, "{} runs", runs.len());
    consecutive(&runs.iter().map(|(t, _)| *t).collect::<Vec<_>>());
}
