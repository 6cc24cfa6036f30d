//! What a standalone worker reports: `POST /api/worker/executions/{id}/start`,
//! `/heartbeat` and `/finish`. A `worker` key serves one pool and may report only on
//! executions of that pool; the orchestrator stays the one writer of execution state (the
//! same checked transitions as the in-process workers).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use cloudo_core::{ExecId, Status, StatusChange, StoreError, time};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::auth::Identity;
use super::error::{ApiError, Path};
use super::executions::parse_id;

/// The execution, if the caller's pool is the execution's.
async fn own(state: &AppState, id: &ExecId, who: &Identity) -> Result<(), ApiError> {
    let e = state
        .executions
        .store()
        .get_execution(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no execution {id}")))?;
    match &who.pool {
        Some(pool) if *pool == e.worker => Ok(()),
        pool => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this worker key serves pool {:?}; execution {id} belongs to pool {:?}",
                pool.as_deref().unwrap_or(""),
                e.worker
            ),
        )),
    }
}

fn conflict(e: StoreError) -> ApiError {
    match e {
        StoreError::Illegal(i) => ApiError::new(StatusCode::CONFLICT, "conflict", i.to_string()),
        other => other.into(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    worker_id: String,
}

pub async fn start(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(raw): Path<String>,
    Json(body): Json<StartBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&raw)?;
    own(&state, &id, &who).await?;
    let mut change = StatusChange::to(Status::Running);
    change.worker_id = Some(body.worker_id);
    match state.executions.change(&id, change).await {
        Ok(_) => Ok(Json(json!({"run": true})).into_response()),
        // Already ran, cancelled, lost: the worker drops the job.
        Err(StoreError::Illegal(i)) => Ok(Json(
            json!({"run": false, "reason": format!("execution is {}", i.from)}),
        )
        .into_response()),
        Err(e) => Err(e.into()),
    }
}

pub async fn heartbeat(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&raw)?;
    own(&state, &id, &who).await?;
    let running = state.executions.store().heartbeat(&id, time::now()).await?;
    Ok(Json(json!({"running": running})).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishBody {
    status: Status,
    reason: Option<String>,
    exit_code: Option<i32>,
    signal: Option<i32>,
    output: Option<String>,
    #[serde(default)]
    output_truncated: bool,
    runbook_commit: Option<String>,
    sandbox: Option<String>,
    #[serde(default)]
    oom: bool,
}

pub async fn finish(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(raw): Path<String>,
    Json(b): Json<FinishBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&raw)?;
    own(&state, &id, &who).await?;
    if !b.status.is_terminal() {
        return Err(ApiError::bad_request("status must be a final one"));
    }
    let mut change = StatusChange::to(b.status);
    change.reason = b.reason;
    change.exit_code = b.exit_code;
    change.signal = b.signal;
    change.output = b.output;
    change.output_truncated = b.output_truncated;
    change.runbook_commit = b.runbook_commit;
    change.sandbox = b.sandbox;
    change.oom = b.oom;
    let e = state
        .executions
        .change(&id, change)
        .await
        .map_err(conflict)?;
    Ok(Json(json!({"exec_id": e.exec_id, "status": e.status})).into_response())
}
