//! HTTP edges, connections per client, revoked bootstrap keys, abandoned requests.

use super::*;

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

/// ClouDO's per-call notification overrides are refused by name (400), never silently
/// ignored, never echoed (a token in a URL), and nothing runs.
#[tokio::test]
async fn cloudo_notification_overrides_are_refused_by_name() {
    const TOKEN: &str = "xoxb-override-token-in-a-url-0001";
    let s = env().start();
    for path in [
        format!("/api/Trigger?id=ok&slack_token={TOKEN}&slack_channel=%23ops"),
        "/api/Trigger/team-a?id=ok&opsgenie_api_key=og-key-0002".to_string(),
    ] {
        let (code, body) = common::answer(s.http.post(s.url(&path))).await;
        assert_eq!(code, 400, "{path}: {body}");
        let why = body["error"]["message"].as_str().unwrap();
        assert!(why.contains("notification overrides"), "{body}");
        assert!(
            !body.to_string().contains(TOKEN) && !body.to_string().contains("og-key"),
            "{body}"
        );
    }
    let (_, body) = common::answer(s.http.post(s.url(&format!(
        "/api/Trigger?id=ok&slack_token={TOKEN}&slack_channel=x"
    ))))
    .await;
    assert!(
        body.to_string().contains("slack_token, slack_channel"),
        "{body}"
    );
    // An Alertmanager group runs many executions: nothing to wait for.
    let (code, body) =
        common::answer(s.http.post(s.url("/api/webhooks/alertmanager?wait=5"))).await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body.to_string().contains("?wait= is for /api/Trigger"),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(executions(&s).await, 0, "a refused trigger ran something");
    assert!(!s.logs().contains(TOKEN), "the token reached the logs");
}
