//! A smart HTTP git server for the tests: `git http-backend` behind a loopback server that
//! wants `Authorization: Basic` with the token as password (as GitHub and Azure DevOps
//! accept it), records who asked, and answers 301 for the path prefixes it is told to.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;

/// A request the server saw: its path and the basic-auth user and password it carried.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub credentials: Option<(String, String)>,
}

#[derive(Clone)]
struct Shared {
    root: PathBuf,
    /// `None`: a public repository.
    token: Option<String>,
    /// Path prefix -> the base URL it moved to.
    redirects: Arc<Mutex<Vec<(String, String)>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

pub struct GitHttp {
    pub addr: SocketAddr,
    shared: Shared,
}

impl GitHttp {
    /// Serves the bare repositories under `root` (needs a multi-threaded test runtime: the
    /// test blocks while cloudo starts).
    pub async fn start(root: PathBuf, token: Option<&str>) -> Self {
        let shared = Shared {
            root,
            token: token.map(str::to_string),
            redirects: Arc::default(),
            seen: Arc::default(),
        };
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, shared }
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests under `prefix` are answered 301 to the same rest under `to`.
    pub fn redirect(&self, prefix: &str, to: &str) {
        let mut r = self.shared.redirects.lock().unwrap();
        r.push((prefix.to_string(), to.to_string()));
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }
}

fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let b64 = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (user, pass) = raw.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

async fn answer(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let credentials = credentials(&headers);
    shared.seen.lock().unwrap().push(Seen {
        path: uri.path().to_string(),
        credentials: credentials.clone(),
    });
    let moved = shared
        .redirects
        .lock()
        .unwrap()
        .iter()
        .find_map(|(from, to)| {
            let rest = uri.path().strip_prefix(from.as_str())?;
            let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
            Some(format!("{to}{rest}{query}"))
        });
    if let Some(location) = moved {
        return (StatusCode::MOVED_PERMANENTLY, [("location", location)]).into_response();
    }
    let allowed = match &shared.token {
        None => true,
        Some(token) => credentials.is_some_and(|(_, pass)| &pass == token),
    };
    if !allowed {
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Basic realm=\"git\"")],
            "auth",
        )
            .into_response();
    }
    backend(&shared.root, method, uri, headers, body).await
}

/// One request through `git http-backend` (CGI).
async fn backend(
    root: &PathBuf,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", uri.path())
        .env("QUERY_STRING", uri.query().unwrap_or(""))
        .env("REQUEST_METHOD", method.as_str())
        .env("REMOTE_USER", "test")
        .env("CONTENT_LENGTH", body.len().to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    for (h, var) in [
        ("content-type", "CONTENT_TYPE"),
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
        ("git-protocol", "GIT_PROTOCOL"),
    ] {
        if let Some(v) = headers.get(h).and_then(|v| v.to_str().ok()) {
            cmd.env(var, v);
        }
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, &body)
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| {
            out.stdout
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, 2))
        })
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout[..split.0]).to_string();
    let mut res = Response::builder().status(200);
    for line in head.lines() {
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("status") {
                let code: u16 = v.trim().split(' ').next().unwrap().parse().unwrap();
                res = res.status(code);
            } else {
                res = res.header(k.trim(), v.trim());
            }
        }
    }
    res.body(axum::body::Body::from(
        out.stdout[split.0 + split.1..].to_vec(),
    ))
    .unwrap()
}
