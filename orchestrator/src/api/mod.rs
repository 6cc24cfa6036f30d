//! The HTTP API: routes, shared state, and the layers every request goes through.

mod alertmanager;
mod body;
mod error;
pub use error::ApiError;
mod executions;
mod health;
mod logs;
pub mod routes;
mod runbooks;
mod trigger;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use cloudo_core::JobQueue;
use cloudo_worker::RunbookSource;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::executions::Executions;
use crate::ingest::Ingest;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub executions: Executions,
    pub ingest: Ingest,
    /// The rules file given at start-up, if any (it replaces API changes at each start).
    pub routes_file: Option<Arc<str>>,
    pub queue: Arc<dyn JobQueue>,
    pub runbooks: Arc<dyn RunbookSource>,
    /// Base of the links to executions, without a trailing slash.
    pub public_url: Arc<str>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn execution_url(&self, id: &cloudo_core::ExecId) -> String {
        format!("{}/api/executions/{id}", self.public_url)
    }
}

/// The whole API.
pub fn router(state: AppState, body_limit: usize) -> Router {
    Router::new()
        .route("/api/Trigger", get(trigger::trigger).post(trigger::trigger))
        .route(
            "/api/Trigger/{team}",
            get(trigger::trigger_team).post(trigger::trigger_team),
        )
        .route("/api/webhooks/alertmanager", post(alertmanager::webhook))
        .route("/api/routes", get(routes::get).put(routes::put))
        .route("/api/routes/test", post(routes::test))
        .route("/api/runbooks", get(runbooks::list))
        .route("/api/runbooks/refresh", post(runbooks::refresh))
        .route("/api/runbooks/{*path}", get(runbooks::read))
        .route("/api/executions", get(executions::list))
        .route("/api/executions/{exec_id}", get(executions::get_one))
        .route("/api/logs", get(logs::page))
        .route("/api/logs/{partition}/{exec_id}", get(logs::one))
        .route("/api/healthz", get(health::healthz))
        .route("/api/readyz", get(health::readyz))
        .fallback(error::not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(90),
        ))
        // Spans name the path only: query strings may carry keys (`?code=`).
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                tracing::debug_span!("http", method = %req.method(), path = %req.uri().path())
            }),
        )
        .with_state(state)
}
