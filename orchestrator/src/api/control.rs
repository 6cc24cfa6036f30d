//! `POST /api/executions/{exec_id}/cancel`: what people decide about an execution.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::AppState;
use super::auth::Identity;
use super::error::{ApiError, Path};
use super::executions::{answer, parse_id};
use crate::services::executions::CancelError;

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
    let by = decider(who.as_ref().map(|Extension(i)| i));
    let e = state.executions.cancel(&id, &by).await?;
    answer(&state, e).await
}
