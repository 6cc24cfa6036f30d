//! What a standalone worker reports: `POST /api/worker/executions/{id}/start`,
//! `/heartbeat` and `/finish` (and fetches: `/payload`), and `POST /api/worker/alive` every
//! few seconds; only the worker and delivery that started a run may report on it (409
//! otherwise); and
//! `GET /api/workers`, what the workers last said. A `worker` key serves one pool and may report only on
//! executions of that pool; the orchestrator stays the one writer of execution state (the
//! same checked transitions as the in-process workers).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use cloudo_core::{ExecId, StoreError, time};
use cloudo_worker::protocol::{
    AliveRequest, FinishAnswer, FinishRequest, HeartbeatAnswer, HeartbeatRequest, PayloadAnswer,
    RunRef, StartAnswer,
};

use super::AppState;
use super::auth::Identity;
use super::error::{ApiError, JsonBody, Path};
use super::executions::parse_id;
use super::views::{PoolView, WorkerView, Workers};
use crate::services::executions::Refusal;

/// The execution, if the caller's pool is the execution's.
async fn own(state: &AppState, id: &ExecId, who: &Identity) -> Result<(), ApiError> {
    let e = state
        .store
        .get_execution(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no execution {id}")))?;
    match &who.pool {
        Some(pool) if *pool == e.pool => Ok(()),
        // Authentication off (--dev-no-auth): every caller is an admin, standalone workers too.
        None if state.dev_no_auth => Ok(()),
        pool => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this worker key serves pool {:?}; execution {id} belongs to pool {:?}",
                pool.as_deref().unwrap_or(""),
                e.pool
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

/// A report refused: 409 when another worker or delivery runs the execution.
fn refused(r: Refusal) -> ApiError {
    match r {
        Refusal::NotFound(id) => ApiError::not_found(format!("no execution {id}")),
        Refusal::NotOwner(why) => ApiError::new(StatusCode::CONFLICT, "not_the_runner", why),
        Refusal::Store(e) => conflict(e),
    }
}

pub async fn start(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(raw): Path<String>,
    JsonBody(run): JsonBody<RunRef>,
) -> Result<Json<StartAnswer>, ApiError> {
    let id = report_on(&state, &raw, &who, &run).await?;
    Ok(Json(match state.executions.start_run(&id, &run).await? {
        Ok(log_offset) => StartAnswer {
            run: true,
            reason: None,
            log_offset,
        },
        // Already ran, runs elsewhere, cancelled, lost: the worker drops the job.
        Err(why) => StartAnswer {
            run: false,
            reason: Some(why),
            log_offset: 0,
        },
    }))
}

/// What every report on a run checks first: the id, the run reference, and that the
/// caller's pool is the execution's.
async fn report_on(
    state: &AppState,
    raw: &str,
    who: &Identity,
    run: &RunRef,
) -> Result<ExecId, ApiError> {
    let id = parse_id(raw)?;
    check_run(run)?;
    own(state, &id, who).await?;
    Ok(id)
}

/// Worker ids and deliveries are short printable strings.
fn check_run(run: &RunRef) -> Result<(), ApiError> {
    let ok = |s: &str| !s.is_empty() && s.len() <= 200 && s.chars().all(|c| c.is_ascii_graphic());
    if ok(&run.worker_id) && ok(&run.delivery) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "worker_id and delivery must be 1-200 visible ASCII characters",
        ))
    }
}

pub async fn heartbeat(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<HeartbeatRequest>,
) -> Result<Json<HeartbeatAnswer>, ApiError> {
    let id = report_on(&state, &raw, &who, &body.run).await?;
    let answer = state
        .executions
        .heartbeat_run(&id, &body.run, body.log.as_ref())
        .await
        .map_err(refused)?;
    Ok(Json(answer))
}

pub async fn finish(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(raw): Path<String>,
    JsonBody(b): JsonBody<FinishRequest>,
) -> Result<Json<FinishAnswer>, ApiError> {
    let id = report_on(&state, &raw, &who, &b.run).await?;
    if !b.status.is_terminal() {
        return Err(ApiError::bad_request("status must be a final one"));
    }
    let (run, change, log) = b.into_parts();
    let e = state
        .executions
        .finish_run(&id, &run, change, log.as_ref())
        .await
        .map_err(refused)?;
    Ok(Json(FinishAnswer {
        exec_id: e.exec_id,
        status: e.status,
    }))
}

/// The request body of a running execution, for its worker (a payload too large to travel
/// in the job message).
pub async fn payload(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(raw): Path<String>,
    JsonBody(run): JsonBody<RunRef>,
) -> Result<Json<PayloadAnswer>, ApiError> {
    let id = report_on(&state, &raw, &who, &run).await?;
    let payload = state
        .executions
        .payload_for(&id, &run)
        .await
        .map_err(refused)?;
    Ok(Json(PayloadAnswer { payload }))
}

/// A worker is shown for this long after its last report, and counted alive for a third
/// of it.
const SHOWN_FOR: chrono::Duration = chrono::Duration::minutes(5);
const ALIVE_FOR: chrono::Duration = chrono::Duration::seconds(30);

pub async fn alive(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    JsonBody(b): JsonBody<AliveRequest>,
) -> Result<Response, ApiError> {
    if b.id.is_empty() || b.id.len() > 200 || b.version.len() > 64 || b.running.len() > 4096 {
        return Err(ApiError::bad_request(
            "id (1-200 characters), version (at most 64) and running (at most 4096) are required",
        ));
    }
    if let Some(pool) = &who.pool
        && b.pools.iter().any(|p| p != pool)
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this worker key serves pool {pool:?} only"),
        ));
    }
    // The orchestrator's clock, not the worker's.
    let info = b.into_info(time::now());
    state.executions.worker_alive(&info).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Pools (workers, capacity, running) and every worker seen in the last five minutes.
pub async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let now = time::now();
    let workers = state.store.list_workers(now - SHOWN_FOR).await?;
    let mut pools = std::collections::BTreeMap::<String, (u32, u32, usize)>::new();
    let mut shown = Vec::with_capacity(workers.len());
    for w in workers {
        let alive = w.last_seen > now - ALIVE_FOR;
        if alive {
            for p in &w.pools {
                let e = pools.entry(p.clone()).or_default();
                e.0 += 1;
                e.1 += w.capacity;
                e.2 += w.running.len();
            }
        }
        shown.push(WorkerView {
            started_at: time::rfc3339(w.started_at),
            last_seen: time::rfc3339(w.last_seen),
            id: w.id,
            pools: w.pools,
            version: w.version,
            capacity: w.capacity,
            running: w.running,
            alive,
        });
    }
    let pools: Vec<_> = pools
        .into_iter()
        .map(|(name, (workers, capacity, running))| PoolView {
            pool: name,
            workers,
            capacity,
            running,
        })
        .collect();
    Ok(Json(Workers {
        pools,
        workers: shown,
    })
    .into_response())
}
