//! Schedules through the real binary: a schema's own cron and the schedules file's entries
//! run once per tick with their initiator, arguments and tick; the API shows next and last
//! runs and changes entries (admin only); missed ticks catch up once or are skipped; two
//! orchestrators on one Azure store run each tick once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod azure;
#[path = "../common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use common::{Env, Server, catalog};
use serde_json::{Value, json};

const ECHO: &str = "echo \"args: $* at ${CLOUDO_SCHEDULED_AT:-}\"\n";

/// The scheduled executions of `initiator`, as (tick, execution), oldest first.
async fn scheduled(s: &Server, schema: &str, initiator: &str) -> Vec<(DateTime<Utc>, Value)> {
    let (code, page) = s
        .get(&format!("/api/executions?schema_id={schema}&limit=500"))
        .await;
    assert_eq!(code, 200, "{page}");
    let mut out: Vec<(DateTime<Utc>, Value)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["initiator"] == initiator)
        .map(|e| {
            let tick = e["env"]["CLOUDO_SCHEDULED_AT"].as_str().expect("tick");
            (
                DateTime::parse_from_rfc3339(tick)
                    .unwrap()
                    .with_timezone(&Utc),
                e.clone(),
            )
        })
        .collect();
    out.sort_by_key(|(t, _)| *t);
    out
}

/// Ticks are distinct and one second apart.
fn consecutive(ticks: &[DateTime<Utc>]) {
    let distinct: BTreeSet<_> = ticks.iter().collect();
    assert_eq!(distinct.len(), ticks.len(), "a tick ran twice: {ticks:?}");
    for w in ticks.windows(2) {
        assert_eq!(
            (w[1] - w[0]).num_seconds(),
            1,
            "a tick was missed: {ticks:?}"
        );
    }
}

