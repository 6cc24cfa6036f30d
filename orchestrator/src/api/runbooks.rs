//! `GET /api/runbooks` (the runbooks at the current version, with the source's state),
//! `GET /api/runbooks/{path}` (one file's content) and `POST /api/runbooks/refresh` (fetch
//! now).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::{ApiError, Path};
use super::views::{Refreshed, RunbookContent, Runbooks};

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "runbooks_unavailable",
        e.to_string(),
    )
}

pub async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let source = state.runbooks.check().await.map_err(unavailable)?;
    let files = state.runbooks.list().await.map_err(unavailable)?;
    Ok(Json(Runbooks {
        commit: source.commit.clone(),
        source,
        runbooks: files,
    })
    .into_response())
}

pub async fn read(
    State(state): State<AppState>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let source = state.runbooks.check().await.map_err(unavailable)?;
    let content = state
        .runbooks
        .read(&path)
        .await
        .map_err(|e| ApiError::not_found(e.0))?;
    Ok(Json(RunbookContent {
        path,
        commit: source.commit,
        content: String::from_utf8_lossy(&content).into_owned(),
    })
    .into_response())
}

pub async fn refresh(State(state): State<AppState>) -> Result<Response, ApiError> {
    match state.runbooks.refresh().await {
        Ok(commit) => Ok(Json(Refreshed { commit }).into_response()),
        Err(e) => Err(ApiError::new(StatusCode::BAD_GATEWAY, "fetch_failed", e.0)),
    }
}
