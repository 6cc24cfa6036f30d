//! HTTP abuse from one client while another works: oversized bodies, slow bodies,
//! malformed chunking, request smuggling shapes, HTTP/1.0, pipelining, many connections.
//! Each is answered (with the JSON error body) or cut; the working client is unaffected.
//! (Oversized and slow headers, long URIs and connections per client are also checked in
//! tests/hardening/http.rs.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::{ADMIN_KEY, client};
use crate::report::Row;

/// Sends `request` on a new connection; what came back before the server closed it or
/// `wait` passed.
fn raw(addr: &str, request: &[u8], wait: Duration) -> String {
    let Ok(mut c) = TcpStream::connect(addr) else {
        return "refused".into();
    };
    c.set_read_timeout(Some(wait)).unwrap();
    let _ = c.write_all(request);
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn client_headers() -> reqwest::header::HeaderMap {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        "authorization",
        format!("Bearer {ADMIN_KEY}").parse().unwrap(),
    );
    h
}

/// The status codes of the answers in `text`, in order.
fn statuses(text: &str) -> Vec<u16> {
    text.match_indices("HTTP/1.")
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_abuse_is_answered_or_cut_and_others_are_served() {
    let _serial = crate::report::serial().await;
    let env = crate::crash::engine().0;
    let s = env.start();
    let addr = s.base.trim_start_matches("http://").to_string();
    let auth = format!("Authorization: Bearer {ADMIN_KEY}\r\n");

    // The working client: a trigger-free read every 50 ms; its slowest answer is kept.
    let stop = Arc::new(AtomicBool::new(false));
    let worst = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let probe = {
        let (stop, worst, failures, url) = (
            stop.clone(),
            worst.clone(),
            failures.clone(),
            s.url("/api/executions?limit=5"),
        );
        tokio::spawn(async move {
            // From an address of its own: the abuse below is from 127.0.0.1.
            let http = reqwest::Client::builder()
                .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
                .default_headers(client_headers())
                .build()
                .unwrap();
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let t = Instant::now();
                let ok = http.get(&url).send().await.is_ok_and(|r| r.status() == 200);
                failures.fetch_add(usize::from(!ok), Ordering::SeqCst);
                worst.fetch_max(t.elapsed().as_millis() as usize, Ordering::SeqCst);
                n += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            n
        })
    };

    let mut cases: Vec<(&str, bool, String)> = Vec::new();
    let mut check = |name: &'static str, ok: bool, seen: &str| {
        cases.push((name, ok, seen.chars().take(120).collect()));
    };
    let a = addr.clone();
    let blocking = |req: Vec<u8>, wait: Duration| {
        let a = a.clone();
        tokio::task::spawn_blocking(move || raw(&a, &req, wait))
    };

    // A body over --body-limit, declared: 413 with the JSON body, nothing read.
    let big = format!(
        "POST /api/Trigger?id=work HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: 5000000\r\n\r\n{{"
    );
    let r = blocking(big.into_bytes(), Duration::from_secs(5))
        .await
        .unwrap();
    check(
        "oversized body (declared)",
        r.starts_with("HTTP/1.1 413") && r.contains("payload_too_large"),
        &r,
    );
    // The same, chunked, so its size is only known as it comes.
    let mut chunked = format!("POST /api/Trigger?id=work HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").into_bytes();
    for _ in 0..40 {
        chunked.extend_from_slice(b"10000\r\n");
        chunked.extend(std::iter::repeat_n(b' ', 0x10000));
        chunked.extend_from_slice(b"\r\n");
    }
    let r = blocking(chunked, Duration::from_secs(5)).await.unwrap();
    check(
        "oversized body (chunked)",
        r.starts_with("HTTP/1.1 413"),
        &r,
    );
    // Malformed chunking: a size that is not hex, then a chunk longer than announced.
    for (name, body) in [
        ("bad chunk size", "zz\r\n{}\r\n0\r\n\r\n"),
        ("chunk longer than its size", "2\r\n{\"a\":1}\r\n0\r\n\r\n"),
    ] {
        let req = format!(
            "POST /api/Trigger?id=work HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{body}"
        );
        let r = blocking(req.into_bytes(), Duration::from_secs(5))
            .await
            .unwrap();
        check(name, r.starts_with("HTTP/1.1 400") || r.is_empty(), &r);
    }
    // Both Content-Length and Transfer-Encoding (a smuggling shape): read as chunked, as
    // RFC 9112 6.3 says, and the connection closed after the answer (nothing can follow it).
    let req = format!(
        "POST /api/Trigger?id=work HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    );
    let r = blocking(req.into_bytes(), Duration::from_secs(5))
        .await
        .unwrap();
    check(
        "Content-Length with chunked",
        r.starts_with("HTTP/1.1 400") || r.to_ascii_lowercase().contains("connection: close"),
        &r,
    );
    // HTTP/1.0, no Host: answered, then closed.
    let req = format!("GET /api/executions?limit=1 HTTP/1.0\r\n{auth}\r\n");
    let r = blocking(req.into_bytes(), Duration::from_secs(5))
        .await
        .unwrap();
    check(
        "HTTP/1.0",
        r.starts_with("HTTP/1.0 200") || r.starts_with("HTTP/1.1 200"),
        &r,
    );
    // Three pipelined requests in one write: three answers, in order.
    let one = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n");
    let req = one("/api/healthz")
        + &one("/api/nope")
        + &one("/api/executions?limit=1").replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
    let r = blocking(req.into_bytes(), Duration::from_secs(5))
        .await
        .unwrap();
    check("pipelining", statuses(&r) == [200, 404, 200], &r);

    // Slow bodies: 20 clients announce a body and send it a byte a second. They hold their
    // connections (up to the 90 s request timeout), and the working client is served.
    let slow: Vec<_> = (0..20)
        .map(|_| {
            let a = addr.clone();
            let auth = auth.clone();
            std::thread::spawn(move || {
                let Ok(mut c) = TcpStream::connect(&a) else { return false };
                let head = format!("POST /api/Trigger?id=work HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n");
                let _ = c.write_all(head.as_bytes());
                for _ in 0..4 {
                    if c.write_all(b" ").is_err() {
                        return true;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
                true
            })
        })
        .collect();
    // Many connections from one client: 600 held open (over the 512 per client).
    let held: Vec<_> = (0..600)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 3]))
        .build()
        .unwrap();
    let r = other.get(s.url("/api/healthz")).send().await;
    check(
        "another client while one holds 600 connections",
        r.is_ok_and(|r| r.status() == 200),
        "",
    );
    drop(held);
    for t in slow {
        let _ = t.join();
    }

    stop.store(true, Ordering::SeqCst);
    let probes = probe.await.unwrap();
    let worst = worst.load(Ordering::SeqCst);
    let failed = failures.load(Ordering::SeqCst);
    let alive = crate::common::answer(client(None).get(s.url("/api/healthz")))
        .await
        .0
        == 200;
    let bad: Vec<String> = cases
        .iter()
        .filter(|c| !c.1)
        .map(|c| format!("{}: {:?}", c.0, c.2))
        .collect();
    let mut row = Row::new("http-abuse");
    row.load = format!("one working client ({probes} reads), abuse from one address");
    row.faults = cases.iter().map(|c| c.0).collect::<Vec<_>>().join(", ") + ", 20 slow bodies";
    row.accepted = cases.len();
    row.found = cases.len() - bad.len();
    row.violations =
        bad.len() + usize::from(failed > 0) + usize::from(worst > 2000) + usize::from(!alive);
    row.notes = format!(
        "working client: {failed} failures, slowest answer {worst} ms; wrong answers: {bad:?}"
    );
    row.finish();
}
