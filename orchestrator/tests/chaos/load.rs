//! Continuous trigger and alert load, as real senders behave: manual triggers carry an
//! `Idempotency-Key` and alerts their Azure `alertId`, and both are sent again until they
//! get an answer (Azure and scripts retry on a cut connection or a 5xx), so what the
//! server accepted can be checked afterwards, request by request.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::common::{ADMIN_KEY, Server, client};

/// An Azure Monitor alert with its own id, on a VM named after it, in `rg`.
pub fn vm_alert(id: &str, rg: &str) -> Value {
    json!({
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {
                "alertId": format!("/subscriptions/s-1/providers/Microsoft.AlertsManagement/alerts/{id}"),
                "alertRule": "cpu-high",
                "severity": "Sev2",
                "signalType": "Metric",
                "monitorCondition": "Fired",
                "monitoringService": "Platform",
                "alertTargetIDs": [format!("/subscriptions/s-1/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{id}")],
                "configurationItems": [id],
                "firedDateTime": "2026-12-04T10:00:00Z"
            },
            "alertContext": {},
            "customProperties": null
        }
    })
}

/// The key a request was sent under, read back from a stored execution's request body.
pub fn key_of(e: &Value) -> Option<String> {
    let body: Value = serde_json::from_str(e["request_body"].as_str()?).ok()?;
    if let Some(k) = body["key"].as_str() {
        return Some(k.to_string());
    }
    let id = body["data"]["essentials"]["alertId"].as_str()?;
    Some(id.rsplit('/').next()?.to_string())
}

/// What the senders saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// Requests that got a 2xx: key -> the executions the answers named.
    pub accepted: BTreeMap<String, BTreeSet<String>>,
    /// When each key was first accepted.
    pub accepted_at: BTreeMap<String, Instant>,
    /// Requests still without a 2xx when the load stopped.
    pub unanswered: usize,
    /// 503 answers, and those of them without `Retry-After`.
    pub unavailable: usize,
    pub no_retry_after: usize,
    /// Connections cut or refused (the server was down).
    pub cut: usize,
    /// Answers no sender should get here (other 4xx and 5xx), with one example.
    pub unexpected: usize,
    pub example: Option<String>,
    /// 2xx answers that named no execution (a body cut short, or none recorded).
    pub unnamed: Vec<String>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.accepted.extend(o.accepted);
        self.accepted_at.extend(o.accepted_at);
        self.unanswered += o.unanswered;
        self.unavailable += o.unavailable;
        self.no_retry_after += o.no_retry_after;
        self.cut += o.cut;
        self.unexpected += o.unexpected;
        self.example = self.example.take().or(o.example);
        self.unnamed.extend(o.unnamed);
    }
}

/// Senders running until [`Load::stop`].
pub struct Load {
    stop: Arc<AtomicBool>,
    /// 503 answers so far, as they come.
    pub unavailable: Arc<AtomicUsize>,
    tasks: Vec<JoinHandle<Tally>>,
    pub started: Instant,
}

/// Alternates manual triggers and alerts for `schema` on the servers at `bases` (addresses
/// stay the same across restarts), from `clients` senders, each waiting `pace` between
/// requests (a steady load the engine can keep up with, not a flood). A request goes to the
/// servers in turn, and is retried on the next one, as a load balancer would.
pub fn start(bases: &[String], schema: &str, clients: usize, pace: Duration) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let unavailable = Arc::new(AtomicUsize::new(0));
    let tasks = (0..clients)
        .map(|c| {
            let (bases, schema) = (bases.to_vec(), schema.to_string());
            let (stop, seen) = (stop.clone(), unavailable.clone());
            tokio::spawn(async move { sender(c, &bases, &schema, pace, &stop, &seen).await })
        })
        .collect();
    Load {
        stop,
        unavailable,
        tasks,
        started: Instant::now(),
    }
}

impl Load {
    /// Stops sending new requests; those in flight are retried until answered or `grace`.
    pub async fn stop(self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Tally::default();
        for t in self.tasks {
            all.merge(t.await.unwrap());
        }
        all
    }
}

