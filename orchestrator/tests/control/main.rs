//! People in the loop, through the real binary: cancel (and the approval gate).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod approvals;
mod cancel;
#[path = "../common/mod.rs"]
mod common;
mod links;
mod scopes;
mod slack;

use std::time::Duration;

use common::Server;
use serde_json::Value;

/// POSTs to `path` (no body); the status and the JSON answer.
async fn post(s: &Server, path: &str) -> (u16, Value) {
    common::answer(s.http.post(s.url(path))).await
}

fn image() -> String {
    std::env::var("CLOUDO_TEST_IMAGE").expect("CLOUDO_TEST_IMAGE (run test-env/setup-sandbox.sh)")
}

const SETTLE: Duration = Duration::from_secs(10);
