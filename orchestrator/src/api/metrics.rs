//! `GET /metrics`: Prometheus text format (a `metrics` key, or viewer and above), and the
//! layer that counts and times every request by route template and code.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cloudo_worker::metrics::{HTTP_DURATION, HTTP_REQUESTS};

use super::AppState;

pub async fn scrape(State(state): State<AppState>) -> Response {
    let pools = state.ingest.catalog.get().pools();
    crate::services::telemetry::refresh(&state.store, &*state.queue, &pools).await;
    let mut res = cloudo_worker::metrics::render().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

/// The method as a label: the ones routes use, else `other`.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        _ => "other",
    }
}

/// Counts and times a request under its route's template (`/api/executions/{exec_id}`,
/// never the id itself); requests no route matched count as `unmatched`.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = method_label(req.method());
    let start = Instant::now();
    let res = next.run(req).await;
    let code = res.status().as_u16().to_string();
    metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route.clone())
        .record(start.elapsed().as_secs_f64());
    metrics::counter!(HTTP_REQUESTS, "method" => method, "route" => route, "code" => code)
        .increment(1);
    res
}

/// The fallback: 404, counted under `unmatched` (no route layer sees these requests).
pub async fn unmatched(method: Method) -> super::ApiError {
    metrics::counter!(HTTP_REQUESTS, "method" => method_label(&method), "route" => "unmatched", "code" => "404")
        .increment(1);
    super::error::not_found().await
}
