//! Prometheus metrics: the recorder both binaries install, the names they record under
//! (one place, so docs/operations.md and the code agree), and a standalone worker's own
//! `/metrics` listener (`--metrics-listen`).
//!
//! Label values are bounded: schema ids and pools (the catalog's), statuses, sources,
//! channels, route templates, store operations, worker ids of the fleet. Never an
//! execution id, a resource id or anything a request chooses.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

/// Executions that started running, by `schema`.
pub const EXECUTIONS_STARTED: &str = "cloudo_executions_started_total";
/// Executions that ended, by `schema` and `status`.
pub const EXECUTIONS_FINISHED: &str = "cloudo_executions_finished_total";
/// From start to end of a run, by `schema`.
pub const RUN_DURATION: &str = "cloudo_execution_duration_seconds";
/// From the request to the start of its run, by `pool`.
pub const START_LATENCY: &str = "cloudo_execution_start_latency_seconds";
/// Messages waiting or leased, by `pool`.
pub const QUEUE_DEPTH: &str = "cloudo_queue_depth";
/// Age of the oldest message waiting for a worker, by `pool` (0 when none waits).
pub const QUEUE_OLDEST_AGE: &str = "cloudo_queue_oldest_age_seconds";
/// Executions running, by `pool` and `worker`.
pub const RUNNING: &str = "cloudo_running_executions";
/// Alerts received, by `source` (`azure_monitor`, `alertmanager`).
pub const ALERTS_RECEIVED: &str = "cloudo_alerts_received_total";
/// Alerts that were duplicates of one already handled, by `source`.
pub const ALERTS_DEDUPLICATED: &str = "cloudo_alerts_deduplicated_total";
/// Alerts routed, by `source` and `outcome` (`matched`: something runs; `unmatched`).
pub const ALERTS_ROUTED: &str = "cloudo_alerts_routed_total";
/// Notification delivery attempts, by `channel` and `outcome`.
pub const NOTIFICATIONS: &str = "cloudo_notifications_total";
/// HTTP requests, by `method`, `route` (its template) and `code`.
pub const HTTP_REQUESTS: &str = "cloudo_http_requests_total";
/// HTTP request latency (to the answer's head), by `method` and `route`.
pub const HTTP_DURATION: &str = "cloudo_http_request_duration_seconds";
/// Store calls, by `operation`.
pub const STORE_DURATION: &str = "cloudo_store_operation_duration_seconds";
/// Store calls that failed, by `operation`.
pub const STORE_ERRORS: &str = "cloudo_store_errors_total";
/// Runs a worker finished, by `pool` and `status` (standalone workers and in-process pools).
pub const WORKER_RUNS: &str = "cloudo_worker_runs_total";
/// Runs a worker is running now, by `pool`.
pub const WORKER_RUNNING: &str = "cloudo_worker_running";
/// 1, with the `version` and the `component` (`orchestrator`, `worker`).
pub const BUILD_INFO: &str = "cloudo_build_info";

/// Seconds: from a fast HTTP answer to a long runbook.
const BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 300.0,
    1800.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder once (later calls return the same handle), with its
/// upkeep on the current runtime; `None` if another recorder was installed first.
pub fn install(component: &'static str) -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
                .ok()?
                // A worker that left, a pool no longer served: its gauges go after 10 minutes.
                .idle_timeout(MetricKindMask::GAUGE, Some(Duration::from_secs(600)));
            match builder.install_recorder() {
                Ok(h) => {
                    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "component" => component)
                        .set(1.0);
                    describe();
                    if let Ok(rt) = tokio::runtime::Handle::try_current() {
                        rt.spawn(upkeep());
                    }
                    Some(h)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// The `# HELP` lines.
fn describe() {
    use metrics::{describe_counter as c, describe_gauge as g, describe_histogram as h};
    c!(
        EXECUTIONS_STARTED,
        "Executions that started running, by schema."
    );
    c!(
        EXECUTIONS_FINISHED,
        "Executions that ended, by schema and status."
    );
    h!(
        RUN_DURATION,
        "Seconds from the start to the end of a run, by schema."
    );
    h!(
        START_LATENCY,
        "Seconds from the request to the start of its run, by pool."
    );
    g!(
        QUEUE_DEPTH,
        "Messages waiting or leased, by pool (approximate on Azure)."
    );
    g!(
        QUEUE_OLDEST_AGE,
        "Age in seconds of the oldest message waiting for a worker, by pool."
    );
    g!(RUNNING, "Executions running, by pool and worker.");
    c!(ALERTS_RECEIVED, "Alerts received, by source.");
    c!(
        ALERTS_DEDUPLICATED,
        "Alerts that repeated one already handled, by source."
    );
    c!(
        ALERTS_ROUTED,
        "Alerts routed, by source and outcome (matched, unmatched)."
    );
    c!(
        NOTIFICATIONS,
        "Notification delivery attempts, by channel and outcome."
    );
    c!(
        HTTP_REQUESTS,
        "HTTP requests, by method, route template and status code."
    );
    h!(
        HTTP_DURATION,
        "Seconds to answer an HTTP request (to the head), by method and route."
    );
    h!(STORE_DURATION, "Seconds per store call, by operation.");
    c!(STORE_ERRORS, "Store calls that failed, by operation.");
    c!(
        WORKER_RUNS,
        "Runs this worker finished, by pool and status."
    );
    g!(WORKER_RUNNING, "Runs this worker is running, by pool.");
    g!(
        BUILD_INFO,
        "1, labelled with the version and the component."
    );
}

/// The text format of everything recorded.
pub fn render() -> String {
    match HANDLE.get().and_then(Option::as_ref) {
        Some(h) => h.render(),
        None => String::new(),
    }
}

/// Folds recent histogram samples in; runs every few seconds so memory stays bounded
/// whether or not anyone scrapes.
async fn upkeep() {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        if let Some(h) = HANDLE.get().and_then(Option::as_ref) {
            h.run_upkeep();
        }
    }
}

/// Serves `GET /metrics` until `stop` resolves (a standalone worker's `--metrics-listen`);
/// `refresh` runs before each answer (scrape-time gauges).
pub async fn serve<F, Fut>(
    listener: tokio::net::TcpListener,
    refresh: F,
    stop: impl std::future::Future<Output = ()>,
) where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    use crate::small_http::{Answer, json};
    use hyper::StatusCode;

    let handler = move |req: hyper::Request<hyper::body::Incoming>| {
        let refresh = refresh.clone();
        async move {
            if req.uri().path() != "/metrics" || req.method() != hyper::Method::GET {
                return json(
                    StatusCode::NOT_FOUND,
                    &serde_json::json!({"error": {"code": "not_found", "message": "only GET /metrics is served here"}}),
                );
            }
            refresh().await;
            let mut res = Answer::new(http_body_util::Full::new(
                hyper::body::Bytes::from(render()),
            ));
            res.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            res
        }
    };
    crate::small_http::serve(listener, "metrics", handler, stop).await;
}
