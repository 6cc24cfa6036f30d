//! `POST /api/webhooks/alertmanager`: Prometheus Alertmanager's webhook (v4). One
//! execution set per alert of the group; `?id=` may name the schema for all of them.
//! Alertmanager retries on 5xx only, and redeliveries are deduplicated (fingerprint +
//! status + startsAt), so a 2xx is safe to give once everything is recorded.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cloudo_core::alert::alertmanager;
use serde_json::json;

use super::AppState;
use super::body::required_json;
use super::error::{ApiError, Query};
use super::trigger::{TriggerQuery, named_schema, status_code, summary, trigger_error};
use crate::ingest::Request;

pub async fn webhook(
    State(state): State<AppState>,
    Query(q): Query<TriggerQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (raw, value) = required_json(&headers, &body?, "an Alertmanager webhook (v4) payload")?;
    let alerts = alertmanager::parse(&value).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let schema = named_schema(&state, q.id())?;
    let mut answers = Vec::with_capacity(alerts.len());
    let mut code = StatusCode::OK;
    for alert in &alerts {
        let req = Request {
            initiator: "alert".into(),
            body: Some(raw.clone()),
            ..Request::default()
        };
        let outcome = state
            .ingest
            .alert(alert, schema.as_ref(), req)
            .await
            .map_err(trigger_error)?;
        if status_code(&outcome) == StatusCode::ACCEPTED {
            code = StatusCode::ACCEPTED;
        }
        answers.push(json!({
            "fingerprint": alert.id,
            "alertname": alert.rule,
            "condition": alert.condition,
            "duplicate": outcome.duplicate,
            "executions": outcome.executions.iter().map(|e| summary(&state, e)).collect::<Vec<_>>(),
        }));
    }
    Ok((code, Json(json!({"alerts": answers}))).into_response())
}
