//! schemathesis against `/api/openapi.json`, with an admin key and with a viewer key: no
//! 5xx, and no answer the document does not describe (status, content type, headers, body
//! schema), with the server up afterwards.

use std::path::PathBuf;
use std::process::Command;

use crate::common::{ADMIN_KEY, new_key};
use crate::report::{Row, pick};

/// The checks on answers; the request-shape checks (`positive_data_acceptance`,
/// `negative_data_rejection`) are left out: the document does not encode every rule the
/// handlers check (key name patterns, a schema id that must exist), and those answers are
/// documented 400s.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance,missing_required_header,\
unsupported_method,allow_header_conformance,ignored_auth";

fn schemathesis() -> PathBuf {
    std::env::var_os("CLOUDO_IAC_VENV")
        .map_or_else(
            || PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/cloudo-test"),
            PathBuf::from,
        )
        .join("st-venv/bin/schemathesis")
}

/// The summary line's count of `what` ("generated", ...), or 0.
fn count(out: &str, what: &str) -> usize {
    out.lines()
        .find(|l| l.contains(" generated,"))
        .and_then(|l| l.split(',').find(|p| p.contains(what)))
        .and_then(|p| p.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn run(role: &str) {
    let _serial = crate::report::serial().await;
    // Only runs that end at once: `?wait=` and the event stream hold a request open until
    // the execution ends (up to 60 s), which would only make the run slow.
    let env = crate::crash::prepared(
        &[r#"{"id": "ok", "runbook": "ok.sh"}"#],
        &[("ok.sh", "echo ok\n")],
    );
    let mut s = env.start();
    // Something to read: a finished run.
    let done = s.trigger("ok").await;
    s.wait(&done).await;
    let key = new_key(&s, &format!("st-{role}"), role).await;
    let examples = pick(15, 150);
    let mut cmd = Command::new(schemathesis());
    // It keeps a `.schemathesis` cache in its working folder: the test's, not the source tree.
    cmd.current_dir(env.path())
        .arg("run")
        .arg(s.url("/api/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {key}")])
        .args(["--checks", CHECKS])
        .args(["--max-examples", &examples.to_string()])
        .args(["--workers", "1", "--no-color", "--seed", "21"])
        .args(["--request-timeout", "30"])
        .args(["--generation-database", "none"]);
    if role == "admin" {
        // Its own key would be among the keys it lists and revokes.
        cmd.args(["--exclude-path", "/api/keys/{name}"]);
    }
    let out = cmd
        .output()
        .expect("schemathesis (test-env/setup.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let generated = count(&text, "generated");
    let (code, _) = s.get("/api/healthz").await;
    let alive = s.child.try_wait().unwrap().is_none() && code == 200;
    s.stop();
    let secrets = s.logs().matches(ADMIN_KEY).count() + s.logs().matches(&key).count();

    let mut row = Row::new(&format!("schemathesis-{role}"));
    row.load = format!(
        "schemathesis 4.32.5, {generated} requests from up to {examples} examples an operation, {role} key"
    );
    row.faults = "generated and mutated requests for every operation of the document".into();
    row.accepted = generated;
    row.found = generated;
    row.secrets = secrets;
    // Failures (❌) are ours; of its errors (🚫), a network error (a timeout) is ours too,
    // a runtime error is schemathesis' own (it reports them with a stack of its code).
    let summary: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("❌ ST") || l.starts_with("🚫 "))
        .collect();
    let ours = summary
        .iter()
        .filter(|l| l.starts_with("❌") || l.contains("Network Error"))
        .count();
    row.violations = ours + usize::from(!alive);
    let last = text
        .lines()
        .rev()
        .find(|l| l.contains(" in "))
        .unwrap_or_default();
    row.notes = format!(
        "{}; {summary:?}; its whole output is in schemathesis-{role}.txt next to this row",
        last.trim_matches(|c| c == '=' || c == ' ')
    );
    let dir = crate::report::rows_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("schemathesis-{role}.txt")), &text).unwrap();
    row.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_with_an_admin_key() {
    run("admin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_with_a_viewer_key() {
    run("viewer").await;
}
