//! Routing rules over the API: `GET /api/routes`, `PUT /api/routes` (JSON or YAML; replaces
//! all rules, persisted in the store) and `POST /api/routes/test` (which rules and runbooks
//! an alert would get, and its variables, without recording or running anything).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use cloudo_core::alert::{Alert, alertmanager, azure};
use cloudo_core::routing::RoutingRules;
use serde::Deserialize;

use super::AppState;
use super::body::required_json;
use super::error::{ApiError, Query};
use super::views::{MatchedRule, RouteTest, RouteTestAlert, RoutingRulesView, SchemaChoice};
use crate::services::ingest::declines;

fn show(state: &AppState, routes: &RoutingRules) -> Response {
    Json(RoutingRulesView {
        rules: &routes.rules,
        file: state.routes_file.as_deref(),
    })
    .into_response()
}

pub async fn get(State(state): State<AppState>) -> Response {
    show(&state, &state.ingest.routes())
}

/// A JSON or YAML document body as text.
pub(super) fn document<'a>(headers: &HeaderMap, body: &'a Bytes) -> Result<&'a str, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !(ct.is_empty() || ct.contains("json") || ct.contains("yaml")) {
        return Err(ApiError::bad_request(
            "content-type must be application/json or application/yaml",
        ));
    }
    std::str::from_utf8(body).map_err(|_| ApiError::bad_request("request body is not UTF-8 text"))
}

pub async fn put(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let text = document(&headers, &body)?;
    let rules: RoutingRules = state
        .documents
        .replace(text, &state.ingest.catalog.get())
        .await?;
    state.ingest.set_routes(rules);
    Ok(show(&state, &state.ingest.routes()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TestQuery {
    /// `azure` (default) or `alertmanager`.
    source: Option<String>,
}

pub async fn test(
    State(state): State<AppState>,
    Query(q): Query<TestQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (_, value) = required_json(&headers, &body?, "an alert payload")?;
    let alerts: Vec<Alert> = match q.source.as_deref().unwrap_or("azure") {
        "azure" => vec![azure::parse(&value).map_err(|e| ApiError::bad_request(e.to_string()))?],
        "alertmanager" => {
            alertmanager::parse(&value).map_err(|e| ApiError::bad_request(e.to_string()))?
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "source must be azure or alertmanager, got {other:?}"
            )));
        }
    };
    let routes = state.ingest.routes();
    let answers: Vec<_> = alerts
        .iter()
        .map(|a| {
            let (chosen, how) = state.ingest.choose(a, None);
            RouteTestAlert {
                alert_rule: a.rule.clone(),
                condition: a.condition,
                severity: a.severity.map(|s| s.to_string()),
                dedup_key: a.dedup_key.clone(),
                matched_rules: routes
                    .matching(a)
                    .iter()
                    .map(|(i, r)| MatchedRule {
                        index: *i,
                        name: r.name.clone(),
                    })
                    .collect(),
                schemas: chosen
                    .iter()
                    .map(|s| SchemaChoice {
                        id: s.id.clone(),
                        declined: declines(s, a),
                    })
                    .collect(),
                chosen_by: (!chosen.is_empty()).then_some(how),
                env: a.env(state.ingest.lowercase_resource),
            }
        })
        .collect();
    Ok(Json(RouteTest { alerts: answers }).into_response())
}
