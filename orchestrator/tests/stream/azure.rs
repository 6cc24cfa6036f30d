//! The live stream on a replica that neither queued nor hears the run: a standalone
//! worker reports to orchestrator A; a browser follows the run on orchestrator B. The
//! output arrives through the shared store (Azurite), live and in order.

use std::time::Duration;

use crate::common::azure::{Worker, on_azure, uuid_like, worker_key};
use crate::common::{Env, catalog};
use crate::sse::text;
use crate::{SLOW, open};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn output_reaches_a_stream_on_another_orchestrator_through_the_store() {
    let prefix = format!("sse{}", uuid_like());
    let env = || {
        on_azure(
            Env::new(
                &catalog(&[r#"{"id": "slow", "runbook": "slow.sh", "worker": "remote"}"#]),
                &[("slow.sh", SLOW)],
            ),
            &prefix,
        )
    };
    let (env_a, env_b) = (env(), env());
    let (a, b) = (env_a.start(), env_b.start());
    let key = worker_key(&a, "sse-remote", "remote").await;
    let runbooks = env_a.path().join("runbooks");
    let _w = Worker::start(&runbooks, &prefix, "remote", &a.base, &key);
    let id = a.trigger("slow").await;
    let events = open(&b, &b.http, &id, None).await.rest().await;
    let end = events.last().unwrap();
    assert_eq!(end.event, "end");
    assert_eq!(end.data["status"], "succeeded", "{:?}", end.data);
    assert_eq!(
        text(&events, 0),
        "first line\nline 2\nline 3\nline 4\nünïcødé end\n"
    );
    let first = events.iter().find(|e| e.event == "output").unwrap();
    assert!(
        first.data["text"]
            .as_str()
            .unwrap()
            .starts_with("first line")
            && end.at.duration_since(first.at) >= Duration::from_millis(1500),
        "the first line came with the rest, not live: {events:?}"
    );
}
