//! The catalog over the API: `GET /api/schemas` (the schemas a key may see), `GET
//! /api/schemas/{id}`, and `PUT /api/schemas` (admin): a whole ClouDO-format catalog,
//! checked as at start-up and replacing the stored one at once; every replica applies it
//! within seconds; `PUT /api/schemas/{id}` (one entry, ClouDO's fields plus
//! `partition_key`) and `DELETE /api/schemas/{id}` (admin) change one entry in one atomic
//! step. A `--catalog` file wins again at the next start (the answer says so).

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
use super::body::required_json;
use super::error::{ApiError, Path};
use super::routes::document;

#[derive(Debug, Serialize, utoipa::ToSchema)]
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
    // With its ClouDO entity: what PUT takes back, every setting included.
    let mut shown = serde_json::to_value(s).map_err(ApiError::internal)?;
    if let Some(o) = shown.as_object_mut() {
        o.insert("entity".into(), s.to_entity());
    }
    Ok(Json(shown).into_response())
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

pub async fn put_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let (_, mut value) = required_json(&headers, &body, "a schema (ClouDO's entity fields)")?;
    let Some(obj) = value.as_object_mut() else {
        return Err(ApiError::bad_request("the body must be a schema object"));
    };
    match obj.get("id") {
        None => {
            obj.insert("id".into(), serde_json::Value::String(id.clone()));
        }
        Some(v) if v.as_str() == Some(id.as_str()) => {}
        Some(_) => {
            return Err(ApiError::bad_request(
                "the body's id differs from the URL's",
            ));
        }
    }
    let partition = match obj.remove("partition_key") {
        Some(serde_json::Value::String(p)) => p,
        Some(_) => return Err(ApiError::bad_request("partition_key must be a string")),
        None => state
            .ingest
            .catalog
            .get()
            .get(&id)
            .map_or_else(|| "default".to_string(), |s| s.partition_key.clone()),
    };
    let text = serde_json::json!([{"partition_key": partition, "entity": [value]}]).to_string();
    let one = Catalog::parse(&text)
        .map_err(|e| ApiError::bad_request(format!("{}: {}", e.location, e.message)))?;
    let schema = one
        .schemas()
        .first()
        .cloned()
        .ok_or_else(|| ApiError::bad_request("no schema in the body"))?;
    let put = schema.clone();
    let f: cloudo_core::store::SchemaEdit = std::sync::Arc::new(move |mut list: Vec<Schema>| {
        match list.iter_mut().find(|s| s.id == put.id) {
            Some(s) => *s = put.clone(),
            None => list.push(put.clone()),
        }
        Ok(list)
    });
    let catalog = state.documents.edit_catalog(f).await?;
    state.ingest.catalog.set(catalog);
    Ok(Json(schema).into_response())
}

pub async fn delete_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if state.ingest.catalog.get().get(&id).is_none() {
        return Err(ApiError::not_found(format!(
            "no schema with id {id:?} in the catalog"
        )));
    }
    let gone = id.clone();
    let f: cloudo_core::store::SchemaEdit = std::sync::Arc::new(move |mut list: Vec<Schema>| {
        list.retain(|s| s.id != gone);
        Ok(list)
    });
    let catalog = state.documents.edit_catalog(f).await?;
    state.ingest.catalog.set(catalog);
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}
