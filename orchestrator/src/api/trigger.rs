//! `GET|POST /api/Trigger?id=<schema id>` and `/api/Trigger/{team}`: ClouDO's trigger URL.
//!
//! The answer comes only after the execution and its job are both committed: a 202 means
//! the run will happen (or be recorded as lost/error, never forgotten).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cloudo_core::{Execution, Schema, Status};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::error::{ApiError, Path, Query};
use crate::executions::{TriggerError, TriggerRequest};

#[derive(Debug, Deserialize)]
pub struct TriggerQuery {
    id: Option<String>,
}

pub async fn trigger(
    State(state): State<AppState>,
    Query(q): Query<TriggerQuery>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    handle(state, None, q, body?).await
}

pub async fn trigger_team(
    State(state): State<AppState>,
    Path(team): Path<String>,
    Query(q): Query<TriggerQuery>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    if team.is_empty()
        || team.len() > 64
        || !team
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::bad_request(
            "team must be 1-64 letters, digits, '-' or '_'",
        ));
    }
    handle(state, Some(team), q, body?).await
}

/// The body, if any, must be JSON; it is kept exactly as received.
fn check_body(body: &Bytes) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("request body is not UTF-8 text"))?;
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        return Err(ApiError::bad_request(format!(
            "request body is not valid JSON: {e}"
        )));
    }
    Ok(Some(text.to_string()))
}

async fn handle(
    state: AppState,
    team: Option<String>,
    q: TriggerQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = check_body(&body)?;
    let id = q.id.filter(|id| !id.is_empty()).ok_or_else(|| {
        ApiError::bad_request("missing query parameter 'id' (the schema id to run)")
    })?;
    let schema = state
        .catalog
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no schema with id {id:?} in the catalog")))?
        .clone();
    let req = TriggerRequest {
        initiator: "manual".to_string(),
        team,
        body,
        ..TriggerRequest::default()
    };
    if !schema.enabled {
        let e = state
            .executions
            .record_terminal(&schema, req, Status::Skipped, "schema is disabled")
            .await?;
        return Ok(answer(&state, &schema, &e, StatusCode::OK));
    }
    if schema.require_approval {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "approval_unavailable",
            format!(
                "schema {id:?} requires approval, and this version has no approval gate yet; \
                 nothing was run"
            ),
        ));
    }
    match state.executions.trigger(&schema, req).await {
        Ok(e) => Ok(answer(&state, &schema, &e, StatusCode::ACCEPTED)),
        Err(TriggerError::Store(e)) => Err(e.into()),
        Err(TriggerError::Queue(detail)) => Err(ApiError::unavailable(detail)),
    }
}

/// ClouDO's answer shape (`schema`, `response`, `log`) plus ours (`exec_id`, `status`, ...).
fn answer(state: &AppState, schema: &Schema, e: &Execution, code: StatusCode) -> Response {
    let body = json!({
        "exec_id": e.exec_id,
        "status": e.status,
        "schema_id": e.schema_id,
        "url": state.execution_url(&e.exec_id),
        "reason": e.error,
        "schema": {
            "id": schema.id,
            "name": schema.name,
            "description": schema.description,
            "oncall": schema.oncall,
            "runbook": schema.runbook,
            "run_args": schema.run_args,
            "worker": schema.worker,
        },
        "response": {"status": e.status, "queue": e.worker},
        "log": {"partitionKey": e.partition_key, "exec_id": e.exec_id},
    });
    (code, Json(body)).into_response()
}
