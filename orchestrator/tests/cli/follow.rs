//! `trigger --follow` and `logs --follow`: output in order, the outcome as the exit code,
//! and a stream that survives a server restart.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::common::{self, ADMIN_KEY, Server};
use super::{admin, cloudo, code, env, stderr, stdout};

/// The one execution of `schema` once it has `status` (found through the API).
async fn exec_of(s: &Server, schema: &str, status: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, page) = s
            .get(&format!("/api/executions?schema_id={schema}&limit=1"))
            .await;
        if let Some(e) = page["items"].get(0)
            && e["status"] == status
        {
            return e["exec_id"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no {status} run of {schema}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `cloudo trigger <schema> --follow` running in the background.
fn follow_in_background(s: &Server, schema: &str) -> Child {
    cloudo(&s.base, Some(ADMIN_KEY), &["trigger", schema, "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a background follow to end: its exit code, stdout and stderr.
fn ended(mut child: Child) -> (i32, String, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut out = String::new();
            let mut err = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (st.code().expect("exited"), out, err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the follow never ended");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn follow_exits_with_the_outcome_of_each_kind_of_run() {
    let env = env();
    let s = env.start();

    let ok = admin(&s, &["trigger", "count", "--follow"]);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    assert_eq!(
        stdout(&ok),
        "line 1\nline 2\nline 3\nline 4\nline 5\n",
        "the output, whole and in order"
    );
    assert!(stderr(&ok).contains("succeeded"), "{}", stderr(&ok));

    let failed = admin(&s, &["trigger", "fail7", "--follow"]);
    assert_eq!(code(&failed), 7, "the runbook's own exit code");
    assert!(stdout(&failed).contains("about to fail"));

    let timeout = admin(&s, &["trigger", "slow", "--follow"]);
    assert_eq!(code(&timeout), 124, "{}", stderr(&timeout));
    assert!(stdout(&timeout).contains("started"));

    let error = admin(&s, &["trigger", "missing", "--follow"]);
    assert_eq!(code(&error), 125, "{}", stderr(&error));
    assert!(stderr(&error).contains("error"), "{}", stderr(&error));

    // Rejected while the follow waits for the approval.
    let gated = follow_in_background(&s, "gated");
    let id = exec_of(&s, "gated", "pending").await;
    let r = admin(&s, &["reject", &id, "--comment", "not now"]);
    assert_eq!(code(&r), 0, "{}", stderr(&r));
    let (rc, out, err) = ended(gated);
    assert_eq!(rc, 129, "rejected: {err}");
    assert_eq!(out, "", "nothing ran");

    // Cancelled while it runs.
    let long = follow_in_background(&s, "long");
    let id = exec_of(&s, "long", "running").await;
    let c = admin(&s, &["cancel", &id]);
    assert_eq!(code(&c), 0, "{}", stderr(&c));
    assert!(stdout(&c).contains("stopped"), "{}", stdout(&c));
    let (rc, _, err) = ended(long);
    assert_eq!(rc, 130, "stopped: {err}");

    // `logs --follow` of a run that already ended: the whole output and its outcome.
    let id = exec_of(&s, "fail7", "failed").await;
    let logs = admin(&s, &["logs", &id, "--follow"]);
    assert_eq!(code(&logs), 7);
    assert!(stdout(&logs).contains("about to fail"));
}

#[tokio::test]
async fn follow_resumes_where_it_stopped_after_the_server_restarts() {
    let addr = format!("127.0.0.1:{}", common::free_port());
    let env = env().arg("--listen").arg(&addr);
    let mut s = env.start();
    let mut child = follow_in_background(&s, "pause");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert_eq!(first, "before\n");

    // The server stops (it waits for the runbook, which goes on writing), then comes back.
    let st = s.stop();
    assert!(st.success(), "{st:?}");
    let s = env.start();
    assert_eq!(s.base, format!("http://{addr}"));

    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let st = child.wait().unwrap();
    assert_eq!(rest, "after\n", "the rest, nothing twice and nothing lost");
    assert_eq!(st.code(), Some(0));
    let (_, e) = s.get("/api/executions?schema_id=pause").await;
    assert_eq!(e["items"][0]["status"], "succeeded");
}
