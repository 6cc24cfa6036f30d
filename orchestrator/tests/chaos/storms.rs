//! Storms: one alert delivered ten thousand times, an alert storm over many resources
//! against a schema's limits, and one huge Alertmanager group.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{ADMIN_KEY, Env, Server, alertmanager_group, client, stored_bytes};
use crate::crash::{leftovers, prepared, secrets_in};
use crate::load::{self, vm_alert};
use crate::report::{Row, pick};

fn start(entity: &str, runbook: &str) -> (Env, Server) {
    let env = prepared(&[entity], &[("run.sh", runbook)]);
    let s = env.start();
    (env, s)
}

/// Posts every body of `bodies` from `clients` senders; the answers (status, body).
async fn post_all(s: &Server, path: &str, bodies: Vec<Value>, clients: usize) -> Vec<(u16, Value)> {
    let url = s.url(path);
    let queue = Arc::new(std::sync::Mutex::new(
        bodies.into_iter().enumerate().collect::<Vec<_>>(),
    ));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (url, queue) = (url.clone(), queue.clone());
            tokio::spawn(async move {
                let http = client(Some(ADMIN_KEY));
                let mut out = Vec::new();
                loop {
                    let Some((i, body)) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    out.push((i, crate::common::post_json(&http, &url, &body).await));
                }
                out
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, a)| a).collect()
}

fn exec_ids(answer: &Value) -> impl Iterator<Item = String> + '_ {
    answer["executions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["exec_id"].as_str().map(String::from))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_deliveries_of_one_alert_make_one_execution() {
    let _serial = crate::report::serial().await;
    let (env, mut s) = start(
        r#"{"id": "restart", "runbook": "run.sh"}"#,
        "echo restarted\n",
    );
    let n = pick(10_000, 50_000);
    let clients = 32;
    let alert = vm_alert("same-alert", "rg-1");
    let t = Instant::now();
    let answers = post_all(&s, "/api/Trigger?id=restart", vec![alert; n], clients).await;
    let took = t.elapsed();
    let codes: BTreeMap<u16, usize> = answers.iter().fold(BTreeMap::new(), |mut m, (c, _)| {
        *m.entry(*c).or_default() += 1;
        m
    });
    let named: BTreeSet<String> = answers.iter().flat_map(|(_, a)| exec_ids(a)).collect();
    let f = load::drain(&s, Duration::from_secs(60), true).await;
    let stored = f.by_key.get("same-alert").map_or(0, BTreeSet::len);

    let mut row = Row::new("storm-one-alert");
    row.load = format!(
        "{n} deliveries of one Azure alert from {clients} clients in {:.1} s",
        took.as_secs_f64()
    );
    row.faults = "duplicates and retries of one delivery, all at once".into();
    row.accepted = answers
        .iter()
        .filter(|(c, _)| (200..300).contains(c))
        .count();
    row.found = stored;
    row.lost = usize::from(stored == 0);
    row.duplicated = stored.saturating_sub(1) + named.len().saturating_sub(1);
    row.stuck = f.stuck.len();
    row.violations = n - row.accepted + usize::from(codes.get(&202) != Some(&1));
    row.notes = format!(
        "answers by status: {codes:?}; {} executions named",
        named.len()
    );
    s.stop();
    row.secrets = secrets_in(&s);
    row.leftovers = leftovers(&env, &[s.child.id()]).0;
    row.finish();
}

/// (start, end) of a run, from its output.
fn span(e: &Value) -> Option<(f64, f64)> {
    let out = e["output"].as_str()?;
    let at = |word: &str| -> Option<f64> {
        out.lines()
            .find_map(|l| l.strip_prefix(word))?
            .trim()
            .parse()
            .ok()
    };
    Some((at("start ")?, at("end ")?))
}

