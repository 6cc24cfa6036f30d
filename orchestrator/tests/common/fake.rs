//! A loopback stand-in for a third-party HTTP API (Opsgenie, Slack): records every request
//! and answers as scripted.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub headers: HashMap<String, String>,
    pub body: Value,
    pub at: Instant,
}

type Script = Arc<Mutex<HashMap<String, VecDeque<(u16, Vec<(String, String)>, String)>>>>;

/// A loopback HTTP server recording requests; answers per path from a script, else
/// `default`.
#[derive(Clone)]
pub struct Fake {
    pub base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Script,
}

impl Fake {
    pub async fn start(default_status: u16, default_body: &'static str) -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let script: Script = Arc::default();
        let (s2, sc2) = (seen.clone(), script.clone());
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (seen, script) = (s2.clone(), sc2.clone());
                async move {
                    let path = uri.path().to_string();
                    seen.lock().unwrap().push(Seen {
                        method: method.to_string(),
                        uri: uri.to_string(),
                        headers: headers
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                            .collect(),
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        at: Instant::now(),
                    });
                    let next = script
                        .lock()
                        .unwrap()
                        .get_mut(&path)
                        .and_then(|q| q.pop_front());
                    let (status, hdrs, body) =
                        next.unwrap_or((default_status, Vec::new(), default_body.to_string()));
                    let mut rsp = (StatusCode::from_u16(status).unwrap(), body).into_response();
                    rsp.headers_mut()
                        .insert("content-type", "application/json".parse().unwrap());
                    for (k, v) in hdrs {
                        rsp.headers_mut().insert(
                            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                            v.parse().unwrap(),
                        );
                    }
                    rsp
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, seen, script }
    }

    pub fn answer(&self, path: &str, status: u16, headers: &[(&str, &str)], body: &str) {
        self.script
            .lock()
            .unwrap()
            .entry(path.to_string())
            .or_default()
            .push_back((
                status,
                headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                body.to_string(),
            ));
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Seen> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let seen = self.seen();
            if seen.len() >= n {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} requests, got {}: {seen:#?}",
                seen.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
