//! The web console: static files embedded in the binary (`orchestrator/console/`), served at
//! `/` and `/ui/...`. They are public (a page holds no data); everything the console shows
//! comes from the API with the session cookie. The pages are plain ES modules, no build step
//! (see docs/architecture.md), under a strict Content-Security-Policy: scripts, styles and
//! connections from this origin only, no inline code, no framing.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::ApiError;
use super::error::Path;

macro_rules! files {
    ($($path:literal => $mime:literal),* $(,)?) => {
        &[$(($path, $mime, include_str!(concat!("../../console/", $path)))),*]
    };
}

/// Every file of the console: path under `console/`, content type, content.
const FILES: &[(&str, &str, &str)] = files![
    "index.html" => "text/html; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "js/app.js" => "text/javascript; charset=utf-8",
    "js/api.js" => "text/javascript; charset=utf-8",
    "js/dom.js" => "text/javascript; charset=utf-8",
    "js/ansi.js" => "text/javascript; charset=utf-8",
    "js/format.js" => "text/javascript; charset=utf-8",
    "js/pages/signin.js" => "text/javascript; charset=utf-8",
    "js/pages/executions.js" => "text/javascript; charset=utf-8",
    "js/pages/execution.js" => "text/javascript; charset=utf-8",
    "js/pages/catalog.js" => "text/javascript; charset=utf-8",
    "js/pages/schema.js" => "text/javascript; charset=utf-8",
    "js/pages/approvals.js" => "text/javascript; charset=utf-8",
    "js/pages/schedules.js" => "text/javascript; charset=utf-8",
    "js/pages/workers.js" => "text/javascript; charset=utf-8",
    "js/pages/audit.js" => "text/javascript; charset=utf-8",
    "js/pages/routing.js" => "text/javascript; charset=utf-8",
    "js/pages/dashboard.js" => "text/javascript; charset=utf-8",
];

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn serve(path: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    let Some((_, mime, body)) = FILES.iter().find(|(p, _, _)| *p == path) else {
        return Err(ApiError::not_found(format!("no console file {path}")));
    };
    let etag = format!("\"{:x}\"", Sha256::digest(body.as_bytes()));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, *mime)], *body).into_response()
    };
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    // Revalidated at each load, so a new binary's console is used at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(res)
}

/// `GET /`: the console's page.
pub async fn index(headers: HeaderMap) -> Result<Response, ApiError> {
    serve("index.html", &headers)
}

/// `GET /ui/{*path}`: its scripts and styles.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    serve(&path, &headers)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// Every module a page imports is served: a missing file would only show in a browser.
    #[test]
    fn every_imported_module_is_embedded() {
        for (path, _, body) in super::FILES {
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            for line in body
                .lines()
                .filter(|l| l.trim_start().starts_with("import "))
            {
                let Some(spec) = line.split(['"', '\'']).nth(1) else {
                    continue;
                };
                let mut parts: Vec<&str> = if dir.is_empty() {
                    vec![]
                } else {
                    dir.split('/').collect()
                };
                for seg in spec.split('/') {
                    match seg {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        s => parts.push(s),
                    }
                }
                let target = parts.join("/");
                assert!(
                    super::FILES.iter().any(|(p, _, _)| *p == target),
                    "{path} imports {spec} ({target}), which is not embedded"
                );
            }
        }
    }
}
