//! Regression tests for what an outside probe found (issue 12), through the real binary:
//! HTTP edge cases (HEAD, scheme case, bare hyper errors, slow headers, connections per
//! client), revoked bootstrap keys, forged worker reports, abandoned requests, large alert
//! groups and payloads, leftovers after a crash, silent on-call failures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
mod http;
mod ingest;
mod processes;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{ADMIN_KEY, Env, Server, alertmanager_group as group, catalog, client};
use serde_json::Value;

fn env() -> Env {
    Env::new(
        &catalog(&[r#"{"id": "ok", "runbook": "ok.sh"}"#]),
        &[("ok.sh", "echo ok\n")],
    )
}

/// Sends raw bytes on a new connection; what came back before the server closed it (or
/// `wait` passed), and how long that took.
fn raw(s: &Server, request: &[u8], wait: Duration) -> (String, Duration) {
    let addr = s.base.trim_start_matches("http://");
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(wait)).unwrap();
    let t = Instant::now();
    // The server may close before reading everything (a 414): that is its answer.
    let _ = c.write_all(request);
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    (String::from_utf8_lossy(&out).into_owned(), t.elapsed())
}

/// The JSON body of a raw HTTP answer.
fn body_of(answer: &str) -> Value {
    let (_, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {answer:?}"))
}

async fn executions(s: &Server) -> usize {
    let (_, all) = s.get("/api/executions?limit=1000").await;
    all["items"].as_array().unwrap().len()
}
