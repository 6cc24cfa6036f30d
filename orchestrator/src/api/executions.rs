//! `GET /api/executions` (newest first, paged) and `GET /api/executions/{exec_id}`
//! (optionally long-polling with `?wait=<secs>` until the execution is terminal), and
//! `GET /api/executions/{exec_id}/output?offset=&limit=`, a range of its log.

use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use cloudo_core::approval::Verdict;
use cloudo_core::auth::Permission;
use cloudo_core::notify::Delivery;
use cloudo_core::store::{ExecutionQuery, Page};
use cloudo_core::{ExecId, Execution, Status, time};
use serde::Deserialize;

use super::AppState;
use super::auth::Identity;
use super::error::{ApiError, Path, Query};
use super::scope::{check_execution, may_see};
use super::views::{ExecutionView, NotificationView, OutputView, Paged};

/// The longest `?wait=` honoured.
pub(super) const MAX_WAIT_SECS: u64 = 60;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub status: Option<String>,
    pub schema_id: Option<String>,
    /// Requests for approval in this state: `pending`, `approved`, `rejected`, `expired`.
    pub approval: Option<String>,
    /// Started by this initiator (`manual`, `alert`, `schedule:<id>`, a key's name…).
    pub initiator: Option<String>,
    /// Requested at or after this time (RFC 3339); paging stops there.
    pub since: Option<String>,
    /// Requested before this time (RFC 3339).
    pub until: Option<String>,
    /// Text found (case-insensitively) in the id, name, schema, initiator, runbook,
    /// reason or variables.
    pub q: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

pub(super) fn instant(name: &str, v: Option<&str>) -> Result<Option<time::Timestamp>, ApiError> {
    match v.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&chrono::Utc)))
            .map_err(|e| ApiError::bad_request(format!("{name} must be an RFC 3339 time: {e}"))),
    }
}

/// Does `e` hold `needle` (lower case) anywhere a person would search?
fn mentions(e: &Execution, needle: &str) -> bool {
    let has = |s: &str| s.to_lowercase().contains(needle);
    has(e.exec_id.as_str())
        || has(&e.name)
        || has(&e.schema_id)
        || has(&e.initiator)
        || has(&e.runbook)
        || e.error.as_deref().is_some_and(has)
        || e.env.values().any(|v| has(v))
}

impl ListQuery {
    pub fn to_store_query(&self, default_limit: usize) -> Result<ExecutionQuery, ApiError> {
        let status = match self.status.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(s.parse::<Status>().map_err(|_| {
                ApiError::bad_request(format!(
                    "unknown status {s:?}; one of: {}",
                    Status::ALL.map(Status::as_str).join(", ")
                ))
            })?),
        };
        let limit = self.limit.unwrap_or(default_limit);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::bad_request("limit must be between 1 and 1000"));
        }
        Ok(ExecutionQuery {
            status,
            schema_id: self.schema_id.clone().filter(|s| !s.is_empty()),
            initiator: self.initiator.clone().filter(|s| !s.is_empty()),
            since: instant("since", self.since.as_deref())?,
            until: instant("until", self.until.as_deref())?,
            limit,
            cursor: self.cursor.clone().filter(|s| !s.is_empty()),
        })
    }
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
    who: Option<Extension<Identity>>,
) -> Result<Response, ApiError> {
    let page = visible_page(&state, who.as_ref().map(|Extension(i)| i), &q, 50).await?;
    Ok(page_json(&state, &page))
}

/// A page of executions, without those outside the caller's scope (a page may then hold
/// fewer than `limit`; `next` goes on from where the store stopped).
pub async fn visible_page(
    state: &AppState,
    who: Option<&Identity>,
    q: &ListQuery,
    default_limit: usize,
) -> Result<Page<Execution>, ApiError> {
    let approval = match q.approval.as_deref().filter(|a| !a.is_empty()) {
        None => None,
        Some(a @ ("pending" | "approved" | "rejected" | "expired")) => Some(a),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown approval state {other:?}; one of: pending, approved, rejected, expired"
            )));
        }
    };
    let mut query = q.to_store_query(default_limit)?;
    if approval == Some("pending") && query.status.is_none() {
        // Only pending executions wait for a decision: the store's status index finds them.
        query.status = Some(Status::Pending);
    }
    let mut page = state.store.list_executions(&query).await?;
    let needle =
        q.q.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase);
    // What the store does not filter (a page may then hold fewer than `limit`).
    page.items.retain(|e| {
        needle.as_deref().is_none_or(|n| mentions(e, n))
            && may_see(state, who, e)
            && approval.is_none_or(|want| {
                // A request cancelled before anyone decided is no longer pending.
                e.approval.as_ref().is_some_and(|a| {
                    a.state() == want && (want != "pending" || e.status == Status::Pending)
                })
            })
    });
    Ok(page)
}

