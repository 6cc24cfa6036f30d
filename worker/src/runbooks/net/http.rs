//! Git's smart HTTP protocol (fetch only): `GET info/refs?service=git-upload-pack`, then
//! `POST git-upload-pack` for each round of negotiation, the answer streamed to libgit2.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use git2::transport::{Service, SmartSubtransport, SmartSubtransportStream};
use hyper::body::Bytes;
use reqwest::{Method, StatusCode, Url};

use super::{Access, decode, io_error};
use crate::lazy_client::LazyClient;

/// Redirects followed for the first request of a fetch (as git's `http.followRedirects`
/// default, `initial`; later requests go where it landed).
const MAX_REDIRECTS: usize = 10;

/// A stuck server must not hold the (single) fetch forever.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const READ_TIMEOUT: Duration = Duration::from_secs(60);

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        // Followed by `Exchange::send`, which knows where credentials may go.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        // Some hosts serve the smart protocol only to agents that say they are git.
        .user_agent(concat!("git/2.0 (cloudo/", env!("CARGO_PKG_VERSION"), ")"))
}

static CLIENT: LazyClient = LazyClient::new(builder);

pub(super) struct Http {
    access: Access,
    /// Where the repository answered from, once a redirect has said so.
    moved_to: Arc<Mutex<Option<String>>>,
}

impl Http {
    pub(super) fn new(access: Access) -> Self {
        Self {
            access,
            moved_to: Arc::default(),
        }
    }
}

impl SmartSubtransport for Http {
    fn action(
        &self,
        url: &str,
        action: Service,
    ) -> Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        let (method, path) = match action {
            Service::UploadPackLs => (Method::GET, "/info/refs?service=git-upload-pack"),
            Service::UploadPack => (Method::POST, "/git-upload-pack"),
            Service::ReceivePackLs | Service::ReceivePack => {
                return Err(git2::Error::from_str("runbook repositories are only read"));
            }
        };
        let client = CLIENT.get().map_err(|e| git2::Error::from_str(&e))?.clone();
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| git2::Error::from_str("a git fetch must run inside the runtime"))?;
        let invalid = |e: &dyn std::fmt::Display| {
            git2::Error::from_str(&format!("invalid repository URL: {e}"))
        };
        let mut configured = Url::parse(url).map_err(|e| invalid(&e))?;
        let auth = credentials(&mut configured, &self.access);
        let moved = self
            .moved_to
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let target = match moved {
            Some(m) => Url::parse(&m).map_err(|e| invalid(&e))?,
            None => configured.clone(),
        };
        let base = target.as_str().trim_end_matches('/');
        let url = Url::parse(&format!("{base}{path}")).map_err(|e| invalid(&e))?;
        Ok(Box::new(Exchange {
            client,
            runtime,
            method,
            url,
            path,
            auth,
            home: configured,
            body: Vec::new(),
            response: None,
            chunk: Bytes::new(),
            moved_to: self.moved_to.clone(),
        }))
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}

/// Basic-auth credentials for `url`, taken out of it (it is quoted in errors): its own user
/// and password (percent-decoded), with the token as password when it names none.
fn credentials(url: &mut Url, access: &Access) -> Option<(String, Option<String>)> {
    let user = decode(url.username());
    let password = url.password().map(decode);
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let token = || access.token.as_ref().map(|t| t.expose().to_string());
    match (user.is_empty(), password) {
        (false, password) => Some((user, password.or_else(token))),
        (true, _) => token().map(|t| ("x-access-token".to_string(), Some(t))),
    }
}

/// One request and its answer: libgit2 writes the request body, then reads the answer.
struct Exchange {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
    method: Method,
    url: Url,
    path: &'static str,
    auth: Option<(String, Option<String>)>,
    /// The configured repository: credentials go to its origin only, whatever a redirect
    /// says.
    home: Url,
    body: Vec<u8>,
    response: Option<reqwest::Response>,
    chunk: Bytes,
    moved_to: Arc<Mutex<Option<String>>>,
}

impl Exchange {
    fn send(&mut self) -> std::io::Result<reqwest::Response> {
        let service = "application/x-git-upload-pack";
        let mut url = self.url.clone();
        let mut hops = 0;
        let (res, authorized) = loop {
            let mut req = self.client.request(self.method.clone(), url.clone());
            req = if self.method == Method::POST {
                req.header("content-type", format!("{service}-request"))
                    .header("accept", format!("{service}-result"))
                    .body(std::mem::take(&mut self.body))
            } else {
                req.header("accept", "*/*")
            };
            // Credentials only to the configured repository's origin, at every hop.
            let authorized = url.origin() == self.home.origin();
            if let Some((user, password)) = self.auth.as_ref().filter(|_| authorized) {
                req = req.basic_auth(user, password.as_ref());
            }
            let res = self.runtime.block_on(req.send()).map_err(failed)?;
            if !res.status().is_redirection() || self.method != Method::GET {
                break (res, authorized);
            }
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Err(io_error(format!("more than {MAX_REDIRECTS} redirects")));
            }
            let next = res
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .and_then(|l| url.join(l).ok())
                .ok_or_else(|| io_error("a redirect without a usable Location"))?;
            if url.scheme() == "https" && next.scheme() != "https" {
                return Err(io_error(format!(
                    "the repository redirected from https to {}: refused",
                    next.scheme()
                )));
            }
            url = next;
        };
        match res.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                if self.auth.is_some() && !authorized =>
            {
                return Err(io_error(format!(
                    "the repository moved to {}, which asks for credentials; they are sent \
                     only to {} (set --runbooks-git to the new address)",
                    url.origin().ascii_serialization(),
                    self.home.origin().ascii_serialization()
                )));
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if self.auth.is_none() => {
                return Err(io_error(
                    "the repository asks for credentials: set CLOUDO_GIT_TOKEN (HTTPS) or an SSH key",
                ));
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(io_error(format!(
                    "authentication failed (HTTP {})",
                    res.status().as_u16()
                )));
            }
            status => {
                return Err(io_error(format!("HTTP {} from {url}", status.as_u16())));
            }
        }
        let wanted = match self.method {
            Method::GET => format!("{service}-advertisement"),
            _ => format!("{service}-result"),
        };
        let got = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        if got != wanted {
            return Err(io_error(format!(
                "{url} is not a git smart HTTP server (content type {got})"
            )));
        }
        // Followed a redirect: the next requests of this fetch go there directly (with
        // credentials only if it is the same origin: see above).
        if url != self.url
            && let Some(base) = url.as_str().strip_suffix(self.path)
        {
            *self.moved_to.lock().unwrap_or_else(|p| p.into_inner()) = Some(base.to_string());
        }
        Ok(res)
    }
}

/// A request that failed, with its causes (reqwest's own text names only the kind).
fn failed(e: reqwest::Error) -> std::io::Error {
    io_error(format!("{:#}", anyhow::Error::from(e)))
}

impl Read for Exchange {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.response.is_none() {
            self.response = Some(self.send()?);
        }
        let Some(response) = self.response.as_mut() else {
            return Ok(0);
        };
        while self.chunk.is_empty() {
            match self.runtime.block_on(response.chunk()) {
                Ok(Some(chunk)) => self.chunk = chunk,
                Ok(None) => return Ok(0),
                Err(e) => return Err(failed(e)),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

impl Write for Exchange {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.response.is_some() {
            return Err(io_error("git wrote to a request already sent"));
        }
        self.body.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
