//! `GET /api/executions/{exec_id}/stream`: an execution's status and output as it runs,
//! as Server-Sent Events.
//!
//! Events, each with the log's byte offset reached as its id:
//! - `status`: the status when the stream starts and at each change;
//! - `output`: `{offset, next, text}`, the log from `offset` to `next`;
//! - `end`: the final status, once all the log was sent; the stream then ends;
//! - `closing`: the server is stopping; reconnect (with `Last-Event-ID`) to go on;
//! - `error`: the store failed; reconnect to go on.
//!
//! A reconnect with `Last-Event-ID: <offset>` (what browsers' EventSource send by
//! themselves) or `?offset=` resumes the output from there: nothing missed, nothing twice.

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use cloudo_core::{ExecId, Execution, Status, time};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Identity;
use super::error::{ApiError, Path, Query};
use super::executions::{execution, parse_id};
use super::scope::check_execution;
use crate::services::executions::Followed;

/// How long a browser waits before reconnecting a dropped stream.
const RETRY: Duration = Duration::from_secs(1);
/// A comment this often keeps proxies from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Byte offset of the log to start from (`Last-Event-ID` wins when both are given).
    pub offset: Option<u64>,
}

/// What `status` and `end` events carry.
#[derive(Debug, Serialize)]
struct StatusData<'a> {
    exec_id: &'a ExecId,
    status: Status,
    schema_id: &'a str,
    worker_id: Option<&'a str>,
    requested_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    exit_code: Option<i32>,
    error: Option<&'a str>,
}

impl<'a> StatusData<'a> {
    fn of(e: &'a Execution) -> Self {
        Self {
            exec_id: &e.exec_id,
            status: e.status,
            schema_id: &e.schema_id,
            worker_id: e.worker_id.as_deref(),
            requested_at: time::rfc3339(e.requested_at),
            started_at: e.started_at.map(time::rfc3339),
            finished_at: e.finished_at.map(time::rfc3339),
            exit_code: e.exit_code,
            error: e.error.as_deref(),
        }
    }
}

#[derive(Debug, Serialize)]
struct OutputData<'a> {
    offset: u64,
    next: u64,
    text: &'a str,
}

/// Where the client asks to start: `Last-Event-ID`, else `?offset=`, else the beginning.
fn start_offset(headers: &HeaderMap, q: &StreamQuery) -> Result<u64, ApiError> {
    match headers.get("last-event-id") {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::bad_request("Last-Event-ID must be a byte offset (a whole number)")
            }),
        None => Ok(q.offset.unwrap_or(0)),
    }
}

pub async fn stream(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
    who: Option<Extension<Identity>>,
) -> Result<Response, ApiError> {
    let id = parse_id(&raw)?;
    let from = start_offset(&headers, &q)?;
    let e = execution(&state, &id).await?;
    check_execution(&state, who.as_ref().map(|Extension(i)| i), &e, "read")?;
    let follower = state.executions.follow(&id, from);
    let events = futures_util::stream::unfold((follower, false), |(mut f, done)| async move {
        if done {
            return None;
        }
        let (event, done) = match f.next().await {
            Ok(Some(ev)) => (to_event(&ev, f.offset()), false),
            Ok(None) => return None,
            Err(err) => {
                tracing::warn!(exec_id = %f.exec_id(), error = %err, "live output stream failed");
                let data = serde_json::json!({ "message": err.to_string() });
                (sse("error", f.offset(), &data), true)
            }
        };
        Some((Ok::<_, Infallible>(event), (f, done)))
    });
    let mut res = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    // Proxies (nginx) must not buffer it.
    res.headers_mut().insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    Ok(res)
}

fn sse(kind: &str, offset: u64, data: &impl Serialize) -> Event {
    let event = Event::default()
        .event(kind)
        .id(offset.to_string())
        .retry(RETRY);
    match serde_json::to_string(data) {
        Ok(json) => event.data(json),
        Err(_) => event.data("{}"),
    }
}

fn to_event(ev: &Followed, offset: u64) -> Event {
    match ev {
        Followed::Status(e) => sse("status", offset, &StatusData::of(e)),
        Followed::Output { offset, next, text } => sse(
            "output",
            *next,
            &OutputData {
                offset: *offset,
                next: *next,
                text,
            },
        ),
        Followed::End(e) => sse("end", offset, &StatusData::of(e)),
        Followed::Closing => sse("closing", offset, &serde_json::json!({ "offset": offset })),
    }
}
