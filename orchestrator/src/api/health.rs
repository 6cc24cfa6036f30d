//! `GET /api/healthz` (the process answers) and `GET /api/readyz` (it can do its job:
//! store, queue and runbooks reachable).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloudo_core::time;
use serde_json::json;

use super::AppState;

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

pub async fn healthz() -> Response {
    no_store(
        Json(json!({
            "status": "ok",
            "time": time::rfc3339(time::now()),
            "service": "cloudo",
            "version": env!("CARGO_PKG_VERSION"),
        }))
        .into_response(),
    )
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let store = state
        .executions
        .store()
        .ping()
        .await
        .map_err(|e| e.to_string());
    let queue = state.queue.ping().await.map_err(|e| e.to_string());
    let runbooks = state.runbooks.check().await;
    let ok = store.is_ok() && queue.is_ok() && runbooks.is_ok();
    let runbooks = match runbooks {
        Ok(status) => json!({"ok": true, "source": status}),
        Err(e) => json!({"ok": false, "error": e.to_string()}),
    };
    let show = |r: &Result<(), String>| match r {
        Ok(()) => json!({"ok": true}),
        Err(e) => json!({"ok": false, "error": e}),
    };
    let body = json!({
        "status": if ok { "ready" } else { "not ready" },
        "checks": {"store": show(&store), "queue": show(&queue), "runbooks": runbooks},
    });
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    no_store((code, Json(body)).into_response())
}