/// `{"items": [...], "next": ...}` for a page of executions.
pub fn page_json(state: &AppState, page: &Page<Execution>) -> Response {
    let items: Vec<_> = page
        .items
        .iter()
        .map(|e| ExecutionView {
            execution: e,
            url: state.execution_url(&e.exec_id),
            verification_url: None,
            notifications: None,
        })
        .collect();
    Json(Paged {
        items,
        next: page.next.clone(),
    })
    .into_response()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetQuery {
    /// Seconds to wait for the execution to become terminal.
    pub wait: Option<u64>,
}

/// The execution `id`, or 404.
pub async fn execution(state: &AppState, id: &ExecId) -> Result<Execution, ApiError> {
    state
        .store
        .get_execution(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no execution {id}")))
}

pub fn parse_id(raw: &str) -> Result<ExecId, ApiError> {
    ExecId::parse(raw)
        .ok_or_else(|| ApiError::bad_request(format!("{raw:?} is not an execution id")))
}

pub async fn get_one(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<GetQuery>,
    who: Option<Extension<Identity>>,
) -> Result<Response, ApiError> {
    let id = parse_id(&raw)?;
    let who = who.as_ref().map(|Extension(i)| i);
    // Checked before waiting, so a key out of scope learns nothing by timing.
    check_execution(&state, who, &execution(&state, &id).await?, "read")?;
    let e = match q.wait {
        Some(w) if w > 0 => {
            let wait = Duration::from_secs(w.min(MAX_WAIT_SECS));
            state.executions.wait_terminal(&id, wait).await?
        }
        _ => state.store.get_execution(&id).await?,
    };
    let mut e = e.ok_or_else(|| ApiError::not_found(format!("no execution {id}")))?;
    // The signed links decide: only for those who may decide.
    if who.is_some_and(|i| i.role.allows(Permission::Operate)) {
        with_links(&state, &mut e);
    }
    answer(&state, e).await
}

/// Puts the signed approve / reject links on a pending execution's request.
pub fn with_links(state: &AppState, e: &mut Execution) {
    if e.status != Status::Pending {
        return;
    }
    if let Some(a) = e.approval.as_mut() {
        a.approve_url = Some(state.links.url(&e.exec_id, Verdict::Approve, a.expires_at));
        a.reject_url = Some(state.links.url(&e.exec_id, Verdict::Reject, a.expires_at));
    }
}

/// One execution as the API shows it: its log so far while it has no final output, its
/// notifications, its link.
pub async fn answer(state: &AppState, mut e: Execution) -> Result<Response, ApiError> {
    state.executions.show_live_output(&mut e).await?;
    let id = e.exec_id.clone();
    let notifications: Vec<_> = state
        .store
        .notifications_for(&id)
        .await?
        .into_iter()
        .map(|n| NotificationView {
            channel: n.channel,
            action: n.action,
            team: n.team,
            state: n.state,
            attempts: n.attempts,
            last_error: n.last_error,
            created_at: time::rfc3339(n.created_at),
            next_at: (n.state == Delivery::Pending).then(|| time::rfc3339(n.next_at)),
            delivered_at: n.delivered_at.map(time::rfc3339),
        })
        .collect();
    Ok(Json(ExecutionView {
        execution: &e,
        url: state.execution_url(&e.exec_id),
        verification_url: e
            .verification
            .as_ref()
            .map(|v| state.execution_url(&v.exec_id)),
        notifications: Some(notifications),
    })
    .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutputQuery {
    /// Byte offset to read from (what the previous answer called `next`).
    pub offset: Option<u64>,
    /// Most bytes to return (default 64 KiB, at most 1 MiB).
    pub limit: Option<usize>,
}

pub async fn output(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<OutputQuery>,
    who: Option<Extension<Identity>>,
) -> Result<Json<OutputView>, ApiError> {
    let id = parse_id(&raw)?;
    let limit = q.limit.unwrap_or(64 * 1024);
    if !(1..=1 << 20).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 1048576"));
    }
    // The status first: an execution that ended before its log was read has all of it.
    let e = execution(&state, &id).await?;
    check_execution(&state, who.as_ref().map(|Extension(i)| i), &e, "read")?;
    let r = state
        .executions
        .read_log(&id, q.offset.unwrap_or(0), limit)
        .await?;
    let next = r.next();
    Ok(Json(OutputView {
        exec_id: id,
        status: e.status,
        offset: r.offset,
        next,
        size: r.size,
        truncated: r.full,
        done: e.status.is_terminal() && next >= r.size,
        data: String::from_utf8_lossy(&r.data).into_owned(),
    }))
}
