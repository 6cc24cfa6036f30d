//! The pages behind signed approval links: `GET /api/approvals/{exec_id}/{decision}?expires=
//! &sig=` shows what would run and a button; only the `POST` of that page decides, so a
//! chat client's link preview never does. A link works once; a used, expired or altered
//! link gets a page that says so. No key is needed: the signature is the credential.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use cloudo_core::approval::{Decision, MAX_COMMENT_BYTES, Verdict};
use cloudo_core::auth::AuditRecord;
use cloudo_core::{ExecId, Execution, Status, time};
use serde::Deserialize;

use super::AppState;
use super::error::{Path, Query};
use super::logs::esc;
use crate::services::executions::DecideError;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkQuery {
    expires: Option<i64>,
    sig: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DecisionForm {
    comment: Option<String>,
}

/// A whole page, never cached, never sending the link on as a referrer.
pub(super) fn page_with(code: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><style>body{{font-family:sans-serif;\
         max-width:48rem;margin:2rem auto;padding:0 1rem}}td,th{{text-align:left;padding:.2rem .6rem;\
         vertical-align:top}}code{{background:#f3f3f3}}button{{font-size:1.1rem;padding:.4rem 1.2rem}}\
         </style></head><body><h1>{t}</h1>{body}</body></html>",
        t = esc(title)
    );
    (
        code,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(html),
    )
        .into_response()
}

/// The link's execution and decision, checked; or the page that says why not.
async fn checked(
    state: &AppState,
    (raw_id, raw_verdict): (&str, &str),
    q: &LinkQuery,
) -> Result<(Execution, Verdict), Response> {
    let refused = |code, why: &str| {
        page_with(
            code,
            "This link cannot be used",
            &format!("<p>{}</p>", esc(why)),
        )
    };
    let verdict = match raw_verdict {
        "approve" => Verdict::Approve,
        "reject" => Verdict::Reject,
        _ => return Err(refused(StatusCode::NOT_FOUND, "There is no such decision.")),
    };
    let (Some(id), Some(expires), Some(sig)) = (ExecId::parse(raw_id), q.expires, q.sig.as_deref())
    else {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "The link is incomplete: copy all of it.",
        ));
    };
    if let Err(e) = state.links.check(&id, verdict, expires, sig) {
        let code = match e {
            crate::services::links::LinkError::Tampered => StatusCode::FORBIDDEN,
            crate::services::links::LinkError::Expired(_) => StatusCode::GONE,
        };
        return Err(refused(code, &format!("{}.", capitalised(&e.to_string()))));
    }
    let e = match state.store.get_execution(&id).await {
        Ok(Some(e)) => e,
        Ok(None) => {
            return Err(refused(
                StatusCode::NOT_FOUND,
                "That execution does not exist.",
            ));
        }
        Err(err) => {
            return Err(refused(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("Try again: {err}"),
            ));
        }
    };
    let used = e
        .approval
        .as_ref()
        .is_some_and(|a| a.approvals.iter().any(|d| d.by == link_decider(verdict)));
    if used {
        return Err(refused(StatusCode::CONFLICT, "This link was already used."));
    }
    if e.status != Status::Pending {
        return Err(refused(
            StatusCode::CONFLICT,
            &format!(
                "This request was already decided: the execution is {}.",
                e.status
            ),
        ));
    }
    Ok((e, verdict))
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Who a link decision is recorded as: each link decides once.
fn link_decider(verdict: Verdict) -> String {
    format!("link:{}", verdict.as_str())
}

/// What the request would run, as a table.
fn what_runs(e: &Execution) -> String {
    let env: &BTreeMap<String, String> = &e.env;
    let resource = env
        .get("RESOURCE_ID")
        .or_else(|| env.get("RESOURCE_NAME"))
        .map_or("—".to_string(), |r| r.clone());
    let commit = e
        .runbook_ref
        .clone()
        .unwrap_or_else(|| "the current version".into());
    let a = e.approval.as_ref();
    let mut rows = vec![
        ("Schema", format!("{} ({})", e.name, e.schema_id)),
        ("Runbook", format!("{} {}", e.runbook, e.run_args)),
        ("At", commit),
        ("Resource", resource),
        (
            "Requested by",
            a.map_or(String::new(), |a| a.requested_by.clone()),
        ),
        ("Requested at", time::rfc3339(e.requested_at)),
        (
            "Approvals",
            a.map_or(String::new(), |a| {
                format!("{} of {}", a.approved(), a.required)
            }),
        ),
        (
            "Expires",
            a.map_or(String::new(), |a| time::rfc3339(a.expires_at)),
        ),
    ];
    for (k, v) in env {
        rows.push(("Variable", format!("{k}={v}")));
    }
    let cells: String = rows
        .iter()
        .map(|(k, v)| {
            format!(
                "<tr><th>{}</th><td><code>{}</code></td></tr>",
                esc(k),
                esc(v)
            )
        })
        .collect();
    format!("<table>{cells}</table>")
}

pub async fn page(
    State(state): State<AppState>,
    Path((raw_id, raw_verdict)): Path<(String, String)>,
    Query(q): Query<LinkQuery>,
) -> Response {
    let (e, verdict) = match checked(&state, (&raw_id, &raw_verdict), &q).await {
        Ok(x) => x,
        Err(page) => return page,
    };
    let word = if verdict == Verdict::Approve {
        "Approve"
    } else {
        "Reject"
    };
    let action = format!(
        "/api/approvals/{}/{}?expires={}&amp;sig={}",
        e.exec_id,
        verdict.as_str(),
        q.expires.unwrap_or_default(),
        esc(q.sig.as_deref().unwrap_or_default())
    );
    let body = format!(
        "{table}<form method=\"post\" action=\"{action}\"><p><label>Comment (optional)<br>\
         <textarea name=\"comment\" rows=\"3\" cols=\"60\" maxlength=\"{MAX_COMMENT_BYTES}\"></textarea>\
         </label></p><p><button type=\"submit\">{word}</button></p></form>\
         <p>Nothing happens until you press the button.</p>",
        table = what_runs(&e),
    );
    page_with(StatusCode::OK, &format!("{word} this run?"), &body)
}

pub async fn decide(
    State(state): State<AppState>,
    Path((raw_id, raw_verdict)): Path<(String, String)>,
    Query(q): Query<LinkQuery>,
    form: Result<Form<DecisionForm>, FormRejection>,
) -> Response {
    let (e, verdict) = match checked(&state, (&raw_id, &raw_verdict), &q).await {
        Ok(x) => x,
        Err(page) => return page,
    };
    let form = match form {
        Ok(Form(f)) => f,
        Err(r) => {
            return page_with(
                StatusCode::BAD_REQUEST,
                "Not recorded",
                &format!("<p>The form could not be read: {}</p>", esc(&r.body_text())),
            );
        }
    };
    let comment = form
        .comment
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    if comment
        .as_ref()
        .is_some_and(|c| c.len() > MAX_COMMENT_BYTES)
    {
        return page_with(
            StatusCode::BAD_REQUEST,
            "Comment too long",
            &format!("<p>At most {MAX_COMMENT_BYTES} bytes.</p>"),
        );
    }
    let by = link_decider(verdict);
    let decision = Decision {
        by: by.clone(),
        via: "link".into(),
        decision: verdict,
        at: time::now(),
        comment,
    };
    let (code, title, text) = match state.executions.decide(&e.exec_id, decision).await {
        Ok(done) => (
            StatusCode::OK,
            match done.status {
                Status::Accepted => "Approved: the run is queued",
                Status::Rejected => "Rejected: it will not run",
                _ => "Approval recorded: more approvals are needed",
            },
            format!(
                "<p>Execution <code>{}</code> is {}.</p>",
                done.exec_id, done.status
            ),
        ),
        Err(DecideError::Refused(why)) => (
            StatusCode::CONFLICT,
            "Not recorded",
            format!("<p>{}</p>", esc(&why)),
        ),
        Err(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Not recorded",
            format!("<p>Try again: {}</p>", esc(&err.to_string())),
        ),
    };
    state
        .audit
        .record(AuditRecord {
            at: time::now(),
            actor: by,
            role: "link".into(),
            action: format!("{} via link", verdict.as_str()),
            target: format!("/api/executions/{}", e.exec_id),
            source: "link".into(),
            outcome: code.as_u16(),
        })
        .await;
    page_with(code, title, &text)
}
