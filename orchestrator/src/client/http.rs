//! Talking to a `cloudo` server: one request, its answer, and a failure a person can act on.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Failure;
use super::profile::Profile;

/// How long a request may take before the client gives up (following a stream is not
/// bounded by it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A server and the key to use with it.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

/// What a request sends besides the method and path.
#[derive(Debug, Default)]
pub struct Call<'a> {
    pub query: Vec<(&'a str, String)>,
    pub headers: Vec<(&'static str, String)>,
    /// JSON text (already serialized, so a file can be sent as it is).
    pub body: Option<String>,
}

impl<'a> Call<'a> {
    pub fn json(body: &impl Serialize) -> Result<Self, Failure> {
        let text = serde_json::to_string(body)
            .map_err(|e| Failure::new(format!("cannot encode the request: {e}")))?;
        Ok(Self {
            body: Some(text),
            ..Self::default()
        })
    }

    pub fn query(mut self, name: &'a str, value: impl ToString) -> Self {
        self.query.push((name, value.to_string()));
        self
    }
}

impl Client {
    pub fn new(profile: Profile) -> Result<Self, Failure> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("cloudo-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::new(format!("cannot set up HTTP: {e}")))?;
        Ok(Self {
            http,
            base: profile.url.trim_end_matches('/').to_string(),
            key: profile.key,
        })
    }

    /// The request, ready to send: the key goes in a header, never in the URL.
    pub fn request(&self, method: Method, path: &str, call: Call<'_>) -> reqwest::RequestBuilder {
        let mut url = format!("{}{path}", self.base);
        if let Ok(q) = serde_urlencoded::to_string(&call.query)
            && !q.is_empty()
        {
            url.push('?');
            url.push_str(&q);
        }
        let mut req = self.http.request(method, url);
        if let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        for (name, value) in call.headers {
            req = req.header(name, value);
        }
        if let Some(body) = call.body {
            req = req.header("content-type", "application/json").body(body);
        }
        req
    }

    /// Sends and reads a JSON answer; a 4xx/5xx or a failed connection is a [`Failure`].
    pub async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        call: Call<'_>,
    ) -> Result<T, Failure> {
        let res = self
            .request(method, path, call)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let res = self.check(res).await?;
        let text = res.text().await.map_err(|e| self.unreachable(&e))?;
        // An empty answer (204) reads as `null`.
        let text = if text.trim().is_empty() {
            "null"
        } else {
            &text
        };
        serde_json::from_str(text).map_err(|e| {
            Failure::new(format!(
                "{} answered something that is not the expected JSON ({e}): is it a cloudo server?",
                self.base
            ))
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str, call: Call<'_>) -> Result<T, Failure> {
        self.send(Method::GET, path, call).await
    }

    /// An answer with a 2xx status, else the failure its error body describes.
    pub async fn check(&self, res: reqwest::Response) -> Result<reqwest::Response, Failure> {
        let status = res.status();
        if status.is_success() {
            return Ok(res);
        }
        let text = res.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| text.chars().take(200).collect());
        Err(failure_of(status, &message, &self.base))
    }

    /// The connection failed: say where we tried and what to check.
    pub fn unreachable(&self, e: &reqwest::Error) -> Failure {
        let why = if e.is_timeout() {
            "timed out".to_string()
        } else if e.is_connect() {
            "connection failed".to_string()
        } else {
            "the connection broke".to_string()
        };
        Failure::new(format!(
            "cannot reach {} ({why}: {}); is the server running? Set the address with --url or CLOUDO_URL",
            self.base,
            root_cause(e)
        ))
        .code(super::exit::UNREACHABLE)
    }
}

/// The innermost error's text (reqwest's own says only "error sending request").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// One line per status, with what to do about it.
pub fn failure_of(status: StatusCode, message: &str, base: &str) -> Failure {
    let line = match status {
        StatusCode::UNAUTHORIZED => format!(
            "{base} refused the key: {message} (give a key with --key or CLOUDO_KEY, or run `cloudo login`)"
        ),
        StatusCode::FORBIDDEN => {
            format!("not allowed: {message} (use a key with that role, or ask an admin)")
        }
        StatusCode::NOT_FOUND => format!("not found: {message}"),
        StatusCode::TOO_MANY_REQUESTS => {
            format!("{message} (too many requests: try again shortly)")
        }
        s if s.is_server_error() => {
            format!(
                "{base} failed ({}): {message}; try again, or see the server's log",
                s.as_u16()
            )
        }
        s => format!("refused ({}): {message}", s.as_u16()),
    };
    Failure::new(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_says_what_to_do() {
        let f = failure_of(StatusCode::UNAUTHORIZED, "invalid key", "http://x");
        assert!(f.message.contains("cloudo login"), "{}", f.message);
        let f = failure_of(
            StatusCode::FORBIDDEN,
            "role viewer may not cancel; it needs operator",
            "http://x",
        );
        assert!(f.message.contains("needs operator"), "{}", f.message);
        let f = failure_of(StatusCode::NOT_FOUND, "no execution x", "http://x");
        assert_eq!(f.message, "not found: no execution x");
        let f = failure_of(StatusCode::SERVICE_UNAVAILABLE, "store down", "http://x");
        assert!(f.message.contains("503"), "{}", f.message);
    }
}
