//! `GET|POST /api/Trigger[/{team}]`: ClouDO's trigger URL, for people and for Azure
//! Monitor action groups.
//!
//! - `?id=<schema>` runs that schema. A body is optional; if it is a common-schema alert,
//!   its context becomes the runbook's variables.
//! - Without `?id=`, the body must be a common-schema alert; routing decides what runs.
//!
//! The answer comes only after every execution (and job) is committed.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use cloudo_core::alert::azure;
use cloudo_core::{Execution, Schema, Status};
use serde::Deserialize;

use super::AppState;
use super::auth::Identity;
use super::body::optional_json;
use super::error::{ApiError, Path, Query};
use super::views::{
    ExecutionSummary, FirstExecution, LogLink, QueueAnswer, SchemaSummary, TriggerAnswer,
};
use crate::services::executions::{ExecutionEvent, TriggerError};
use crate::services::ingest::{Outcome, Request};
use tokio::sync::broadcast::Receiver;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TriggerQuery {
    id: Option<String>,
    /// `?dry_run=true`: the runbook simulates (`CLOUDO_DRY_RUN=1`); `false` overrides a
    /// schema's `dry_run` default.
    dry_run: Option<bool>,
    /// `?wait=<s>`: answer when the (first) execution ends, at most this long (60 s at most),
    /// with the execution itself as `GET /api/executions/{id}` shows it: `200` once it ended,
    /// `202` with its current state when the wait ran out. Needs an operator or admin key.
    wait: Option<u64>,
    /// ClouDO's per-call notification override: refused (400). Notification routes say where
    /// messages go (docs/notifications.md).
    slack_token: Option<String>,
    /// ClouDO's per-call notification override: refused (400).
    slack_channel: Option<String>,
    /// ClouDO's per-call notification override: refused (400).
    opsgenie_api_key: Option<String>,
}

impl TriggerQuery {
    /// ClouDO honoured these; answering them silently would page nobody, or the wrong team.
    /// Refused by name (never echoing their values: a token in a URL is a leaked token).
    pub fn refuse_overrides(&self) -> Result<(), ApiError> {
        let given: Vec<&str> = [
            ("slack_token", &self.slack_token),
            ("slack_channel", &self.slack_channel),
            ("opsgenie_api_key", &self.opsgenie_api_key),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.as_ref().map(|_| name))
        .collect();
        if given.is_empty() {
            return Ok(());
        }
        Err(ApiError::bad_request(format!(
            "query parameter(s) {} are ClouDO's notification overrides, which cloudo does not \
             honour: set where notifications go with notification routes (docs/notifications.md)",
            given.join(", ")
        )))
    }

    pub fn id(self) -> Option<String> {
        self.id
    }

    pub fn dry_run(&self) -> Option<bool> {
        self.dry_run
    }

    /// Routes that cannot wait for one execution (an Alertmanager group runs many) say so.
    pub fn refuse_wait(&self, route: &str) -> Result<(), ApiError> {
        match self.wait {
            Some(_) => Err(ApiError::bad_request(format!(
                "?wait= is for /api/Trigger, not {route}: a group of alerts runs many executions"
            ))),
            None => Ok(()),
        }
    }
}

pub async fn trigger(
    State(state): State<AppState>,
    Query(q): Query<TriggerQuery>,
    who: Option<Extension<Identity>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    handle(state, (None, who.map(|Extension(w)| w)), q, headers, body?).await
}

pub async fn trigger_team(
    State(state): State<AppState>,
    Path(team): Path<String>,
    Query(q): Query<TriggerQuery>,
    who: Option<Extension<Identity>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
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
    handle(
        state,
        (Some(team), who.map(|Extension(w)| w)),
        q,
        headers,
        body?,
    )
    .await
}

/// The schema `?id=` names: 404 if unknown.
pub fn named_schema(state: &AppState, id: Option<String>) -> Result<Option<Schema>, ApiError> {
    match id.filter(|id| !id.is_empty()) {
        None => Ok(None),
        Some(id) => state
            .ingest
            .catalog
            .get()
            .get(&id)
            .cloned()
            .map(Some)
            .ok_or_else(|| ApiError::not_found(format!("no schema with id {id:?} in the catalog"))),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => match v.to_str() {
            Ok(k) if !k.is_empty() && k.len() <= 256 => Ok(Some(k.to_string())),
            _ => Err(ApiError::bad_request(
                "Idempotency-Key must be 1-256 visible ASCII characters",
            )),
        },
    }
}

