//! Notification routing over the API: `GET /api/notify/routes` and `PUT /api/notify/routes`
//! (JSON or YAML; replaces the document, persisted in the store). Teams name their secrets
//! by reference only, so the document holds no credential.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use cloudo_core::notify::NotifyRoutes;

use super::AppState;
use super::error::ApiError;
use super::routes::document;
use super::views::NotifyRoutesView;

fn show(state: &AppState) -> Response {
    let r = state.notifier.routes();
    Json(NotifyRoutesView {
        teams: &r.teams,
        rules: &r.rules,
        file: state
            .notifier
            .routes_file()
            .map(|p| p.display().to_string()),
    })
    .into_response()
}

pub async fn get(State(state): State<AppState>) -> Response {
    show(&state)
}

pub async fn put(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let text = document(&headers, &body)?;
    let routes: NotifyRoutes = state
        .documents
        .replace(text, &state.ingest.catalog.get())
        .await?;
    state.notifier.set_routes(routes);
    Ok(show(&state))
}
