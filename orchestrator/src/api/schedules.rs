//! Schedules over the API: `GET /api/schedules` (every schedule, the schemas' own
//! included, with its next and last run), `GET /api/schedules/{id}`, and, for admins,
//! `PUT /api/schedules/{id}` (add or replace one entry) and `DELETE /api/schedules/{id}`.
//! A schema's own schedule (`schedule` in the catalog) changes with the catalog: 409 here.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cloudo_core::ExecId;
use cloudo_core::schedule::{Schedule, ScheduleEntry};
use cloudo_core::time;
use serde::Serialize;

use super::AppState;
use super::body::required_json;
use super::error::{ApiError, Path};
use crate::services::scheduler;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LastRun {
    /// The tick it ran for.
    pub tick: String,
    pub exec_id: Option<ExecId>,
    pub url: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleView {
    #[serde(flatten)]
    pub entry: ScheduleEntry,
    /// `schema` (the catalog's `schedule`) or `schedules` (the document).
    pub source: &'static str,
    pub next_run: Option<String>,
    pub last_run: Option<LastRun>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleList<'a> {
    pub schedules: Vec<ScheduleView>,
    /// The schedules file given at start-up: it replaces API changes at each start.
    pub file: Option<&'a str>,
}

async fn view(state: &AppState, s: Schedule) -> Result<ScheduleView, ApiError> {
    let ticks = state.store.schedule_ticks(&s.entry.id).await?;
    let now = time::now();
    let next_run = s
        .entry
        .enabled
        .then(|| s.next_after(now))
        .flatten()
        .map(time::rfc3339);
    let last_run = ticks.and_then(|t| {
        let tick = t
            .last_tick
            .filter(|_| t.last_exec.is_some() || !t.recorded)?;
        Some(LastRun {
            tick: time::rfc3339(tick),
            url: t.last_exec.as_ref().map(|id| state.execution_url(id)),
            exec_id: t.last_exec,
        })
    });
    Ok(ScheduleView {
        source: if s.from_schema { "schema" } else { "schedules" },
        entry: s.entry,
        next_run,
        last_run,
    })
}

fn find(state: &AppState, id: &str) -> Option<Schedule> {
    scheduler::all(&state.schedules, &state.ingest.catalog)
        .into_iter()
        .find(|s| s.entry.id == id)
}

pub async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut schedules = Vec::new();
    for s in scheduler::all(&state.schedules, &state.ingest.catalog) {
        schedules.push(view(&state, s).await?);
    }
    Ok(Json(ScheduleList {
        schedules,
        file: state.schedules_file.as_deref(),
    })
    .into_response())
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s = find(&state, &id).ok_or_else(|| no_schedule(&id))?;
    Ok(Json(view(&state, s).await?).into_response())
}

fn no_schedule(id: &str) -> ApiError {
    ApiError::not_found(format!("no schedule with id {id:?}"))
}

fn owned_by_schema(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "defined_by_schema",
        format!("schedule {id:?} is the schedule of schema {id:?}: change it in the catalog"),
    )
}

pub async fn put(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let (_, mut value) = required_json(&headers, &body, "a schedule")?;
    let Some(obj) = value.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the body must be a schedule object: {schema, cron, tz, run_args, enabled, catch_up}",
        ));
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
    let entry: ScheduleEntry =
        serde_json::from_value(value).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let catalog = state.ingest.catalog.get();
    if catalog.get(&id).is_some_and(|s| s.schedule.is_some()) {
        return Err(owned_by_schema(&id));
    }
    if catalog.get(&entry.schema).is_none() {
        return Err(ApiError::bad_request(format!(
            "schema {:?} is not in the catalog",
            entry.schema
        )));
    }
    let checked = Schedule::new(entry.clone(), false).map_err(ApiError::bad_request)?;
    let set = state
        .documents
        .edit_schedules(move |d| d.upsert(entry.clone()))
        .await?;
    state.schedules.set(set);
    Ok(Json(view(&state, checked).await?).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if state
        .ingest
        .catalog
        .get()
        .get(&id)
        .is_some_and(|s| s.schedule.is_some())
    {
        return Err(owned_by_schema(&id));
    }
    if !state.schedules.get().schedules.iter().any(|s| s.id == id) {
        return Err(no_schedule(&id));
    }
    let gone = id.clone();
    let set = state
        .documents
        .edit_schedules(move |d| {
            d.remove(&gone);
        })
        .await?;
    state.schedules.set(set);
    Ok(StatusCode::NO_CONTENT.into_response())
}
