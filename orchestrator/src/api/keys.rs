//! `POST /api/keys` (the secret is in the answer, once), `GET /api/keys`,
//! `DELETE /api/keys/{name}`, and `GET /api/audit`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cloudo_core::auth::{ApiKey, Role, generate_key, valid_name};
use cloudo_core::scope::Scope;
use cloudo_core::store::AuditQuery;
use cloudo_core::{StoreError, time};
use serde::Deserialize;

use super::AppState;
use super::error::{ApiError, Path, Query};
use super::views::{CreatedKey, List, Paged};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    name: String,
    role: String,
    expires_at: Option<String>,
    /// Required for, and only for, `worker` keys.
    pool: Option<String>,
    /// The schemas the key may run, approve and read: `id:`, `partition:`, `tag:`.
    #[serde(default)]
    scope: Vec<String>,
}

pub async fn create(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let new: NewKey = serde_json::from_slice(&body?).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"name\", \"role\", \"expires_at\"?, \"pool\"?, \"scope\"?}}: {e}"
        ))
    })?;
    if !valid_name(&new.name) {
        return Err(ApiError::bad_request(
            "name: 1-64 letters, digits, '-', '_' or '.'",
        ));
    }
    let role: Role = new.role.parse().map_err(ApiError::bad_request)?;
    let pool = check_pool(role, new.pool).map_err(ApiError::bad_request)?;
    let scope = Scope::parse(new.scope).map_err(ApiError::bad_request)?;
    let expires_at = match new.expires_at {
        None => None,
        Some(t) => Some(
            time::parse_rfc3339(&t)
                .filter(|t| *t > time::now())
                .ok_or_else(|| {
                    ApiError::bad_request("expires_at: an RFC 3339 time in the future")
                })?,
        ),
    };
    let key = generate_key().map_err(ApiError::internal)?;
    let record = ApiKey::for_secret(&key, new.name, role, pool, expires_at).with_scope(scope);
    match state.access.create(&record).await {
        Ok(()) => {}
        Err(StoreError::Conflict(m)) => {
            return Err(ApiError::new(StatusCode::CONFLICT, "conflict", m));
        }
        Err(e) => return Err(e.into()),
    }
    let body = CreatedKey {
        record: &record,
        key: key.as_str(),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A `worker` key names exactly one pool; other keys name none.
pub fn check_pool(role: Role, pool: Option<String>) -> Result<Option<String>, String> {
    match (role, pool) {
        (Role::Worker, Some(p))
            if !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
        {
            Ok(Some(p))
        }
        (Role::Worker, _) => Err("a worker key needs \"pool\": the pool it serves".into()),
        (_, Some(_)) => Err("only worker keys have a pool".into()),
        (_, None) => Ok(None),
    }
}

pub async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let keys = state.store.list_keys().await?;
    Ok(Json(List { items: keys }).into_response())
}

pub async fn revoke(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    if !state.access.revoke(&name).await? {
        return Err(ApiError::not_found(format!("no key named {name:?}")));
    }
    state.keys.clear();
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    actor: Option<String>,
    action: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

pub async fn audit(
    State(state): State<AppState>,
    Query(q): Query<AuditParams>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 1000"));
    }
    // What this process has audited so far is in the answer (records are written in
    // batches, a moment after their requests).
    state.audit.flush().await;
    let page = state
        .store
        .list_audit(&AuditQuery {
            actor: q.actor.filter(|s| !s.is_empty()),
            action: q.action.filter(|s| !s.is_empty()),
            limit,
            cursor: q.cursor.filter(|s| !s.is_empty()),
        })
        .await?;
    Ok(Json(Paged {
        items: page.items,
        next: page.next,
    })
    .into_response())
}
