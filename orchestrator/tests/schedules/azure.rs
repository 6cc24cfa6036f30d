//! Two orchestrators on one Azure store (Azurite): each tick of a schedule runs once.

use std::time::Duration;

use crate::common::azure::{on_azure, uuid_like};
use crate::common::{Env, catalog};
use crate::{ECHO, consecutive, scheduled};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_orchestrators_run_each_tick_once() {
    let prefix = format!("sch{}", uuid_like());
    let env = || {
        on_azure(
            Env::new(
                &catalog(&[r#"{"id": "tick", "runbook": "echo.sh", "schedule": "* * * * * *"}"#]),
                &[("echo.sh", ECHO)],
            ),
            &prefix,
        )
    };
    let (env_a, env_b) = (env(), env());
    let (a, _b) = (env_a.start(), env_b.start());
    tokio::time::sleep(Duration::from_secs(7)).await;
    let runs = scheduled(&a, "tick", "schedule:tick").await;
    assert!(runs.len() >= 4, "{} runs", runs.len());
    consecutive(&runs.iter().map(|(t, _)| *t).collect::<Vec<_>>());
}
