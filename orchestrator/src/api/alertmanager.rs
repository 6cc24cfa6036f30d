//! `POST /api/webhooks/alertmanager`: Prometheus Alertmanager's webhook (v4). One
//! execution set per alert of the group; `?id=` may name the schema for all of them.
//! Alertmanager retries on 5xx only, and redeliveries are deduplicated (fingerprint +
//! status + startsAt), so a 2xx is safe to give once everything is recorded. A group is
//! recorded in one step, its body stored once; at most `--max-alerts` per request (413).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cloudo_core::alert::alertmanager;

use super::AppState;
use super::body::required_json;
use super::error::{ApiError, Query};
use super::trigger::{TriggerQuery, named_schema, status_code, summary, trigger_error};
use super::views::{AlertAnswer, AlertmanagerAnswer};
use crate::services::ingest::Request;

pub async fn webhook(
    State(state): State<AppState>,
    Query(q): Query<TriggerQuery>,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
    who: Option<axum::Extension<super::auth::Identity>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let who = who.map(|axum::Extension(w)| w);
    q.refuse_overrides()?;
    q.refuse_wait("/api/webhooks/alertmanager")?;
    let (raw, value) = required_json(&headers, &body?, "an Alertmanager webhook (v4) payload")?;
    let count = value["alerts"].as_array().map_or(0, Vec::len);
    if count > state.max_alerts {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_alerts",
            format!(
                "{count} alerts in one request; at most {} are accepted (--max-alerts): \
                 lower max_alerts in the Alertmanager webhook config or split the group",
                state.max_alerts
            ),
        ));
    }
    let alerts = alertmanager::parse(&value).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let dry_run = q.dry_run();
    let schema = named_schema(&state, q.id())?;
    if let Some(s) = &schema {
        super::scope::check_schema(who.as_ref(), s, "run")?;
    }
    // The ingest rate counts alerts: this request passed with one token, the rest are owed.
    state
        .ingest_limit
        .charge(client.ip(), alerts.len().saturating_sub(1));
    let req = Request {
        initiator: "alert".into(),
        requested_by: "alert".into(),
        scope: who.map(|w| w.scope).unwrap_or_default(),
        body: Some(raw),
        dry_run,
        ..Request::default()
    };
    let outcomes = state
        .ingest
        .alerts(&alerts, schema.as_ref(), req)
        .await
        .map_err(trigger_error)?;
    let mut code = StatusCode::OK;
    let mut answers = Vec::with_capacity(alerts.len());
    for (alert, outcome) in alerts.iter().zip(&outcomes) {
        if status_code(outcome) == StatusCode::ACCEPTED {
            code = StatusCode::ACCEPTED;
        }
        answers.push(AlertAnswer {
            fingerprint: alert.id.clone(),
            alertname: alert.rule.clone(),
            condition: alert.condition,
            duplicate: outcome.duplicate,
            executions: outcome
                .executions
                .iter()
                .map(|e| summary(&state, e))
                .collect(),
        });
    }
    Ok((code, Json(AlertmanagerAnswer { alerts: answers })).into_response())
}
