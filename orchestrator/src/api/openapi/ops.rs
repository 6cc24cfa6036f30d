//! Every operation of the API, with what it takes and answers (the router's table says who
//! may call it). A route added without a line here fails the document test.

use axum::http::Method as M;
use cloudo_core::Schema;
use cloudo_core::auth::{ApiKey, AuditRecord};

use super::Op;
use crate::api::executions::{GetQuery, ListQuery, OutputQuery};
use crate::api::keys::AuditParams;
use crate::api::schedules::{ScheduleList, ScheduleView};
use crate::api::schemas::SchemaList;
use crate::api::stream::StreamQuery;
use crate::api::trigger::TriggerQuery;
use crate::api::views::{
    AlertmanagerAnswer, CreatedKey, ExecutionView, NotifyRoutesView, OutputView, Refreshed,
    RouteTest, RoutingRulesView, RunbookContent, Runbooks, TriggerAnswer,
};

const IDEMPOTENCY: &str = "The same key within the dedup window answers the first delivery's executions (200, duplicate).";
const TRIGGER: &str = "With `id`, runs that schema (an optional JSON body is the runbook's \
    CLOUDO_PAYLOAD; a common-schema alert body becomes its variables). Without `id`, the body \
    must be an Azure Monitor common-schema alert, and routing decides what runs. 202 when \
    something new was accepted; 200 for duplicates, skips and alerts that matched nothing.";

fn trigger(m: M, path: &'static str) -> Op {
    Op::new(
        m,
        path,
        "ingest",
        "Run a schema, or deliver an Azure Monitor alert",
    )
    .describe(TRIGGER)
    .query::<TriggerQuery>()
    .header("Idempotency-Key", IDEMPOTENCY)
    .body::<serde_json::Value>(false, "runbook arguments, or an Azure Monitor alert")
    .answer_either::<TriggerAnswer, ExecutionView<'static>>(
        202,
        "accepted; with ?wait=, the execution, not ended when the wait ran out",
    )
    .answer_either::<TriggerAnswer, ExecutionView<'static>>(
        200,
        "a duplicate, skipped, or routed to nothing; with ?wait=, the execution once it ended",
    )
    .errors(&[400, 403, 404, 413, 415, 429, 503])
}

fn decision(path: &'static str, summary: &'static str) -> Op {
    Op::new(M::POST, path, "executions", summary)
        .body::<crate::api::control::DecisionBody>(false, "an optional comment")
        .answer::<ExecutionView<'static>>(200, "the execution after the decision")
        .errors(&[400, 404, 409])
}

