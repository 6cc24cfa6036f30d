//! What the services tell `/metrics` besides executions (`executions/observe.rs`) and the
//! store (`metered.rs`): alerts, notification deliveries, and the gauges read at scrape
//! time (queue depth and age per pool, running executions per pool and worker).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::services::view::StoreView;
use cloudo_core::alert::{Alert, AlertSource};
use cloudo_core::notify::Delivery;
use cloudo_core::{Execution, JobQueue, Status};
use cloudo_worker::metrics::{
    ALERTS_DEDUPLICATED, ALERTS_RECEIVED, ALERTS_ROUTED, NOTIFICATIONS, RUNNING,
};

/// An alert received, and whether it was a duplicate or what routing made of it.
pub fn count_alert(alert: &Alert, duplicate: bool, executions: &[Execution]) {
    let source = match alert.source {
        Some(AlertSource::Alertmanager) => "alertmanager",
        _ => "azure_monitor",
    };
    metrics::counter!(ALERTS_RECEIVED, "source" => source).increment(1);
    if duplicate {
        metrics::counter!(ALERTS_DEDUPLICATED, "source" => source).increment(1);
        return;
    }
    let matched = executions.iter().any(|e| e.status != Status::Routed);
    let outcome = if matched { "matched" } else { "unmatched" };
    metrics::counter!(ALERTS_ROUTED, "source" => source, "outcome" => outcome).increment(1);
}

/// One delivery attempt of a notification, by what became of it.
pub fn notification(channel: &str, state: Delivery) {
    let outcome = match state {
        Delivery::Delivered => "delivered",
        Delivery::Failed => "failed",
        _ => "retry",
    };
    let channel = match channel {
        "opsgenie" | "slack" => channel.to_string(),
        _ => "other".to_string(),
    };
    metrics::counter!(NOTIFICATIONS, "channel" => channel, "outcome" => outcome).increment(1);
}

/// Sets the scrape-time gauges: each pool's queue, and the running executions by pool and
/// worker (read from the store, so every orchestrator reports the whole fleet alike).
pub async fn refresh(store: &StoreView, queue: &dyn JobQueue, pools: &[String]) {
    for pool in pools {
        cloudo_worker::command::queue_gauges(queue, pool).await;
    }
    let running = match store.executions_in(Status::Running, 10_000).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read running executions for metrics");
            return;
        }
    };
    let mut by: BTreeMap<(String, String), u64> = BTreeMap::new();
    for e in &running {
        let worker = e.worker_id.clone().unwrap_or_default();
        *by.entry((e.pool.clone(), worker)).or_default() += 1;
    }
    // A worker that has nothing running any more reads 0 once (then its series idles out),
    // not its last count.
    let Ok(mut last) = LAST_RUNNING.lock() else {
        return;
    };
    for gone in last.iter().filter(|k| !by.contains_key(*k)) {
        metrics::gauge!(RUNNING, "pool" => gone.0.clone(), "worker" => gone.1.clone()).set(0.0);
    }
    last.clear();
    for ((pool, worker), n) in by {
        metrics::gauge!(RUNNING, "pool" => pool.clone(), "worker" => worker.clone()).set(n as f64);
        last.insert((pool, worker));
    }
}

/// The (pool, worker) series the last scrape set.
static LAST_RUNNING: Mutex<BTreeSet<(String, String)>> = Mutex::new(BTreeSet::new());
