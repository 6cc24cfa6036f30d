//! The HTTP API: routes, shared state, and the layers every request goes through.

mod alertmanager;
mod approvals;
mod audit;
pub mod auth;
mod body;
mod console;
pub(crate) mod control;
pub mod entra;
mod error;
pub use error::ApiError;
mod executions;
mod health;
mod jwks;
mod keys;
mod limits;
pub use keys::check_pool;
mod logs;
mod metrics;
mod notify;
pub mod oidc;
mod openapi;
mod ratelimit;
pub mod routes;
mod runbooks;
mod schedules;
mod schemas;
mod scope;
pub mod server;
mod session;
mod slack;
mod stream;
mod trigger;
pub mod views;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{delete, get, post, put};
use cloudo_core::JobQueue;
use cloudo_core::auth::Permission;
use cloudo_worker::RunbookSource;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::services::executions::Executions;
use crate::services::ingest::Ingest;
use auth::{KeyCache, RoleRouter, Table};

/// What handlers share: one `Arc`, so the clone each extractor makes is one count (it
/// was forty-odd, a few percent of the CPU of every request).
#[derive(Clone)]
pub struct AppState(Arc<AppStateParts>);

impl std::ops::Deref for AppState {
    type Target = AppStateParts;
    fn deref(&self) -> &AppStateParts {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct AppStateParts {
    pub executions: Executions,
    /// What handlers read; writes go through the services.
    pub store: crate::services::view::StoreView,
    pub access: crate::services::access::Access,
    pub documents: crate::services::documents::Documents,
    pub ingest: Ingest,
    /// The rules file given at start-up, if any (it replaces API changes at each start).
    pub routes_file: Option<Arc<str>>,
    pub queue: Arc<dyn JobQueue>,
    pub runbooks: Arc<dyn RunbookSource>,
    /// Base of the links to executions, without a trailing slash.
    pub public_url: Arc<str>,
    /// Filled by [`router`].
    pub auth_table: Table,
    pub keys: Arc<KeyCache>,
    /// `--dev-no-auth`: every request is an admin.
    pub dev_no_auth: bool,
    /// Most alerts one request may carry.
    pub max_alerts: usize,
    /// Per-client rate of the ingest routes.
    pub ingest_limit: Arc<auth::RateLimit>,
    /// Where audit records go.
    pub audit: auth::AuditSink,
    /// Entra ID Secure Webhook tokens, when configured.
    pub entra: Option<Arc<entra::EntraValidator>>,
    /// On-call notifications (routing shown and replaced through the API).
    pub notifier: crate::services::notify::Notifier,
    /// Signs and checks approval links.
    pub links: crate::services::links::LinkSigner,
    /// The schedules document in use, and the file it came from at start-up, if any.
    pub schedules: crate::services::scheduler::LiveSchedules,
    pub schedules_file: Option<Arc<str>>,
    /// The `--catalog` file given at start-up, if any (it replaces API changes at each start).
    pub catalog_file: Option<Arc<str>>,
    /// Console sessions.
    pub sessions: crate::services::sessions::Sessions,
    /// Session cookies are `Secure` (the public URL is https).
    pub secure_cookies: bool,
    /// Per-client rate of sign-in attempts.
    pub sign_in_limit: Arc<auth::RateLimit>,
    /// Single sign-on, when configured.
    pub oidc: Option<Arc<oidc::Provider>>,
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

/// Every route with the permission it needs (the single source for the middleware and
/// for docs/security.md). `alertmanager_body_limit`: the body limit of the Alertmanager
/// webhook, whose groups are larger than anything else a sender posts.
fn routes(alertmanager_body_limit: usize) -> RoleRouter {
    use Method as M;
    use Permission as P;
    RoleRouter::new()
        .add(
            "/api/Trigger",
            vec![
                (M::GET, P::Ingest, get(trigger::trigger)),
                (M::POST, P::Ingest, post(trigger::trigger)),
            ],
        )
        .add(
            "/api/Trigger/{team}",
            vec![
                (M::GET, P::Ingest, get(trigger::trigger_team)),
                (M::POST, P::Ingest, post(trigger::trigger_team)),
            ],
        )
        .add(
            "/api/webhooks/alertmanager",
            vec![(
                M::POST,
                P::Ingest,
                post(alertmanager::webhook).layer(DefaultBodyLimit::max(alertmanager_body_limit)),
            )],
        )
        .add(
            "/api/routes",
            vec![
                (M::GET, P::Read, get(routes::get)),
                (M::PUT, P::Admin, put(routes::put)),
            ],
        )
        .add(
            "/api/notify/routes",
            vec![
                (M::GET, P::Read, get(notify::get)),
                (M::PUT, P::Admin, put(notify::put)),
            ],
        )
        .add(
            "/api/schemas",
            vec![
                (M::GET, P::Read, get(schemas::list)),
                (M::PUT, P::Admin, put(schemas::replace)),
            ],
        )
        .add(
            "/api/schemas/{id}",
            vec![
                (M::GET, P::Read, get(schemas::get)),
                (M::PUT, P::Admin, put(schemas::put_one)),
                (M::DELETE, P::Admin, delete(schemas::delete_one)),
            ],
        )
        .add(
            "/api/schedules",
            vec![(M::GET, P::Read, get(schedules::list))],
        )
        .add(
            "/api/schedules/{id}",
            vec![
                (M::GET, P::Read, get(schedules::get)),
                (M::PUT, P::Admin, put(schedules::put)),
                (M::DELETE, P::Admin, delete(schedules::delete)),
            ],
        )
        .add(
            "/api/routes/test",
            vec![(M::POST, P::Operate, post(routes::test))],
        )
        .add(
            "/api/runbooks",
            vec![(M::GET, P::Read, get(runbooks::list))],
        )
        .add(
            "/api/runbooks/refresh",
            vec![(M::POST, P::Operate, post(runbooks::refresh))],
        )
        .add(
            "/api/runbooks/{*path}",
            vec![(M::GET, P::Read, get(runbooks::read))],
        )
        .add(
            "/api/executions",
            vec![(M::GET, P::Read, get(executions::list))],
        )
        .add(
            "/api/executions/{exec_id}",
            vec![(M::GET, P::Read, get(executions::get_one))],
        )
        .add(
            "/api/executions/{exec_id}/cancel",
            vec![(M::POST, P::Operate, post(control::cancel))],
        )
        .add(
            "/api/executions/{exec_id}/approve",
            vec![(M::POST, P::Operate, post(control::approve))],
        )
        .add(
            "/api/executions/{exec_id}/reject",
            vec![(M::POST, P::Operate, post(control::reject))],
        )
        .add(
            "/api/integrations/slack/actions",
            vec![(M::POST, P::Public, post(slack::actions))],
        )
        .add(
            "/api/approvals/{exec_id}/{decision}",
            vec![
                (M::GET, P::Public, get(approvals::page)),
                (M::POST, P::Public, post(approvals::decide)),
            ],
        )
        .add(
            "/api/executions/{exec_id}/output",
            vec![(M::GET, P::Read, get(executions::output))],
        )
        .add(
            "/api/executions/{exec_id}/stream",
            vec![(M::GET, P::Read, get(stream::stream))],
        )
        .add("/api/logs", vec![(M::GET, P::Read, get(logs::page))])
        .add("/api/logs/query", vec![(M::GET, P::Read, get(logs::query))])
        .add(
            "/api/logs/{partition}/{exec_id}",
            vec![(M::GET, P::Read, get(logs::one))],
        )
        .add(
            "/api/keys",
            vec![
                (M::GET, P::Admin, get(keys::list)),
                (M::POST, P::Admin, post(keys::create)),
            ],
        )
        .add(
            "/api/keys/{name}",
            vec![(M::DELETE, P::Admin, delete(keys::revoke))],
        )
        .add("/api/audit", vec![(M::GET, P::Admin, get(keys::audit))])
        .add(
            "/api/worker/executions/{exec_id}/start",
            vec![(M::POST, P::Worker, post(worker::start))],
        )
        .add(
            "/api/worker/executions/{exec_id}/heartbeat",
            vec![(M::POST, P::Worker, post(worker::heartbeat))],
        )
        .add(
            "/api/worker/executions/{exec_id}/finish",
            vec![(M::POST, P::Worker, post(worker::finish))],
        )
        .add(
            "/api/worker/executions/{exec_id}/payload",
            vec![(M::POST, P::Worker, post(worker::payload))],
        )
        .add(
            "/api/worker/alive",
            vec![(M::POST, P::Worker, post(worker::alive))],
        )
        .add("/api/workers", vec![(M::GET, P::Read, get(worker::list))])
        .add(
            "/api/session",
            vec![
                (M::POST, P::Public, post(session::sign_in)),
                (M::GET, P::Read, get(session::me)),
                (M::DELETE, P::Public, delete(session::sign_out)),
            ],
        )
        .add(
            "/api/session/providers",
            vec![(M::GET, P::Public, get(session::providers))],
        )
        .add(
            "/api/session/oidc/login",
            vec![(M::GET, P::Public, get(oidc::login))],
        )
        .add(
            "/api/session/oidc/callback",
            vec![(M::GET, P::Public, get(oidc::callback))],
        )
        .add("/", vec![(M::GET, P::Public, get(console::index))])
        .add(
            "/ui/{*path}",
            vec![(M::GET, P::Public, get(console::asset))],
        )
        .add("/metrics", vec![(M::GET, P::Metrics, get(metrics::scrape))])
        .add(
            "/api/openapi.json",
            vec![(M::GET, P::AnyKey, get(openapi::serve))],
        )
        .add(
            "/api/healthz",
            vec![(M::GET, P::Public, get(health::healthz))],
        )
        .add(
            "/api/readyz",
            vec![(M::GET, P::Public, get(health::readyz))],
        )
}

/// Bytes an Alertmanager group of `max_alerts` may take: 2 KiB an alert (labels and
/// annotations), and never less than the body limit of the other routes.
fn alertmanager_body_limit(body_limit: usize, max_alerts: usize) -> usize {
    body_limit.max(max_alerts.saturating_mul(2048))
}

/// The permission table, for docs and tests.
#[cfg(test)]
pub fn route_table() -> Table {
    routes(0).finish().1
}

/// The whole API.
pub fn router(mut parts: AppStateParts, body_limit: usize) -> Router {
    let limits = limits::BodyLimits {
        default: body_limit,
        alertmanager: alertmanager_body_limit(body_limit, parts.max_alerts),
    };
    let (api, table) = routes(limits.alertmanager).finish();
    parts.auth_table = table;
    let state = AppState(Arc::new(parts));
    api.route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::authorize))
        .route_layer(axum::middleware::from_fn(metrics::track))
        .fallback(metrics::unmatched)
        .layer(axum::middleware::from_fn_with_state(
            limits,
            limits::request_limits,
        ))
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

#[cfg(test)]
mod tests;
