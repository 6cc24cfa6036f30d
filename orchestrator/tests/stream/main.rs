//! `GET /api/executions/{id}/stream`, through the real binary: output lines arrive while
//! the runbook runs, in order; a reconnect with `Last-Event-ID` misses nothing and repeats
//! nothing; the stream ends when the execution does; roles and scopes apply.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod azure;
#[path = "../common/mod.rs"]
mod common;
mod sse;

use std::time::Duration;

use common::{Env, catalog};
use serde_json::json;
use sse::{Reader, text};

/// Prints a line, waits, prints more: the first line must be seen long before the end.
const SLOW: &str = "echo 'first line'\nsleep 2\nfor i in 2 3 4; do echo \"line $i\"; sleep 0.2; done\necho 'ünïcødé end'\n";

async fn open(s: &common::Server, http: &reqwest::Client, id: &str, last: Option<&str>) -> Reader {
    let mut req = http.get(s.url(&format!("/api/executions/{id}/stream")));
    if let Some(l) = last {
        req = req.header("last-event-id", l);
    }
    Reader::new(req.send().await.unwrap())
}

fn env() -> Env {
    Env::new(
        &catalog(&[
            r#"{"id": "slow", "runbook": "slow.sh", "tags": "a"}"#,
            r#"{"id": "other", "runbook": "slow.sh", "tags": "b"}"#,
        ]),
        &[("slow.sh", SLOW)],
    )
}

#[tokio::test]
async fn output_streams_live_in_order_and_the_stream_ends_with_the_run() {
    let env = env();
    let s = env.start();
    let id = s.trigger("slow").await;
    let mut r = open(&s, &s.http, &id, None).await;
    let events = r.rest().await;
    let kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"status"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"end"), "{kinds:?}");
    let end = events.last().unwrap();
    assert_eq!(end.data["status"], "succeeded", "{:?}", end.data);
    let all = text(&events, 0);
    assert_eq!(all, "first line\nline 2\nline 3\nline 4\nünïcødé end\n");
    // The first line came while the runbook still slept: well before the end.
    let first = events
        .iter()
        .find(|e| e.event == "output")
        .expect("an output event");
    assert!(
        first.data["text"]
            .as_str()
            .unwrap()
            .starts_with("first line")
    );
    assert!(
        end.at.duration_since(first.at) >= Duration::from_millis(1500),
        "the first line arrived {:?} before the end: not live",
        end.at.duration_since(first.at)
    );
    // Statuses in order, `running` seen before the first line.
    let statuses: Vec<&str> = events
        .iter()
        .filter(|e| e.event == "status")
        .map(|e| e.data["status"].as_str().unwrap())
        .collect();
    assert!(statuses.contains(&"running"), "{statuses:?}");
    // The log through the API is exactly what was streamed; ids are byte offsets.
    let (_, out) = s.get(&format!("/api/executions/{id}/output")).await;
    assert_eq!(out["data"].as_str(), Some(all.as_str()));
    assert_eq!(end.id.as_deref(), Some(all.len().to_string().as_str()));

    // A stream opened after the end sends the status, the whole log, and the end.
    let again = open(&s, &s.http, &id, None).await.rest().await;
    assert_eq!(text(&again, 0), all);
    assert_eq!(again.last().unwrap().event, "end");
}

#[tokio::test]
async fn a_reconnect_with_last_event_id_misses_nothing_and_repeats_nothing() {
    let env = env();
    let s = env.start();
    let id = s.trigger("slow").await;
    let mut r = open(&s, &s.http, &id, None).await;
    let mut before = Vec::new();
    loop {
        let ev = r.next().await.expect("an output event before the end");
        let out = ev.event == "output";
        before.push(ev);
        if out {
            break;
        }
    }
    // The connection drops while the runbook runs.
    drop(r);
    let last = before.last().unwrap().id.clone().unwrap();
    let after = open(&s, &s.http, &id, Some(&last)).await.rest().await;
    assert_eq!(
        after.first().unwrap().event,
        "status",
        "the status again first"
    );
    assert_eq!(after.last().unwrap().event, "end");
    let whole = format!(
        "{}{}",
        text(&before, 0),
        text(&after, last.parse().unwrap())
    );
    assert_eq!(whole, "first line\nline 2\nline 3\nline 4\nünïcødé end\n");

    // ?offset= does the same for clients that cannot set the header.
    let res = s
        .http
        .get(s.url(&format!("/api/executions/{id}/stream?offset={last}")))
        .send()
        .await
        .unwrap();
    let tail = Reader::new(res).rest().await;
    assert_eq!(
        text(&tail, last.parse().unwrap()),
        text(&after, last.parse().unwrap())
    );

    // A Last-Event-ID that is not an offset: 400 with the JSON error.
    let res = s
        .http
        .get(s.url(&format!("/api/executions/{id}/stream")))
        .header("last-event-id", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
}

#[tokio::test]
async fn a_viewer_key_streams_no_key_is_refused_and_scopes_apply() {
    let env = env();
    let s = env.start();
    let id = s.trigger("slow").await;
    let (code, viewer) = common::post_json(
        &s.http,
        &s.url("/api/keys"),
        &json!({"name": "v", "role": "viewer"}),
    )
    .await;
    assert_eq!(code, 201, "{viewer}");
    let v = common::client(viewer["key"].as_str());
    let events = open(&s, &v, &id, None).await.rest().await;
    assert_eq!(events.last().unwrap().event, "end");

    let anon = common::client(None);
    let res = anon
        .get(s.url(&format!("/api/executions/{id}/stream")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let (_, scoped) = common::post_json(
        &s.http,
        &s.url("/api/keys"),
        &json!({"name": "b-only", "role": "viewer", "scope": ["tag:b"]}),
    )
    .await;
    let b = common::client(scoped["key"].as_str());
    let res = b
        .get(s.url(&format!("/api/executions/{id}/stream")))
        .send()
        .await
        .unwrap();
    assert!(
        [403, 404].contains(&res.status().as_u16()),
        "{}",
        res.status()
    );
    let res = s
        .http
        .get(s.url("/api/executions/00000000000000000000000000/stream"))
        .send()
        .await
        .unwrap();
    assert!([400, 404].contains(&res.status().as_u16()));
}
