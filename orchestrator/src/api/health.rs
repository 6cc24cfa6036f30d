//! `GET /api/healthz` (the process answers) and `GET /api/readyz` (it can do its job:
//! store, queue and runbooks reachable).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloudo_core::time;

use super::AppState;
use super::views::{CatalogCheck, Check, Health, Ready, ReadyChecks, RunbooksCheck};

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

pub async fn healthz() -> Response {
    no_store(
        Json(Health {
            status: "ok",
            time: time::rfc3339(time::now()),
            service: "cloudo",
            version: env!("CARGO_PKG_VERSION"),
        })
        .into_response(),
    )
}

/// Anonymous callers see states, never paths, URLs or error texts (those can name the data
/// folder or the repository): the reasons go to the log.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let store = state.store.ping().await.map_err(|e| e.to_string());
    let queue = state.queue.ping().await.map_err(|e| e.to_string());
    let runbooks = state.runbooks.check().await.map_err(|e| e.to_string());
    let ok = store.is_ok() && queue.is_ok() && runbooks.is_ok();
    for (check, r) in [
        ("store", store.as_ref().err()),
        ("queue", queue.as_ref().err()),
    ] {
        if let Some(e) = r {
            tracing::warn!(check, error = %e, "not ready");
        }
    }
    let runbooks = match runbooks {
        Ok(s) => RunbooksCheck {
            ok: true,
            kind: Some(s.kind),
            commit: s.commit,
            last_fetch_failed: Some(s.last_error.is_some()),
        },
        Err(e) => {
            tracing::warn!(check = "runbooks", error = %e, "not ready");
            RunbooksCheck {
                ok: false,
                kind: None,
                commit: None,
                last_fetch_failed: None,
            }
        }
    };
    let missing = crate::services::documents::runbooks::missing_runbooks(
        &state.ingest.catalog.get(),
        &*state.runbooks,
    )
    .await
    .unwrap_or_default();
    for (schema_id, runbook) in &missing {
        tracing::warn!(
            check = "catalog",
            schema_id,
            runbook,
            "runbook does not exist"
        );
    }
    let body = Ready {
        status: if ok { "ready" } else { "not ready" },
        checks: ReadyChecks {
            store: Check { ok: store.is_ok() },
            queue: Check { ok: queue.is_ok() },
            runbooks,
            catalog: CatalogCheck {
                ok: missing.is_empty(),
                missing_runbooks: missing.len(),
            },
        },
    };
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    no_store((code, Json(body)).into_response())
}
