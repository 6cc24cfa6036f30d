//! Regression tests for what an outside probe found (issue 12), through the real binary:
//! HTTP edge cases (HEAD, scheme case, bare hyper errors, slow headers, connections per
//! client), revoked bootstrap keys, forged worker reports, abandoned requests, large alert
//! groups and payloads, leftovers after a crash, silent on-call failures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{ADMIN_KEY, Env, Server, catalog, client};
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

#[tokio::test]
async fn http_edges_answer_with_json_and_have_no_side_effects() {
    let env = env().arg("--header-timeout").arg("2");
    let s = env.start();

    // HEAD of the trigger URL: 405 naming GET and POST, and nothing runs.
    let res = s
        .http
        .head(s.url("/api/Trigger?id=ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "GET, POST");
    let res = s
        .http
        .head(s.url("/api/Trigger/team-a?id=ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(executions(&s).await, 0, "a HEAD ran something");
    // HEAD of a read route still works.
    let res = s.http.head(s.url("/api/executions")).send().await.unwrap();
    assert_eq!(res.status(), 200);

    // The Authorization scheme is case-insensitive.
    let lower = reqwest::Client::new();
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let res = lower
            .get(s.url("/api/executions"))
            .header("authorization", format!("{scheme} {ADMIN_KEY}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{scheme}");
    }

    // readyz needs no key, so it shows states, not the runbooks folder or the data dir.
    let (code, ready) = s.get("/api/readyz").await;
    assert_eq!(code, 200);
    let text = ready.to_string();
    assert!(
        !text.contains(env.path().to_str().unwrap()) && !text.contains('/'),
        "{text}"
    );

    // hyper's own refusals carry the JSON error body too.
    let long = format!(
        "GET /api/healthz?{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    let (answer, _) = raw(&s, long.as_bytes(), Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 414 "), "{answer:?}");
    assert_eq!(body_of(&answer)["error"]["code"], "uri_too_long");
    let (answer, _) = raw(
        &s,
        b"GET /api/healthz HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer:?}");
    assert_eq!(body_of(&answer)["error"]["code"], "bad_request");
    for size in [100_000, 500_000] {
        let big = format!(
            "GET /api/healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(size)
        );
        let (answer, _) = raw(&s, big.as_bytes(), Duration::from_secs(5));
        assert!(answer.starts_with("HTTP/1.1 431 "), "{size}: {answer:?}");
        assert_eq!(body_of(&answer)["error"]["code"], "headers_too_large");
    }
    // A fresh client: the pooled connection sat idle past the 2 s header timeout.
    let res = client(Some(ADMIN_KEY))
        .get(s.url(&format!("/api/executions?x={}", "a".repeat(20_000))))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 414);
    let long: Value = res.json().await.unwrap();
    assert_eq!(long["error"]["code"], "uri_too_long");

    // Header bytes trickling in: the connection is cut at the header timeout, while
    // others are served meanwhile.
    let mut trickles = Vec::new();
    for _ in 0..20 {
        let addr = s.base.trim_start_matches("http://").to_string();
        trickles.push(std::thread::spawn(move || {
            let mut c = TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let t = Instant::now();
            let _ = c.write_all(b"GET /api/healthz HTTP/1.1\r\nHost: x\r\n");
            let mut buf = [0u8; 64];
            while t.elapsed() < Duration::from_secs(30) {
                if c.write_all(b"X-Slow: a\r\n").is_err() {
                    break;
                }
                match c.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => break,
                }
            }
            t.elapsed()
        }));
    }
    let (code, _) = s.get("/api/healthz").await;
    assert_eq!(code, 200, "served while 20 clients trickle");
    for t in trickles {
        let took = t.join().unwrap();
        assert!(
            took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
            "a trickling client was cut after {took:?} (header timeout 2 s)"
        );
    }
}

#[tokio::test]
async fn connections_per_client_are_bounded() {
    let env = env().arg("--max-client-connections").arg("8");
    let s = env.start();
    let addr = s.base.trim_start_matches("http://").to_string();
    let held: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (answer, _) = raw(
        &s,
        b"GET /api/healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(answer.starts_with("HTTP/1.1 429 "), "{answer:?}");
    assert_eq!(body_of(&answer)["error"]["code"], "too_many_connections");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (code, _) = s.get("/api/healthz").await;
    assert_eq!(
        code, 200,
        "served again once the client closed its connections"
    );
}

#[tokio::test]
async fn a_revoked_bootstrap_admin_key_stays_revoked_after_a_restart() {
    let env = env();
    let mut s = env.start();
    let (code, other) = common::post_json(
        &s.http,
        &s.url("/api/keys"),
        &serde_json::json!({"name": "second-admin", "role": "admin"}),
    )
    .await;
    assert_eq!(code, 201, "{other}");
    let second = client(Some(other["key"].as_str().unwrap()));
    let res = second
        .delete(s.url("/api/keys/admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    s.stop();

    // Restarted with CLOUDO_ADMIN_KEY still set to the revoked value.
    let s = env.start();
    let (code, _) = s.get("/api/executions").await;
    assert_eq!(code, 401, "the revoked bootstrap key came back");
    assert!(
        s.logs().contains("CLOUDO_ADMIN_KEY is a revoked key"),
        "the start-up says why: {}",
        s.logs()
    );
    let res = second.get(s.url("/api/keys")).send().await.unwrap();
    let keys: Value = res.json().await.unwrap();
    let names: Vec<&str> = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["second-admin"]);
}

/// Bytes of the data dir (the SQLite database and its WAL).
fn stored_bytes(env: &Env) -> u64 {
    std::fs::read_dir(common::data_dir(env))
        .unwrap()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

#[tokio::test]
async fn only_the_worker_and_delivery_that_started_a_run_may_report_on_it() {
    let env = Env::new(
        &catalog(&[r#"{"id": "ok", "runbook": "ok.sh"}"#]),
        &[("ok.sh", "echo ok\n")],
    )
    .arg("--worker-pools")
    .arg("none");
    let s = env.start();
    let (code, key) = common::post_json(
        &s.http,
        &s.url("/api/keys"),
        &serde_json::json!({"name": "pool-key", "role": "worker", "pool": "default"}),
    )
    .await;
    assert_eq!(code, 201, "{key}");
    let worker = client(Some(key["key"].as_str().unwrap()));
    let id = s.trigger("ok").await;
    let url = |what: &str| s.url(&format!("/api/worker/executions/{id}/{what}"));
    let real = serde_json::json!({"worker_id": "worker-a", "delivery": "msg-7f3a:1"});
    let (code, started) = common::post_json(&worker, &url("start"), &real).await;
    assert_eq!(
        (code, started["run"].as_bool()),
        (200, Some(true)),
        "{started}"
    );

    // Same pool key, another worker, or the right worker with another delivery: 409.
    for forged in [
        serde_json::json!({"worker_id": "worker-b", "delivery": "msg-7f3a:1"}),
        serde_json::json!({"worker_id": "worker-a", "delivery": "guessed:1"}),
    ] {
        let mut finish = forged.clone();
        finish["status"] = "succeeded".into();
        finish["output"] = "forged".into();
        let (code, err) = common::post_json(&worker, &url("finish"), &finish).await;
        assert_eq!(
            (code, err["error"]["code"].as_str()),
            (409, Some("not_the_runner")),
            "{err}"
        );
        let (code, _) = common::post_json(&worker, &url("heartbeat"), &forged).await;
        assert_eq!(code, 409);
        let (code, _) = common::post_json(&worker, &url("payload"), &forged).await;
        assert_eq!(code, 409);
        let (code, again) = common::post_json(&worker, &url("start"), &forged).await;
        assert_eq!(
            (code, again["run"].as_bool()),
            (200, Some(false)),
            "{again}"
        );
    }
    let (_, e) = s.get(&format!("/api/executions/{id}")).await;
    assert_eq!(e["status"], "running");
    assert!(
        !e.to_string().contains("msg-7f3a"),
        "the delivery is not shown: {e}"
    );

    // A malformed body is the API's JSON 400, not a plain-text rejection.
    let res = worker
        .post(url("heartbeat"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], "bad_request");

    // The real worker finishes it.
    let mut finish = real.clone();
    finish["status"] = "succeeded".into();
    finish["output"] = "ok\n".into();
    let (code, done) = common::post_json(&worker, &url("finish"), &finish).await;
    assert_eq!(code, 200, "{done}");
    let e = s.wait(&id).await;
    assert_eq!(
        (e["status"].as_str(), e["output"].as_str()),
        (Some("succeeded"), Some("ok\n"))
    );

    // Each refusal is in the audit log, with the worker key as actor and 409 as outcome.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, audit) = s.get("/api/audit?limit=100").await;
    let refused = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["actor"] == "pool-key" && r["outcome"] == 409)
        .count();
    assert_eq!(refused, 6, "{audit}");
}

/// An Alertmanager group of `n` distinct alerts (about 190 bytes each, as in the probe).
fn group(n: usize) -> String {
    let alerts: Vec<Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "status": "firing",
                "labels": {"alertname": "PodCrashLooping", "namespace": "checkout",
                           "pod": format!("checkout-web-{i:05}")},
                "annotations": {},
                "startsAt": "2026-11-21T20:54:49Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example/graph",
                "fingerprint": format!("{i:016x}"),
            })
        })
        .collect();
    serde_json::json!({
        "receiver": "runbook-engine", "status": "firing", "alerts": alerts,
        "groupLabels": {"alertname": "PodCrashLooping"}, "commonLabels": {},
        "commonAnnotations": {}, "externalURL": "http://127.0.0.1:19093", "version": "4",
        "groupKey": "{}:{alertname=\"PodCrashLooping\"}", "truncatedAlerts": 0,
    })
    .to_string()
}

#[tokio::test]
async fn a_large_alert_group_is_stored_once_answered_quickly_and_bounded() {
    let env = Env::new(
        &catalog(&[r#"{"id": "crash", "runbook": "payload.sh"}"#]),
        &[(
            "payload.sh",
            "echo \"file=$(wc -c < \"$CLOUDO_PAYLOAD_FILE\") env=${#CLOUDO_PAYLOAD} pod=$AKS_POD\"\n",
        )],
    )
    .arg("--max-alerts")
    .arg("3000")
    .arg("--ingest-rate")
    .arg("100");
    let s = env.start();
    let before = stored_bytes(&env);
    let body = group(3000);
    assert!(body.len() > 500_000, "{} bytes", body.len());
    let t = Instant::now();
    let res = s
        .http
        .post(s.url("/api/webhooks/alertmanager?id=crash"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let took = t.elapsed();
    assert_eq!(res.status(), 202);
    let ack: Value = res.json().await.unwrap();
    let alerts = ack["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 3000);
    // The probe measured 31 s (each execution storing the whole body); generous for a debug
    // build on a loaded CI machine, the figure is measured by make bench.
    assert!(took < Duration::from_secs(15), "answered in {took:?}");
    let grown = stored_bytes(&env) - before;
    eprintln!(
        "a {} byte group of 3000 alerts: answered in {took:?}, {grown} bytes stored",
        body.len()
    );
    assert!(
        grown < 40 << 20,
        "3000 executions of a {} byte group took {grown} bytes (the body was stored per execution)",
        body.len()
    );

    // The ingest rate counts alerts: this client now owes 2999 of them at 100/s (asked at
    // once: the debt is paid back within 30 s).
    let res = s
        .http
        .post(s.url("/api/webhooks/alertmanager?id=crash"))
        .header("content-type", "application/json")
        .body(group(1))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);

    // Each runbook reads the whole group from its payload file; the environment has no
    // room for it.
    let id = alerts[2999]["executions"][0]["exec_id"].as_str().unwrap();
    let e = s.wait(id).await;
    assert_eq!(
        e["output"].as_str().unwrap().trim(),
        format!("file={} env=0 pod=checkout-web-02999", body.len())
    );
    assert_eq!(e["request_body"].as_str().map(str::len), Some(body.len()));

    // Over the limit: 413 with the limit named, nothing recorded.
    let s2 = Env::new(
        &catalog(&[r#"{"id": "crash", "runbook": "payload.sh"}"#]),
        &[],
    )
    .arg("--max-alerts")
    .arg("100")
    .start();
    let res = s2
        .http
        .post(s2.url("/api/webhooks/alertmanager?id=crash"))
        .header("content-type", "application/json")
        .body(group(101))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], "too_many_alerts");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 100")
    );
    assert_eq!(executions(&s2).await, 0);
}

#[tokio::test]
async fn a_one_megabyte_payload_reaches_the_runbook_through_its_file() {
    let env = Env::new(
        &catalog(&[r#"{"id": "big", "runbook": "payload.sh"}"#]),
        &[(
            "payload.sh",
            "echo \"file=$(wc -c < \"$CLOUDO_PAYLOAD_FILE\") env=${#CLOUDO_PAYLOAD}\"\n",
        )],
    );
    let s = env.start();
    let small = r#"{"note": "small"}"#;
    let big = format!(r#"{{"note": "{}"}}"#, "b".repeat(1_000_000 - 12));
    assert_eq!(big.len(), 1_000_000);
    for (body, env_len) in [(small.to_string(), small.len()), (big.clone(), 0)] {
        let res = s
            .http
            .post(s.url("/api/Trigger?id=big"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
        let ack: Value = res.json().await.unwrap();
        let e = s.wait(ack["exec_id"].as_str().unwrap()).await;
        assert_eq!(e["status"], "succeeded", "{e}");
        assert_eq!(
            e["output"].as_str().unwrap().trim(),
            format!("file={} env={env_len}", body.len())
        );
    }
}

/// Folders in `dir` whose name starts with `prefix`.
fn folders(dir: &std::path::Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Host processes whose command line contains `mark`.
fn processes_with(mark: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| c.windows(mark.len()).any(|w| w == mark.as_bytes()))
        })
        .count()
}

async fn until(mut f: impl FnMut() -> bool, what: &str) {
    for _ in 0..100 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_a_killed_server_are_removed_at_the_next_start() {
    let env = Env::new(
        &catalog(&[
            r#"{"id": "daemon", "runbook": "daemon.sh", "timeout": 3}"#,
            r#"{"id": "long-p", "runbook": "long.sh"}"#,
            r#"{"id": "long-b", "runbook": "long.sh", "sandbox": "bwrap"}"#,
        ]),
        &[
            // Clears its environment and leaves the process group: only a cgroup finds it.
            ("daemon.sh", "env -i setsid sleep 3000.111 &\nsleep 300\n"),
            ("long.sh", "sleep 3000.222\n"),
        ],
    );
    let tmp = env.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    // Traversable by the bwrap sandbox's unprivileged user, like /tmp.
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let env = env.env("TMPDIR", tmp.to_str().unwrap());
    let mut s = env.start();
    assert!(
        s.logs().contains("as this server's own user"),
        "the process sandbox warns that runbooks run as the server's user"
    );

    // An env -i setsid daemon ends at the run's timeout.
    let e = s.wait(&s.trigger("daemon").await).await;
    assert_eq!(e["status"], "timeout", "{e}");
    until(
        || processes_with("3000.111") == 0,
        "the env -i setsid daemon outlived the timeout",
    )
    .await;

    // Killed -9 while two runs are live (process and bwrap): their folders, the bwrap
    // staging copy, their cgroups and the runbooks themselves are left behind.
    let p = s.trigger("long-p").await;
    let b = s.trigger("long-b").await;
    s.wait_for_status(&p, "running").await;
    s.wait_for_status(&b, "running").await;
    until(|| processes_with("3000.222") == 2, "both runbooks started").await;
    let pid = s.child.id();
    s.kill9();
    let run_dirs = folders(&tmp, &format!("cloudo-run-{pid}n"));
    let stage_dirs = folders(&tmp, &format!("cloudo-stage-{pid}n"));
    assert!(
        !run_dirs.is_empty() && !stage_dirs.is_empty(),
        "{run_dirs:?} {stage_dirs:?}"
    );
    let groups = || {
        ["pids", "memory", "cpu"]
            .iter()
            .flat_map(|c| {
                folders(
                    &std::path::Path::new("/sys/fs/cgroup")
                        .join(c)
                        .join("cloudo"),
                    "",
                )
            })
            .filter(|n| n.contains(&format!("-{pid}n")))
            .count()
    };
    assert!(groups() > 0, "the runs' cgroups are there");

    // The next start removes what belongs to no live run, and the orphans go with it.
    let s = env.start();
    assert!(folders(&tmp, &format!("cloudo-run-{pid}n")).is_empty());
    assert!(folders(&tmp, &format!("cloudo-stage-{pid}n")).is_empty());
    assert_eq!(groups(), 0, "cgroups of the killed server's runs");
    until(
        || processes_with("3000.222") == 0,
        "a runbook of the killed server still runs",
    )
    .await;
    assert!(
        s.logs()
            .contains("removed what runs of stopped workers left behind"),
        "{}",
        s.logs()
    );
    let (_, e) = s.get(&format!("/api/executions/{p}")).await;
    assert_eq!(e["status"], "lost", "{e}");
}

/// Every execution, through the paged listing.
async fn count_all(s: &Server) -> usize {
    let mut n = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/executions?limit=1000&cursor={c}"),
            None => "/api/executions?limit=1000".to_string(),
        };
        let (_, page) = s.get(&path).await;
        n += page["items"].as_array().unwrap().len();
        match page["next"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return n,
        }
    }
}

#[tokio::test]
async fn a_request_its_client_abandons_is_audited_with_its_effects() {
    let env = Env::new(
        &catalog(&[r#"{"id": "crash", "runbook": "ok.sh", "enabled": false}"#]),
        &[("ok.sh", "true\n")],
    )
    .arg("--ingest-rate")
    .arg("0");
    let s = env.start();
    let body = group(3000);
    let head = format!(
        "POST /api/webhooks/alertmanager?id=crash HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    {
        let mut c = TcpStream::connect(s.base.trim_start_matches("http://")).unwrap();
        c.write_all(head.as_bytes()).unwrap();
        c.write_all(body.as_bytes()).unwrap();
        // Gone before the answer.
        c.shutdown(std::net::Shutdown::Both).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let record = loop {
        let (_, audit) = s.get("/api/audit?limit=100").await;
        if let Some(r) = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["action"] == "POST /api/webhooks/alertmanager")
        {
            break r.clone();
        }
        assert!(Instant::now() < deadline, "no audit record: {audit}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The request ran to its end (every alert recorded), and its record says so.
    assert_eq!(record["outcome"], 200, "{record}");
    assert_eq!(record["actor"], "admin");
    assert_eq!(count_all(&s).await, 3000);
}

#[tokio::test]
async fn an_on_call_failure_that_pages_nobody_says_why() {
    let env = Env::new(
        &catalog(&[r#"{"id": "oncall", "runbook": "fail.sh", "oncall": true}"#]),
        &[("fail.sh", "exit 3\n")],
    );
    let s = env.start();
    assert!(
        s.logs().contains("their failures page nobody") && s.logs().contains("oncall"),
        "start-up warns: {}",
        s.logs()
    );
    let e = s.wait(&s.trigger("oncall").await).await;
    assert_eq!(e["status"], "failed");
    let n = e["notifications"].as_array().unwrap();
    assert_eq!(n.len(), 1, "{e}");
    assert_eq!(n[0]["state"], "skipped");
    assert!(
        n[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("no notification channel is configured"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_is_on_any_command_line_while_a_bwrap_run_is_live() {
    let secret = "db-pass-7c1e9a44-not-on-a-cmdline";
    let env = Env::new(
        &catalog(&[r#"{"id": "db", "runbook": "db.sh", "secrets": ["DB_PASSWORD"]}"#]),
        &[(
            "db.sh",
            "test -n \"$DB_PASSWORD\" && echo has-it\necho \"$DB_PASSWORD\"\nsleep 1.5\n",
        )],
    )
    .arg("--sandbox")
    .arg("bwrap")
    .env("CLOUDO_SECRET_DB_PASSWORD", secret);
    let s = env.start();
    let id = s.trigger("db").await;
    s.wait_for_status(&id, "running").await;
    let (mut scans, mut seen) = (0, 0);
    let until = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < until {
        seen += processes_with(secret);
        scans += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let e = s.wait(&id).await;
    assert_eq!(e["sandbox"], "bwrap", "{e}");
    assert_eq!(e["output"], "has-it\n***\n", "{e}");
    assert!(scans > 10);
    assert_eq!(seen, 0, "a process showed the secret on its command line");
}
