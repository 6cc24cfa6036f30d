//! The `cloudo` command line as a client, through the real binary against a real server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod commands;
#[path = "../common/mod.rs"]
mod common;
mod errors;
mod follow;
mod terminal;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::{ADMIN_KEY, Env, Server};
use serde_json::Value;

/// Runbooks for every outcome.
fn env() -> Env {
    Env::new(
        &common::catalog(&[
            r#"{"id": "count", "name": "Count", "runbook": "count.sh"}"#,
            r#"{"id": "fail7", "runbook": "fail7.sh"}"#,
            r#"{"id": "slow", "runbook": "slow.sh", "timeout": 1}"#,
            r#"{"id": "missing", "runbook": "missing.sh"}"#,
            r#"{"id": "gated", "runbook": "count.sh", "require_approval": true, "self_approval": true}"#,
            r#"{"id": "long", "runbook": "slow.sh"}"#,
            r#"{"id": "pause", "runbook": "pause.sh"}"#,
            r#"{"id": "args", "runbook": "args.sh"}"#,
        ]),
        &[
            (
                "count.sh",
                "for i in 1 2 3 4 5; do echo \"line $i\"; sleep 0.2; done\n",
            ),
            ("fail7.sh", "echo 'about to fail' >&2\nexit 7\n"),
            ("slow.sh", "echo started\nsleep 60\n"),
            ("pause.sh", "echo before\nsleep 4\necho after\n"),
            ("args.sh", "cat \"$CLOUDO_PAYLOAD_FILE\"; echo\n"),
        ],
    )
}

/// A `cloudo` command against `server` with `key` (in the environment, as a user would),
/// with no config file of the user's in the way and no colours.
fn cloudo(url: &str, key: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloudo"));
    cmd.args(args)
        .env("CLOUDO_URL", url)
        .env(
            "CLOUDO_CLIENT_CONFIG",
            "/nonexistent/cloudo-test-config.toml",
        )
        .env("NO_COLOR", "1")
        .env_remove("CLOUDO_KEY")
        .stdin(Stdio::null());
    if let Some(k) = key {
        cmd.env("CLOUDO_KEY", k);
    }
    cmd
}

/// Runs it to the end.
fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run cloudo")
}

/// As the admin against `s`.
fn admin(s: &Server, args: &[&str]) -> Output {
    run(&mut cloudo(&s.base, Some(ADMIN_KEY), args))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Its exit code (a test fails on a signal).
fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

/// Its stdout as JSON, or the test fails showing both streams.
fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): stdout {:?}, stderr {:?}",
            stdout(o),
            stderr(o)
        )
    })
}

/// Writes `text` to a file in `env`'s folder; its path.
fn file(env: &Env, name: &str, text: &str) -> String {
    let p = env.path().join(name);
    std::fs::File::create(&p)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .unwrap();
    p.display().to_string()
}