/// The whole list.
pub fn operations() -> Vec<Op> {
    vec![
        trigger(M::GET, "/api/Trigger"),
        trigger(M::POST, "/api/Trigger"),
        trigger(M::GET, "/api/Trigger/{team}"),
        trigger(M::POST, "/api/Trigger/{team}"),
        Op::new(
            M::POST,
            "/api/webhooks/alertmanager",
            "ingest",
            "Deliver an Alertmanager group",
        )
        .query::<TriggerQuery>()
        .body::<serde_json::Value>(true, "Alertmanager's webhook payload (version 4)")
        .answer::<AlertmanagerAnswer>(202, "one answer per alert of the group")
        .answer::<AlertmanagerAnswer>(200, "nothing new (duplicates, skips, unmatched)")
        .errors(&[400, 413, 415, 429, 503]),
        Op::new(M::GET, "/api/routes", "routing", "The routing rules")
            .answer::<RoutingRulesView<'static>>(
                200,
                "the rules and the file they come from, if any",
            ),
        Op::new(
            M::PUT,
            "/api/routes",
            "routing",
            "Replace the routing rules",
        )
        .raw_body(
            &["application/json", "application/yaml"],
            "a rules document",
        )
        .answer::<RoutingRulesView<'static>>(200, "the rules in use")
        .errors(&[400, 409, 415]),
        Op::new(
            M::GET,
            "/api/notify/routes",
            "notifications",
            "Notification routing",
        )
        .answer::<NotifyRoutesView<'static>>(200, "teams and rules (keys by reference only)"),
        Op::new(
            M::PUT,
            "/api/notify/routes",
            "notifications",
            "Replace notification routing",
        )
        .raw_body(&["application/json", "application/yaml"], "teams and rules")
        .answer::<NotifyRoutesView<'static>>(200, "the routing in use")
        .errors(&[400, 409, 415]),
        Op::new(
            M::GET,
            "/api/schemas",
            "catalog",
            "The catalog (the schemas the key may see)",
        )
        .answer::<SchemaList>(200, "the schemas"),
        Op::new(
            M::PUT,
            "/api/schemas",
            "catalog",
            "Replace the whole catalog",
        )
        .raw_body(&["application/json"], "a catalog in ClouDO's format")
        .answer::<SchemaList>(200, "the catalog in use")
        .errors(&[400, 415, 503]),
        Op::new(
            M::GET,
            "/api/schemas/{id}",
            "catalog",
            "One schema, with its ClouDO entity",
        )
        .answer::<Schema>(200, "the schema")
        .errors(&[404]),
        Op::new(
            M::PUT,
            "/api/schemas/{id}",
            "catalog",
            "Create or replace one schema",
        )
        .body::<serde_json::Value>(true, "ClouDO's entity fields plus partition_key")
        .answer::<Schema>(200, "the schema as stored")
        .errors(&[400, 415, 503]),
        Op::new(
            M::DELETE,
            "/api/schemas/{id}",
            "catalog",
            "Delete one schema",
        )
        .answer_as(204, None, "deleted")
        .errors(&[404, 409, 503]),
        Op::new(
            M::GET,
            "/api/schedules",
            "schedules",
            "Every schedule, with next and last runs",
        )
        .answer::<ScheduleList>(200, "the schedules"),
        Op::new(M::GET, "/api/schedules/{id}", "schedules", "One schedule")
            .answer::<ScheduleView>(200, "the schedule")
            .errors(&[404]),
        Op::new(
            M::PUT,
            "/api/schedules/{id}",
            "schedules",
            "Create or replace a schedule",
        )
        .body::<cloudo_core::schedule::ScheduleEntry>(true, "the schedule")
        .answer::<ScheduleView>(200, "the schedule as stored")
        .errors(&[400, 409, 415]),
        Op::new(
            M::DELETE,
            "/api/schedules/{id}",
            "schedules",
            "Delete a schedule",
        )
        .answer_as(204, None, "deleted")
        .errors(&[404, 409]),
        Op::new(
            M::POST,
            "/api/routes/test",
            "routing",
            "What an alert would run (nothing runs)",
        )
        .query::<crate::api::routes::TestQuery>()
        .body::<serde_json::Value>(true, "an Azure Monitor or Alertmanager payload")
        .answer::<RouteTest>(200, "per alert: rules matched, schemas, variables")
        .errors(&[400, 415]),
        Op::new(
            M::GET,
            "/api/runbooks",
            "runbooks",
            "The runbooks at the current version",
        )
        .answer::<Runbooks>(200, "the runbooks and their source"),
        Op::new(
            M::POST,
            "/api/runbooks/refresh",
            "runbooks",
            "Fetch the runbooks repository now",
        )
        .answer::<Refreshed>(200, "the commit now in use")
        .errors(&[503]),
        Op::new(
            M::GET,
            "/api/runbooks/{*path}",
            "runbooks",
            "One runbook's text",
        )
        .answer::<RunbookContent>(200, "the runbook")
        .errors(&[400, 404]),
        Op::new(
            M::GET,
            "/api/executions",
            "executions",
            "Executions, newest first",
        )
        .query::<ListQuery>()
        .page::<ExecutionView<'static>>("a page of executions")
        .errors(&[400]),
        Op::new(
            M::GET,
            "/api/executions/{exec_id}",
            "executions",
            "One execution",
        )
        .query::<GetQuery>()
        .answer::<ExecutionView<'static>>(200, "the execution, with its notifications")
        .errors(&[400, 404]),
        Op::new(
            M::POST,
            "/api/executions/{exec_id}/cancel",
            "executions",
            "Cancel an execution",
        )
        .answer::<ExecutionView<'static>>(200, "the execution, stopped")
        .errors(&[400, 404, 409]),
        decision(
            "/api/executions/{exec_id}/approve",
            "Approve a pending execution",
        ),
        decision(
            "/api/executions/{exec_id}/reject",
            "Reject a pending execution",
        ),
        Op::new(
            M::POST,
            "/api/integrations/slack/actions",
            "approvals",
            "Slack interactive buttons",
        )
        .describe("Checked with Slack's request signature (X-Slack-Signature).")
        .raw_body(
            &["application/x-www-form-urlencoded"],
            "Slack's `payload` form field",
        )
        .answer_as(200, Some("application/json"), "Slack's message update")
        .errors(&[400, 401, 404]),
        Op::new(
            M::GET,
            "/api/approvals/{exec_id}/{decision}",
            "approvals",
            "A signed approval link's page",
        )
        .query::<crate::api::approvals::LinkQuery>()
        .answer_as(200, Some("text/html"), "a page with a confirm button")
        .page_errors(&[400, 403, 404]),
        Op::new(
            M::POST,
            "/api/approvals/{exec_id}/{decision}",
            "approvals",
            "Decide through a signed link",
        )
        .query::<crate::api::approvals::LinkQuery>()
        .raw_body(
            &["application/x-www-form-urlencoded"],
            "the confirm form (name, comment)",
        )
        .answer_as(200, Some("text/html"), "the decision, as a page")
        .page_errors(&[400, 403, 404, 409]),
        Op::new(
            M::GET,
            "/api/executions/{exec_id}/output",
            "executions",
            "A range of the output log",
        )
        .query::<OutputQuery>()
        .answer::<OutputView>(200, "the range and where to read next")
        .errors(&[400, 404]),
        Op::new(
            M::GET,
            "/api/executions/{exec_id}/stream",
            "executions",
            "Live status and output (SSE)",
        )
        .describe(
            "Events `status`, `output` ({offset, next, text}), `end`, `closing`, `error`; \
                       each id is a byte offset; resume with Last-Event-ID.",
        )
        .query::<StreamQuery>()
        .header("Last-Event-ID", "the byte offset to resume from")
        .events(200, "the event stream")
        .errors(&[400, 404]),
        Op::new(M::GET, "/api/logs", "executions", "ClouDO's status page")
            .query::<ListQuery>()
            .answer_as(200, Some("text/html"), "the page")
            .errors(&[400]),
        Op::new(
            M::GET,
            "/api/logs/query",
            "executions",
            "One day's executions (ClouDO's search)",
        )
        .query::<crate::api::logs::LogsQuery>()
        .page::<ExecutionView<'static>>("the day's executions, newest first unless order=asc")
        .errors(&[400, 404]),
        Op::new(
            M::GET,
            "/api/logs/{partition}/{exec_id}",
            "executions",
            "One execution (ClouDO's route)",
        )
        .answer::<ExecutionView<'static>>(200, "the execution")
        .errors(&[400, 404]),
        Op::new(
            M::GET,
            "/api/keys",
            "keys",
            "API keys (never the keys themselves)",
        )
        .list::<ApiKey>("the keys"),
        Op::new(M::POST, "/api/keys", "keys", "Create an API key")
            .body::<crate::api::keys::NewKey>(
                true,
                "name, role, and optionally expiry, pool, scope",
            )
            .answer::<CreatedKey<'static>>(201, "the key record and, this once, the key")
            .errors(&[400, 409, 415]),
        Op::new(M::DELETE, "/api/keys/{name}", "keys", "Revoke an API key")
            .answer_as(204, None, "revoked")
            .errors(&[404]),
        Op::new(
            M::GET,
            "/api/audit",
            "keys",
            "The audit trail, newest first",
        )
        .query::<AuditParams>()
        .page::<AuditRecord>("a page of audit records")
        .errors(&[400]),
    ]
    .into_iter()
    .chain(super::ops_internal::operations())
    .collect()
}
