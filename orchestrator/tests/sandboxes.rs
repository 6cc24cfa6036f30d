//! Sandbox choice through the real binary: `auto` picks the strongest available, a schema
//! overrides it, each execution says where it ran, and limits are reported distinctly.
//! Needs test-env/setup-sandbox.sh (run by `make test`): a missing sandbox fails here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Env, catalog};

fn image() -> String {
    std::env::var("CLOUDO_TEST_IMAGE").expect("CLOUDO_TEST_IMAGE (run test-env/setup-sandbox.sh)")
}

#[tokio::test]
async fn auto_picks_docker_and_schemas_choose_their_own() {
    let env = Env::new(
        &catalog(&[
            r#"{"id": "default", "runbook": "who.sh"}"#,
            r#"{"id": "in-bwrap", "runbook": "who.sh", "sandbox": "bwrap"}"#,
            r#"{"id": "in-process", "runbook": "who.sh", "sandbox": "process"}"#,
            r#"{"id": "hog", "runbook": "hog.py", "sandbox": "bwrap", "limits": {"memory_mb": 48, "timeout": 30}}"#,
            r#"{"id": "docker-hog", "runbook": "hog.py", "limits": {"memory_mb": 48}}"#,
            r#"{"id": "slow", "runbook": "slow.sh", "sandbox": "bwrap", "limits": {"timeout": 1}}"#,
        ]),
        &[
            ("who.sh", "id -u\n"),
            ("hog.py", "b = bytearray(400 << 20)\nprint(len(b))\n"),
            ("slow.sh", "sleep 30\n"),
        ],
    )
    .arg("--sandbox")
    .arg("auto")
    .arg("--sandbox-image")
    .arg(&image())
    .arg("--kill-grace")
    .arg("1");
    let s = env.start();
    assert!(
        s.logs().contains("sandbox chosen") && s.logs().contains("\"default\":\"docker\""),
        "{}",
        s.logs()
    );

    for (id, sandbox, uid) in [
        ("default", "docker", "65534"),
        ("in-bwrap", "bwrap", "65534"),
        ("in-process", "process", "0"),
    ] {
        let e = s.wait(&s.trigger(id).await).await;
        assert_eq!(e["status"], "succeeded", "{id}: {e}");
        assert_eq!(e["sandbox"], sandbox, "{id}");
        assert_eq!(e["output"].as_str().unwrap().trim(), uid, "{id}");
    }
    for id in ["hog", "docker-hog"] {
        let e = s.wait(&s.trigger(id).await).await;
        assert_eq!(
            (e["status"].as_str(), e["oom"].as_bool()),
            (Some("failed"), Some(true)),
            "{id}: {e}"
        );
        assert!(
            e["error"]
                .as_str()
                .unwrap()
                .contains("out of memory (the 48 MiB limit; oom)"),
            "{id}: {e}"
        );
    }
    let e = s.wait(&s.trigger("slow").await).await;
    assert_eq!(e["status"], "timeout", "{e}");
    assert_eq!(e["sandbox"], "bwrap");
}