/// The most runs that were running at once.
fn max_overlap(spans: &[(f64, f64)]) -> usize {
    let mut edges: Vec<(f64, i32)> = spans
        .iter()
        .flat_map(|(a, b)| [(*a, 1), (*b, -1)])
        .collect();
    // Ends before starts at the same instant: a slot freed and taken is not an overlap.
    edges.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    let (mut now, mut max) = (0, 0);
    for (_, d) in edges {
        now += d;
        max = max.max(now);
    }
    max as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_storm_over_many_resources_holds_the_limits_and_drains() {
    let _serial = crate::report::serial().await;
    let (resources, per_hour, slots) = pick((1_000, 100, 3), (5_000, 400, 4));
    let entity = format!(
        r#"{{"id": "restart", "runbook": "run.sh", "max_concurrency": {slots}, "concurrency_key": "RESOURCE_RG", "max_runs_per_hour": {per_hour}}}"#
    );
    let stamp = "echo \"start $(date +%s.%N)\"\nsleep 0.05\necho \"end $(date +%s.%N)\"\n";
    let (env, mut s) = start(&entity, stamp);
    let alerts: Vec<Value> = (0..resources)
        .map(|i| vm_alert(&format!("vm-{i:05}"), "rg-storm"))
        .collect();
    let t = Instant::now();
    let answers = post_all(&s, "/api/Trigger?id=restart", alerts, 16).await;
    let took = t.elapsed();
    let f = load::drain(&s, Duration::from_secs(pick(120, 600)), true).await;
    let drained = t.elapsed();

    let mut spans = Vec::new();
    let (mut ran, mut rate_skips, mut other) = (0, 0, BTreeMap::<String, usize>::new());
    for ids in f.by_key.values() {
        for id in ids {
            let (_, e) = s.get(&format!("/api/executions/{id}")).await;
            let status = e["status"].as_str().unwrap_or_default();
            let reason = e["error"].as_str().unwrap_or_default();
            match status {
                "succeeded" => {
                    ran += 1;
                    spans.extend(span(&e));
                }
                "skipped" if reason.starts_with("rate_limited") => rate_skips += 1,
                _ => *other.entry(format!("{status}: {reason}")).or_default() += 1,
            }
        }
    }
    let overlap = max_overlap(&spans);
    let mut row = Row::new("storm-many-resources");
    row.load = format!(
        "{resources} Azure alerts on {resources} VMs from 16 clients in {:.1} s",
        took.as_secs_f64()
    );
    row.faults = format!(
        "a storm against max_concurrency {slots} (one resource group) and max_runs_per_hour {per_hour}"
    );
    row.accepted = answers
        .iter()
        .filter(|(c, _)| (200..300).contains(c))
        .count();
    let t = load::Tally {
        accepted: answers
            .iter()
            .zip(0..)
            .filter(|((c, _), _)| (200..300).contains(c))
            .map(|((_, a), i)| (format!("vm-{i:05}"), exec_ids(a).collect()))
            .collect(),
        ..load::Tally::default()
    };
    let (lost, duplicated, found) = load::compare(&t, &f);
    (row.found, row.lost, row.duplicated, row.stuck) = (found, lost, duplicated, f.stuck.len());
    row.violations = (resources - row.accepted)
        + usize::from(ran != per_hour)
        + usize::from(overlap > slots)
        + usize::from(spans.len() != ran)
        + other.values().sum::<usize>();
    row.notes = format!(
        "{ran} ran (limit {per_hour}), {rate_skips} skipped rate_limited, other: {other:?}; at most {overlap} at once (limit {slots}); drained in {:.1} s",
        drained.as_secs_f64()
    );
    s.stop();
    row.secrets = secrets_in(&s);
    row.leftovers = leftovers(&env, &[s.child.id()]).0;
    row.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_thousand_alert_group_is_bounded_in_storage_and_time() {
    let _serial = crate::report::serial().await;
    let (env, mut s) = start(
        r#"{"id": "pod", "runbook": "run.sh"}"#,
        "echo \"$AKS_POD\"\n",
    );
    let n = 5_000;
    let body = alertmanager_group(n);
    let before = stored_bytes(&env);
    let t = Instant::now();
    let res = s
        .http
        .post(s.url("/api/webhooks/alertmanager?id=pod"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let took = t.elapsed();
    let code = res.status().as_u16();
    let ack: Value = res.json().await.unwrap();
    let named: BTreeSet<String> = ack["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(exec_ids)
        .collect();
    let recorded = stored_bytes(&env).saturating_sub(before);
    let t = Instant::now();
    let f = load::drain(&s, Duration::from_secs(300), false).await;
    let ran = t.elapsed();
    let grown = stored_bytes(&env).saturating_sub(before);

    let mut row = Row::new("alertmanager-group-5000");
    row.load = format!(
        "one Alertmanager group of {n} alerts ({} KB)",
        body.len() / 1000
    );
    row.faults = "the largest group --max-alerts allows".into();
    row.accepted = if code == 202 { named.len() } else { 0 };
    row.found = f.all;
    row.lost = named.len().saturating_sub(f.all) + n.saturating_sub(named.len());
    row.duplicated = f.all.saturating_sub(n);
    row.stuck = f.stuck.len();
    // Bounded: one copy of the body and a small record per alert (not the body per alert:
    // that was 5000 x 1.4 MB); answered before a sender would time out (Alertmanager: 10 s).
    // Running them adds their output and transitions, and the write-ahead log (up to its
    // 64 MiB limit between checkpoints).
    row.violations = usize::from(recorded > 48 << 20)
        + usize::from(grown > 160 << 20)
        + usize::from(took > Duration::from_secs(10));
    row.notes = format!(
        "answered {code} in {:.2} s with {} MB recorded; the runs took {:.0} s, {} MB stored in all (data dir, with the write-ahead log)",
        took.as_secs_f64(),
        recorded >> 20,
        ran.as_secs_f64(),
        grown >> 20
    );
    s.stop();
    row.secrets = secrets_in(&s);
    row.leftovers = leftovers(&env, &[s.child.id()]).0;
    row.finish();
}