async fn handle(
    state: AppState,
    (team, who): (Option<String>, Option<Identity>),
    q: TriggerQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    q.refuse_overrides()?;
    // Before anything runs: ?wait= answers the execution itself, which this key may read.
    if q.wait.is_some_and(|w| w > 0)
        && !who
            .as_ref()
            .is_some_and(|w| w.role.allows(cloudo_core::auth::Permission::Read))
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "?wait= answers with the execution, which needs a key that may also read it \
             (operator or admin); this key may only deliver (leave out wait, and read the \
             execution with another key)",
        ));
    }
    let wait = q.wait.filter(|w| *w > 0);
    let body = optional_json(&headers, &body)?;
    let schema = named_schema(&state, q.id)?;
    if let Some(s) = &schema {
        super::scope::check_schema(who.as_ref(), s, "run")?;
    }
    let alert = match &body {
        Some((_, v)) if schema.is_none() || azure::looks_like_alert(v) => {
            Some(azure::parse(v).map_err(|e| ApiError::bad_request(e.to_string()))?)
        }
        _ => None,
    };
    let req = Request {
        initiator: if alert.is_some() { "alert" } else { "manual" }.to_string(),
        team,
        body: body.map(|(raw, _)| raw),
        idempotency_key: idempotency_key(&headers)?,
        scope: who.as_ref().map(|w| w.scope.clone()).unwrap_or_default(),
        dry_run: q.dry_run,
        requested_by: if alert.is_some() {
            "alert".to_string()
        } else {
            crate::api::control::decider(who.as_ref())
        },
    };
    // Subscribed before anything is recorded: every change after the record is heard, so
    // the wait needs no read of the execution first.
    let events = wait.map(|_| state.executions.subscribe());
    let outcome = match (alert, schema) {
        (Some(alert), schema) => state.ingest.alert(&alert, schema.as_ref(), req).await,
        (None, Some(schema)) => state.ingest.manual(&schema, req).await,
        (None, None) => {
            return Err(ApiError::bad_request(
                "missing query parameter 'id' (the schema id to run), and no alert body",
            ));
        }
    };
    let outcome = outcome.map_err(trigger_error)?;
    match (wait.zip(events), outcome.executions.first()) {
        (Some((secs, events)), Some(first)) => {
            waited(&state, who.as_ref(), first, (secs, events)).await
        }
        _ => Ok(answer(&state, &outcome)),
    }
}

/// The one-request path (`?wait=`): the execution once it ended (`200`), or as it is when
/// the wait runs out (`202`).
async fn waited(
    state: &AppState,
    who: Option<&Identity>,
    first: &Execution,
    (secs, events): (u64, Receiver<ExecutionEvent>),
) -> Result<Response, ApiError> {
    super::scope::check_execution(state, who, first, "read")?;
    let max = std::time::Duration::from_secs(secs.min(super::executions::MAX_WAIT_SECS));
    let e = state
        .executions
        .wait_terminal_since(events, first, max)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no execution {}", first.exec_id)))?;
    let code = if e.status.is_terminal() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let mut res = super::executions::answer(state, e).await?;
    *res.status_mut() = code;
    Ok(res)
}

pub fn trigger_error(e: TriggerError) -> ApiError {
    match e {
        TriggerError::Store(e) => e.into(),
        TriggerError::Queue(detail) => ApiError::unavailable(detail),
    }
}

/// One execution as the answers list it.
pub fn summary(state: &AppState, e: &Execution) -> ExecutionSummary {
    ExecutionSummary {
        exec_id: e.exec_id.clone(),
        schema_id: e.schema_id.clone(),
        status: e.status,
        reason: e.error.clone(),
        url: state.execution_url(&e.exec_id),
    }
}

/// 202 if something new was accepted; 200 for duplicates, skips and routed alerts.
pub fn status_code(o: &Outcome) -> StatusCode {
    if !o.duplicate
        && o.executions
            .iter()
            .any(|e| matches!(e.status, Status::Accepted | Status::Pending))
    {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    }
}

/// ClouDO's answer shape (`schema`, `response`, `log`) for the first execution, plus ours
/// (`exec_id`, `status`, `schema_id`, `url`, `reason`, `duplicate`, `executions`).
fn answer(state: &AppState, o: &Outcome) -> Response {
    let first = o.executions.first().map(|e| FirstExecution {
        exec_id: e.exec_id.clone(),
        status: e.status,
        schema_id: e.schema_id.clone(),
        url: state.execution_url(&e.exec_id),
        reason: e.error.clone(),
        schema: state
            .ingest
            .catalog
            .get()
            .get(&e.schema_id)
            .map(|s| SchemaSummary {
                id: s.id.clone(),
                name: s.name.clone(),
                description: s.description.clone(),
                oncall: s.oncall,
                runbook: s.runbook.clone(),
                run_args: s.run_args.clone(),
                worker: s.pool.clone(),
            }),
        response: QueueAnswer {
            status: e.status,
            queue: e.pool.clone(),
        },
        log: LogLink {
            partition_key: e.partition_key.clone(),
            exec_id: e.exec_id.clone(),
        },
    });
    let body = TriggerAnswer {
        duplicate: o.duplicate,
        executions: o.executions.iter().map(|e| summary(state, e)).collect(),
        first,
    };
    (status_code(o), Json(body)).into_response()
}
