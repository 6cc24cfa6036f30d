//! The catalog over the API: `GET /api/schemas` (the schemas a key may see), `GET
//! /api/schemas/{id}`, and `PUT /api/schemas` (admin): a whole ClouDO-format catalog,
//! checked as at start-up and replacing the stored one at once; every replica applies it
//! within seconds. A `--catalog` file wins again at the next start (the answer says so).

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use cloudo_core::{Catalog, Schema};
use serde::Serialize;

use super::AppState;
use super::auth::Identity;
use super::error::{ApiError, Path};
use super::routes::document;

#[derive(Debug, Serialize)]
pub struct SchemaList<'a> {
    pub schemas: Vec<&'a Schema>,
    /// The `--catalog` file given at start-up: it replaces API changes at each start.
    pub file: Option<&'a str>,
}

fn show(state: &AppState, who: Option<&Identity>, catalog: &Catalog) -> Response {
    let schemas = catalog
        .schemas()
        .iter()
        .filter(|s| who.is_none_or(|w| w.scope.allows_schema(s)))
        .collect();
    Json(SchemaList {
        schemas,
        file: state.catalog_file.as_deref(),
    })
    .into_response()
}

pub async fn list(State(state): State<AppState>, who: Option<Extension<Identity>>) -> Response {
    show(
        &state,
        who.as_ref().map(|Extension(w)| w),
        &state.ingest.catalog.get(),
    )
}

pub async fn get(
    State(state): State<AppState>,
    who: Option<Extension<Identity>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let catalog = state.ingest.catalog.get();
    let s = catalog
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no schema with id {id:?} in the catalog")))?;
    super::scope::check_schema(who.as_ref().map(|Extension(w)| w), s, "read")?;
    Ok(Json(s).into_response())
}

pub async fn replace(
    State(state): State<AppState>,
    who: Option<Extension<Identity>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let text = document(&headers, &body)?;
    let catalog: Catalog = state
        .documents
        .replace(text, &state.ingest.catalog.get())
        .await?;
    if let Err(e) = state
        .ingest
        .routes()
        .check_schemas(|id| catalog.get(id).is_some())
    {
        tracing::warn!(error = %e, "the routing rules name schemas the new catalog lacks");
    }
    state.ingest.catalog.set(catalog);
    Ok(show(
        &state,
        who.as_ref().map(|Extension(w)| w),
        &state.ingest.catalog.get(),
    ))
}