async fn sender(
    c: usize,
    bases: &[String],
    schema: &str,
    pace: Duration,
    stop: &AtomicBool,
    seen: &AtomicUsize,
) -> Tally {
    let http = client(Some(ADMIN_KEY));
    let mut tally = Tally::default();
    let url = |i: usize| format!("{}/api/Trigger?id={schema}", bases[i % bases.len()]);
    let mut n = 0usize;
    let mut attempt = c;
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(pace).await;
        n += 1;
        let key = format!("c{c}-{n}");
        let (body, idem) = if n.is_multiple_of(2) {
            (vm_alert(&key, "rg-chaos"), None)
        } else {
            (json!({"key": key}), Some(key.clone()))
        };
        // Retried until answered; after the stop, for at most 30 s more.
        let mut deadline = None::<Instant>;
        loop {
            if stop.load(Ordering::SeqCst) && deadline.is_none() {
                deadline = Some(Instant::now() + Duration::from_secs(30));
            }
            if deadline.is_some_and(|d| Instant::now() > d) {
                tally.unanswered += 1;
                break;
            }
            attempt += 1;
            let mut req = http
                .post(url(attempt))
                .json(&body)
                .timeout(Duration::from_secs(20));
            if let Some(k) = &idem {
                req = req.header("idempotency-key", k);
            }
            match req.send().await {
                Err(_) => tally.cut += 1,
                Ok(res) => {
                    let code = res.status().as_u16();
                    let retry_after = res.headers().contains_key("retry-after");
                    let text = res.text().await;
                    let answer: Value = text
                        .as_deref()
                        .ok()
                        .and_then(|t| serde_json::from_str(t).ok())
                        .unwrap_or(Value::Null);
                    if (200..300).contains(&code) {
                        let ids: Vec<String> = answer["executions"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|e| e["exec_id"].as_str().map(String::from))
                            .collect();
                        if ids.is_empty() {
                            tally.unnamed.push(format!("{key}: {code} {text:?}"));
                        }
                        tally.accepted.entry(key.clone()).or_default().extend(ids);
                        tally
                            .accepted_at
                            .entry(key.clone())
                            .or_insert_with(Instant::now);
                        break;
                    }
                    if code == 503 {
                        tally.unavailable += 1;
                        seen.fetch_add(1, Ordering::SeqCst);
                        tally.no_retry_after += usize::from(!retry_after);
                    } else {
                        tally.unexpected += 1;
                        tally.example.get_or_insert(format!("{code} {answer}"));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    tally
}

/// What the store holds for the senders' keys once everything ended.
#[derive(Debug, Default)]
pub struct Found {
    /// key -> executions recorded under it.
    pub by_key: BTreeMap<String, BTreeSet<String>>,
    /// Executions not terminal.
    pub stuck: Vec<String>,
    pub all: usize,
    /// Executions by status.
    pub statuses: BTreeMap<String, usize>,
}

const LIVE: [&str; 3] = ["accepted", "running", "pending"];

/// Waits up to `max` for every execution to end, then lists them all, and reads back each
/// one's key when `keys` (a request each).
pub async fn drain(s: &Server, max: Duration, keys: bool) -> Found {
    let deadline = Instant::now() + max;
    loop {
        let live = count_live(s).await;
        if live == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut found = Found::default();
    let mut cursor = String::new();
    loop {
        let (code, page) = s.get(&format!("/api/executions?limit=1000{cursor}")).await;
        assert_eq!(code, 200, "{page}");
        for item in page["items"].as_array().unwrap() {
            found.all += 1;
            let id = item["exec_id"].as_str().unwrap().to_string();
            let status = item["status"].as_str().unwrap_or_default().to_string();
            *found.statuses.entry(status).or_default() += 1;
            if LIVE.contains(&item["status"].as_str().unwrap_or_default()) {
                found.stuck.push(id.clone());
            }
            if !keys {
                continue;
            }
            let (_, e) = s.get(&format!("/api/executions/{id}")).await;
            if let Some(k) = key_of(&e) {
                found.by_key.entry(k).or_default().insert(id);
            }
        }
        match page["next"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    found
}

async fn count_live(s: &Server) -> usize {
    let mut n = 0;
    for status in LIVE {
        let (_, page) = s
            .get(&format!("/api/executions?status={status}&limit=1000"))
            .await;
        n += page["items"].as_array().map_or(0, Vec::len);
    }
    n
}

/// (lost, duplicated, found): accepted keys with no execution or not the one answered;
/// extra executions under one key; executions of accepted keys.
pub fn compare(t: &Tally, f: &Found) -> (usize, usize, usize) {
    let found = t
        .accepted
        .keys()
        .filter_map(|k| f.by_key.get(k))
        .map(BTreeSet::len)
        .sum();
    let duplicated = f.by_key.values().map(|v| v.len().saturating_sub(1)).sum();
    (missing(t, f).len(), duplicated, found)
}

/// Accepted keys with no execution stored, or not the ones their answers named: key and
/// the executions the answers named.
pub fn missing<'t>(t: &'t Tally, f: &Found) -> Vec<(&'t String, &'t BTreeSet<String>)> {
    t.accepted
        .iter()
        .filter(|(key, answered)| !f.by_key.get(*key).is_some_and(|s| answered.is_subset(s)))
        .collect()
}