#[tokio::test]
async fn schedules_run_every_tick_once_and_the_api_shows_and_changes_them() {
    let env = Env::new(
        &catalog(&[
            r#"{"id": "echo", "runbook": "echo.sh", "run_args": "from-schema"}"#,
            r#"{"id": "own", "runbook": "echo.sh", "schedule": "*/2 * * * * *", "schedule_tz": "Europe/Berlin"}"#,
            r#"{"id": "off", "runbook": "echo.sh", "enabled": false}"#,
        ]),
        &[("echo.sh", ECHO)],
    );
    std::fs::write(
        env.path().join("schedules.yaml"),
        "schedules:\n  - id: every-second\n    schema: echo\n    cron: \"* * * * * *\"\n    run_args: from-schedule\n  - id: of-a-disabled-schema\n    schema: \"off\"\n    cron: \"* * * * * *\"\n",
    )
    .unwrap();
    let file = env.path().join("schedules.yaml");
    let env = env.arg("--schedules").arg(file.to_str().unwrap());
    let s = env.start();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let runs = scheduled(&s, "echo", "schedule:every-second").await;
    assert!(runs.len() >= 3, "{} runs", runs.len());
    consecutive(&runs.iter().map(|(t, _)| *t).collect::<Vec<_>>());
    let last = &runs.last().unwrap().1;
    let e = s.wait(last["exec_id"].as_str().unwrap()).await;
    assert_eq!(e["status"], "succeeded", "{e}");
    assert!(
        e["output"]
            .as_str()
            .unwrap()
            .contains("args: from-schedule at 20"),
        "{e}"
    );
    let own = scheduled(&s, "own", "schedule:own").await;
    assert!(!own.is_empty());
    assert!(own.iter().all(|(t, _)| t.second() % 2 == 0), "{own:?}");
    // A disabled schema's ticks pass: no skipped execution per tick.
    let (_, off) = s.get("/api/executions?schema_id=off").await;
    assert_eq!(off["items"].as_array().unwrap().len(), 0, "{off}");

    let (code, list) = s.get("/api/schedules").await;
    assert_eq!(code, 200, "{list}");
    assert!(list["file"].as_str().unwrap().ends_with("schedules.yaml"));
    let every = list["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "every-second")
        .unwrap();
    assert_eq!(
        (every["source"].as_str(), every["tz"].as_str()),
        (Some("schedules"), Some("UTC"))
    );
    assert!(every["next_run"].as_str().is_some(), "{every}");
    assert!(every["last_run"]["exec_id"].as_str().is_some(), "{every}");
    let (_, own) = s.get("/api/schedules/own").await;
    assert_eq!(
        (own["source"].as_str(), own["tz"].as_str()),
        (Some("schema"), Some("Europe/Berlin"))
    );

    // Changes: admins only; checked; a schema's own schedule belongs to the catalog.
    let put = |id: &str, body: Value| {
        let (http, url) = (s.http.clone(), s.url(&format!("/api/schedules/{id}")));
        async move {
            let res = http.put(url).json(&body).send().await.unwrap();
            let code = res.status().as_u16();
            (code, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (code, body) = put("nightly", json!({"schema": "echo", "cron": "0 3 * * *", "tz": "America/New_York", "catch_up": "skip"})).await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body["next_run"].as_str().unwrap().contains("T08:00:00"),
        "03:00 in New York in winter: {body}"
    );
    let (code, body) = put("bad", json!({"schema": "echo", "cron": "* * *"})).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
    let (code, body) = put("nope", json!({"schema": "missing", "cron": "* * * * *"})).await;
    assert_eq!(code, 400, "{body}");
    let (code, body) = put("own", json!({"schema": "own", "cron": "* * * * *"})).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (409, Some("defined_by_schema")),
        "{body}"
    );
    let viewer = common::client(Some(&mint(&s, "viewer").await));
    let res = viewer
        .put(s.url("/api/schedules/x"))
        .json(&json!({"schema": "echo", "cron": "* * * * *"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        viewer
            .get(s.url("/api/schedules/nightly"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let del = s
        .http
        .delete(s.url("/api/schedules/every-second"))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    let del = s
        .http
        .delete(s.url("/api/schedules/every-second"))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 404);
    let (code, _) = s.get("/api/schedules/every-second").await;
    assert_eq!(code, 404);
    // Deleted: no more runs.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = scheduled(&s, "echo", "schedule:every-second").await.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        scheduled(&s, "echo", "schedule:every-second").await.len(),
        before
    );
}

/// A key with `role`, made through the API.
async fn mint(s: &Server, role: &str) -> String {
    let (code, body) = common::post_json(
        &s.http,
        &s.url("/api/keys"),
        &json!({"name": format!("{role}-key"), "role": role}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    body["key"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn ticks_missed_while_stopped_catch_up_once_or_are_skipped() {
    // Once a minute, at a second a few seconds from now: it passes while the server is down.
    let second = (Utc::now() + chrono::Duration::seconds(5)).second();
    let cron = format!("{second} * * * * *");
    let env = Env::new(
        &catalog(&[r#"{"id": "echo", "runbook": "echo.sh"}"#]),
        &[("echo.sh", ECHO)],
    );
    std::fs::write(
        env.path().join("schedules.json"),
        json!({"schedules": [
            {"id": "catch", "schema": "echo", "cron": cron},
            {"id": "skip", "schema": "echo", "cron": cron, "catch_up": "skip"},
        ]})
        .to_string(),
    )
    .unwrap();
    let file = env.path().join("schedules.json");
    let env = env.arg("--schedules").arg(file.to_str().unwrap());
    let mut s = env.start();
    // New schedules start from now: nothing ran for the past.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(scheduled(&s, "echo", "schedule:catch").await.is_empty());
    assert!(s.stop().success());
    // The tick passes while nothing runs, and is well in the past at the restart.
    tokio::time::sleep(Duration::from_secs(9)).await;
    let s = env.start();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let caught = scheduled(&s, "echo", "schedule:catch").await;
    assert_eq!(caught.len(), 1, "one catch-up run: {caught:?}");
    assert_eq!(caught[0].0.second(), second);
    assert!(scheduled(&s, "echo", "schedule:skip").await.is_empty());
    assert!(s.logs().contains("catch_up: skip"), "the skip is logged");
    let (_, skip) = s.get("/api/schedules/skip").await;
    assert!(skip["last_run"].is_null(), "{skip}");
}
