//! ClouDO's status page: `GET /api/logs` (HTML table, or JSON with `Accept:
//! application/json`) and `GET /api/logs/{partitionKey}/{execId}`.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use cloudo_core::{Execution, time};

use super::AppState;
use super::auth::Identity;
use super::error::{ApiError, Path, Query};
use super::executions::{ListQuery, instant, page_json, parse_id, visible_page};
use super::views::ExecutionView;

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
    who: Option<Extension<Identity>>,
) -> Result<Response, ApiError> {
    let page = visible_page(&state, who.as_ref().map(|Extension(i)| i), &q, 100).await?;
    if wants_json(&headers) {
        return Ok(page_json(&state, &page));
    }
    let mut res = Html(render(&page.items, page.next.as_deref())).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(res)
}

/// `GET /api/logs/{partitionKey}/{execId}`: the execution. The partition (ClouDO's
/// `YYYYMMDD`) is accepted for compatibility; the id alone identifies the execution.
pub async fn one(
    State(state): State<AppState>,
    Path((_partition, raw)): Path<(String, String)>,
    who: Option<Extension<Identity>>,
) -> Result<Response, ApiError> {
    let id = parse_id(&raw)?;
    let e = super::executions::execution(&state, &id).await?;
    super::scope::check_execution(&state, who.as_ref().map(|Extension(i)| i), &e, "read")?;
    Ok(Json(ExecutionView {
        execution: &e,
        url: state.execution_url(&e.exec_id),
        verification_url: None,
        notifications: None,
    })
    .into_response())
}

/// ClouDO's `GET /api/logs/query`: one day's executions (`partitionKey`, `YYYYMMDD`,
/// required), narrowed by `execId`, `status`, `q`, `from`/`to` (RFC 3339), `limit` (1-5000,
/// default 200) and `order` (`desc`, the default, or `asc`). The items are executions as
/// `/api/executions` shows them (ClouDO answered its table rows).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct LogsQuery {
    partition_key: Option<String>,
    exec_id: Option<String>,
    status: Option<String>,
    q: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    order: Option<String>,
}

pub async fn query(
    State(state): State<AppState>,
    Query(lq): Query<LogsQuery>,
    who: Option<Extension<Identity>>,
) -> Result<Response, ApiError> {
    let day = lq
        .partition_key
        .as_deref()
        .and_then(|p| chrono::NaiveDate::parse_from_str(p, "%Y%m%d").ok())
        .ok_or_else(|| ApiError::bad_request("partitionKey (a day, YYYYMMDD) is required"))?;
    let start = day.and_time(chrono::NaiveTime::MIN).and_utc();
    let end = start + chrono::Duration::days(1);
    let since = instant("from", lq.from.as_deref())?.map_or(start, |f| f.max(start));
    let until = instant("to", lq.to.as_deref())?.map_or(end, |t| t.min(end));
    let limit = lq.limit.unwrap_or(200);
    if !(1..=5000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be 1 to 5000"));
    }
    let ascending = match lq.order.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "order {other:?}: asc or desc"
            )));
        }
    };
    let mut page = match lq.exec_id.as_deref().filter(|i| !i.is_empty()) {
        Some(raw) => {
            let e = super::executions::execution(&state, &parse_id(raw)?).await?;
            super::scope::check_execution(&state, who.as_ref().map(|Extension(i)| i), &e, "read")?;
            let inside = e.requested_at >= since
                && e.requested_at < until
                && lq
                    .status
                    .as_deref()
                    .is_none_or(|st| st.eq_ignore_ascii_case(e.status.as_str()));
            cloudo_core::store::Page {
                items: if inside { vec![e] } else { Vec::new() },
                next: None,
            }
        }
        None => {
            day_window(
                &state,
                who.as_ref().map(|Extension(i)| i),
                &lq,
                (since, until),
                limit,
                ascending,
            )
            .await?
        }
    };
    if ascending {
        page.items.reverse();
    }
    Ok(page_json(&state, &page))
}

/// Store pages read at most for one search (of 1000 executions each), past which the answer
/// holds what was found and `next` goes on (with `/api/executions?cursor=`).
const MAX_PAGES: usize = 100;

/// The day's executions, newest first: read page by page (newest first) down to the day's
/// start. Descending stops at `limit`; ascending keeps the oldest `limit`.
async fn day_window(
    state: &AppState,
    who: Option<&Identity>,
    lq: &LogsQuery,
    (since, until): (time::Timestamp, time::Timestamp),
    limit: usize,
    ascending: bool,
) -> Result<cloudo_core::store::Page<Execution>, ApiError> {
    let mut items = Vec::new();
    let mut cursor = None;
    for _ in 0..MAX_PAGES {
        let q = ListQuery {
            status: lq.status.clone(),
            since: Some(time::rfc3339(since)),
            until: Some(time::rfc3339(until)),
            q: lq.q.clone(),
            // Descending needs `limit` (more only when some are filtered out here).
            limit: Some(if ascending { 1000 } else { limit.min(1000) }),
            cursor: cursor.take(),
            ..ListQuery::default()
        };
        let page = visible_page(state, who, &q, 1000).await?;
        items.extend(page.items);
        if ascending {
            // Only the oldest `limit` matter: the newest go as older ones arrive.
            let extra = items.len().saturating_sub(limit);
            items.drain(..extra);
        } else if items.len() >= limit {
            items.truncate(limit);
            return Ok(cloudo_core::store::Page { items, next: None });
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(cloudo_core::store::Page { items, next: None }),
        }
    }
    Ok(cloudo_core::store::Page {
        items,
        next: cursor,
    })
}

/// Minimal HTML escaping for text and attribute values.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn render(items: &[Execution], next: Option<&str>) -> String {
    let mut rows = String::new();
    for e in items {
        let duration = match (e.started_at, e.finished_at) {
            (Some(s), Some(f)) => format!("{:.3} s", (f - s).num_milliseconds() as f64 / 1000.0),
            _ => String::new(),
        };
        let _ = writeln!(
            rows,
            "<tr class=\"{st}\"><td>{req}</td><td><b>{st}</b></td><td>{schema}</td><td>{name}</td>\
             <td>{init}</td><td>{dur}</td><td>{exit}</td><td>{reason}</td>\
             <td><a href=\"/api/executions/{id}\">output</a></td></tr>",
            st = e.status,
            req = esc(&time::rfc3339(e.requested_at)),
            schema = esc(&e.schema_id),
            name = esc(&e.name),
            init = esc(&e.initiator),
            dur = duration,
            exit = e.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            reason = esc(e.error.as_deref().unwrap_or("")),
            id = e.exec_id,
        );
    }
    let more = next
        .map(|c| format!("<p><a href=\"/api/logs?cursor={}\">older</a></p>", esc(c)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>cloudo: executions</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}}\
         .succeeded b{{color:#17803d}}.failed b,.error b,.timeout b,.lost b{{color:#b91c1c}}\
         .running b,.accepted b{{color:#1d4ed8}}</style></head><body>\
         <h1>Executions</h1><table><tr><th>requested (UTC)</th><th>status</th><th>schema</th>\
         <th>name</th><th>initiator</th><th>duration</th><th>exit</th><th>reason</th><th></th></tr>\n\
         {rows}</table>{more}</body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
