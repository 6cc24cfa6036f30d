//! A concurrency limit held across two orchestrators and two standalone workers sharing
//! Azure Storage (Azurite).

use crate::common::azure::{Worker, on_azure, uuid_like, worker_key};
use crate::common::{Env, catalog};
use crate::{STAMP, overlap, span};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_at_a_time_across_orchestrators_and_standalone_workers() {
    let prefix = format!("lim{}", uuid_like());
    let env = || {
        on_azure(
            Env::new(
                &catalog(&[
                    r#"{"id": "serial", "runbook": "stamp.sh", "worker": "alpha", "max_concurrency": 1}"#,
                ]),
                &[("stamp.sh", STAMP)],
            ),
            &prefix,
        )
    };
    let (env_a, env_b) = (env(), env());
    let (a, b) = (env_a.start(), env_b.start());
    let key = worker_key(&a, "lim-alpha", "alpha").await;
    let orchestrators = format!("{},{}", a.base, b.base);
    let runbooks = env_a.path().join("runbooks");
    let _w1 = Worker::start(&runbooks, &prefix, "alpha", &orchestrators, &key);
    let _w2 = Worker::start(&runbooks, &prefix, "alpha", &orchestrators, &key);
    let mut ids = Vec::new();
    for n in 0..4 {
        let s = if n % 2 == 0 { &a } else { &b };
        ids.push(s.trigger("serial").await);
    }
    let mut spans = Vec::new();
    for id in &ids {
        let e = a.wait(id).await;
        assert_eq!(e["status"], "succeeded", "{e}");
        spans.push(span(&e));
    }
    for (i, x) in spans.iter().enumerate() {
        for y in spans.iter().skip(i + 1) {
            assert!(!overlap(*x, *y), "two runs overlapped: {spans:?}");
        }
    }
}
