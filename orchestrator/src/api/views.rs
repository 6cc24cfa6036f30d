//! What the API answers, as types: every JSON answer of a handler is one of these (or a
//! core type that serializes itself), never a document assembled on the spot, so the
//! answers are written down in one place (and an OpenAPI document can be derived from
//! them).

use std::collections::BTreeMap;

use cloudo_core::auth::ApiKey;
use cloudo_core::notify::Delivery;
use cloudo_core::notify::{NotifyRule, Team};
use cloudo_core::routing::Rule;
use cloudo_core::{ExecId, Execution, Status};
use cloudo_worker::runbooks::{RunbookFile, SourceStatus};
use serde::Serialize;
use utoipa::ToSchema;

/// `{"error": {"code", "message"}}`: every 4xx and 5xx.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail<'a> {
    pub code: &'a str,
    pub message: &'a str,
}

/// A whole list.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    pub items: Vec<T>,
}

/// One page of a list, newest first; `next` is the cursor of the next page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// `GET /api/healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub time: String,
    pub service: &'static str,
    pub version: &'static str,
}

/// `GET /api/readyz`: states only (reasons go to the log).
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    pub status: &'static str,
    pub checks: ReadyChecks,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyChecks {
    pub store: Check,
    pub queue: Check,
    pub runbooks: RunbooksCheck,
    /// Catalog entries whose runbook does not exist (informational: it does not make the
    /// service unready; the log names them).
    pub catalog: CatalogCheck,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogCheck {
    pub ok: bool,
    pub missing_runbooks: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    pub ok: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunbooksCheck {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_fetch_failed: Option<bool>,
}

/// `POST /api/keys`: the stored key and, this once, its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey<'a> {
    #[serde(flatten)]
    pub record: &'a ApiKey,
    pub key: &'a str,
}

/// `GET /api/runbooks`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Runbooks {
    pub commit: Option<String>,
    pub source: SourceStatus,
    pub runbooks: Vec<RunbookFile>,
}

/// `GET /api/runbooks/{path}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunbookContent {
    pub path: String,
    pub commit: Option<String>,
    pub content: String,
}

/// `POST /api/runbooks/refresh`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Refreshed {
    pub commit: Option<String>,
}

/// `GET|PUT /api/routes`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutingRulesView<'a> {
    pub rules: &'a [Rule],
    /// The file the rules come from, when one is given (then they cannot be replaced).
    pub file: Option<&'a str>,
}

/// `GET|PUT /api/notify/routes`.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotifyRoutesView<'a> {
    pub teams: &'a BTreeMap<String, Team>,
    pub rules: &'a [NotifyRule],
    pub file: Option<String>,
}

/// `POST /api/routes/test`: what each alert would do.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouteTest {
    pub alerts: Vec<RouteTestAlert>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RouteTestAlert {
    pub alert_rule: String,
    pub condition: Option<cloudo_core::alert::Condition>,
    pub severity: Option<String>,
    pub dedup_key: Option<String>,
    pub matched_rules: Vec<MatchedRule>,
    pub chosen_by: Option<String>,
    pub schemas: Vec<SchemaChoice>,
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MatchedRule {
    pub index: usize,
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SchemaChoice {
    pub id: String,
    pub declined: Option<String>,
}

/// One execution as trigger and webhook answers list it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExecutionSummary {
    pub exec_id: ExecId,
    pub schema_id: String,
    pub status: Status,
    pub reason: Option<String>,
    pub url: String,
}

/// `/api/Trigger`: the executions of the delivery and, flattened, ClouDO's fields about the
/// first one.
#[derive(Debug, Serialize, ToSchema)]
pub struct TriggerAnswer {
    pub duplicate: bool,
    pub executions: Vec<ExecutionSummary>,
    #[serde(flatten)]
    pub first: Option<FirstExecution>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FirstExecution {
    pub exec_id: ExecId,
    pub status: Status,
    pub schema_id: String,
    pub url: String,
    pub reason: Option<String>,
    pub schema: Option<SchemaSummary>,
    pub response: QueueAnswer,
    pub log: LogLink,
}

/// The schema as ClouDO's trigger answer showed it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SchemaSummary {
    pub id: String,
    pub name: String,
    pub description: String,
    pub oncall: bool,
    pub runbook: String,
    pub run_args: String,
    pub worker: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueAnswer {
    pub status: Status,
    pub queue: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogLink {
    #[serde(rename = "partitionKey")]
    pub partition_key: String,
    pub exec_id: ExecId,
}

/// `POST /api/webhooks/alertmanager`: one answer per alert of the group.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertmanagerAnswer {
    pub alerts: Vec<AlertAnswer>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertAnswer {
    pub fingerprint: String,
    pub alertname: String,
    pub condition: Option<cloudo_core::alert::Condition>,
    pub duplicate: bool,
    pub executions: Vec<ExecutionSummary>,
}

/// `GET /api/workers`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Workers {
    pub pools: Vec<PoolView>,
    pub workers: Vec<WorkerView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PoolView {
    pub pool: String,
    pub workers: u32,
    pub capacity: u32,
    pub running: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkerView {
    pub id: String,
    pub pools: Vec<String>,
    pub version: String,
    pub capacity: u32,
    pub running: Vec<ExecId>,
    pub started_at: String,
    pub last_seen: String,
    pub alive: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExecutionView<'a> {
    #[serde(flatten)]
    pub execution: &'a Execution,
    pub url: String,
    /// Its verification run's link, once there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_url: Option<String>,
    /// What was sent about it (the one-execution answer only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Vec<NotificationView>>,
}

/// `GET /api/executions/{id}/output`: a range of the execution's log.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutputView {
    pub exec_id: ExecId,
    pub status: Status,
    /// Where `data` starts.
    pub offset: u64,
    /// Where to read from next.
    pub next: u64,
    /// The log's length now.
    pub size: u64,
    /// The log reached the output cap: the rest of the output is not in it (the
    /// execution's `output` keeps its head and tail).
    pub truncated: bool,
    /// The execution ended and everything logged was read: nothing more will come.
    pub done: bool,
    pub data: String,
}

/// A notification as the API shows it (no request body: it is in the channel's hands).
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    pub channel: String,
    pub action: String,
    pub team: String,
    pub state: Delivery,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
}
