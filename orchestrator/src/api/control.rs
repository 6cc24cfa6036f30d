//! What people decide about an execution: `POST /api/executions/{exec_id}/cancel`,
//! `/approve` and `/reject` (with an optional `{"comment": "..."}`).

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cloudo_core::approval::{Decision, MAX_COMMENT_BYTES, Verdict};
use cloudo_core::time;
use serde::Deserialize;

use super::AppState;
use super::auth::Identity;
use super::body::optional_json;
use super::error::{ApiError, Path};
use super::executions::{answer, parse_id};
use crate::services::executions::{CancelError, DecideError};

impl From<DecideError> for ApiError {
    fn from(e: DecideError) -> Self {
        match e {
            DecideError::NotFound(_) => ApiError::not_found(e.to_string()),
            DecideError::Refused(why) => {
                ApiError::new(StatusCode::CONFLICT, "decision_refused", why)
            }
            DecideError::Store(s) => s.into(),
        }
    }
}

/// The body of a decision: all optional.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    comment: Option<String>,
}

/// A decision's comment from an optional JSON body, checked.
pub fn comment_of(headers: &HeaderMap, body: &Bytes) -> Result<Option<String>, ApiError> {
    let Some((_, value)) = optional_json(headers, body)? else {
        return Ok(None);
    };
    let b: DecisionBody = serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("invalid decision body: {e}")))?;
    let comment = b
        .comment
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    if comment
        .as_ref()
        .is_some_and(|c| c.len() > MAX_COMMENT_BYTES)
    {
        return Err(ApiError::bad_request(format!(
            "comment is longer than {MAX_COMMENT_BYTES} bytes"
        )));
    }
    Ok(comment)
}

async fn decide(
    state: AppState,
    raw: String,
    who: Option<Extension<Identity>>,
    (headers, body): (HeaderMap, Bytes),
    verdict: Verdict,
) -> Result<Response, ApiError> {
    let id = parse_id(&raw)?;
    let who = who.as_ref().map(|Extension(i)| i);
    let current = super::executions::execution(&state, &id).await?;
    super::scope::check_execution(&state, who, &current, verdict.as_str())?;
    let decision = Decision {
        by: decider(who),
        via: "api".into(),
        decision: verdict,
        at: time::now(),
        comment: comment_of(&headers, &body)?,
    };
    let mut e = state.executions.decide(&id, decision).await?;
    super::executions::with_links(&state, &mut e);
    answer(&state, e).await
}

pub async fn approve(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    who: Option<Extension<Identity>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    decide(state, raw, who, (headers, body?), Verdict::Approve).await
}

pub async fn reject(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    who: Option<Extension<Identity>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    decide(state, raw, who, (headers, body?), Verdict::Reject).await
}

impl From<CancelError> for ApiError {
    fn from(e: CancelError) -> Self {
        match e {
            CancelError::NotFound(_) => ApiError::not_found(e.to_string()),
            CancelError::Ended { .. } => {
                ApiError::new(StatusCode::CONFLICT, "already_ended", e.to_string())
            }
            CancelError::Store(s) => s.into(),
        }
    }
}

/// The name decisions are recorded under: the key's name (`anonymous` without auth).
pub fn decider(who: Option<&Identity>) -> String {
    who.map_or_else(|| "anonymous".to_string(), |i| i.name.clone())
}

pub async fn cancel(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    who: Option<Extension<Identity>>,
) -> Result<Response, ApiError> {
    let id = parse_id(&raw)?;
    let who = who.as_ref().map(|Extension(i)| i);
    let current = super::executions::execution(&state, &id).await?;
    super::scope::check_execution(&state, who, &current, "cancel")?;
    let e = state.executions.cancel(&id, &decider(who)).await?;
    answer(&state, e).await
}
