//! Property-based fuzzing, through the real binary, of the two entry points whose input
//! comes from outside with a signature instead of a key: Slack's action payloads (signed
//! with the signing secret, so the parser behind the check is reached) and the approval
//! links of messages. Whatever comes in, the answer is a 2xx or a 4xx with the JSON error
//! body, never a 500; a forged or unsigned one decides nothing; the server stays up.
//! `make test` runs a short pass; `make fuzz` a long one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Env, Server, catalog};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

const SECRET: &str = "slack-signing-secret-for-the-fuzz-test";

struct World {
    rt: tokio::runtime::Runtime,
    server: Server,
    /// An execution waiting for approval, so some payloads name a real one.
    pending: String,
    _env: Env,
}

impl World {
    /// A server per test (a static one would outlive the test binary).
    fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let env = Env::new(
            &catalog(&[r#"{"id": "gated", "runbook": "ok.sh", "require_approval": true}"#]),
            &[("ok.sh", "echo ok\n")],
        )
        .env("CLOUDO_SLACK_SIGNING_SECRET", SECRET);
        let server = env.start();
        let pending = rt.block_on(server.trigger("gated"));
        World {
            rt,
            server,
            pending,
            _env: env,
        }
    }
}

fn runner() -> TestRunner {
    TestRunner::new(ProptestConfig {
        cases: cases(),
        ..ProptestConfig::default()
    })
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256)
        .min(5_000)
}

/// POSTs `body` to the Slack actions route, signed (or not) as Slack would.
fn slack(w: &World, body: &[u8], signed: bool) -> (u16, String) {
    let ts = chrono::Utc::now().timestamp();
    let sig = common::slack_signature(SECRET, ts, body);
    let mut req = w
        .server
        .http
        .post(w.server.url("/api/integrations/slack/actions"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_vec());
    if signed {
        req = req
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", sig);
    }
    w.rt.block_on(async {
        let res = req.send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    })
}

/// A block_actions payload like Slack's, its parts chosen by the fuzzer.
fn payload() -> impl Strategy<Value = Value> {
    let action_id = prop_oneof![
        Just("cloudo_approve".to_string()),
        Just("cloudo_reject".to_string()),
        "\\PC{0,12}",
    ];
    let value = prop_oneof![
        Just(None),
        Just(Some("PENDING".to_string())),
        Just(Some("01a20047-ed88-7272-ba6c-fec97cd44c93".to_string())),
        "\\PC{0,40}".prop_map(Some),
    ];
    let kind = prop_oneof![Just("block_actions".to_string()), "\\PC{0,12}"];
    let url = prop_oneof![
        Just(None),
        Just(Some("http://127.0.0.1:9/respond".to_string())),
        "\\PC{0,30}".prop_map(Some),
    ];
    (kind, "\\PC{0,12}", action_id, value, url, any::<bool>()).prop_map(
        |(kind, user, action_id, value, url, drop_user)| {
            let mut p = json!({
                "type": kind,
                "user": {"id": user, "username": "u"},
                "actions": [{"action_id": action_id, "value": value, "type": "button"}],
                "response_url": url,
                "team": {"id": "T1"},
            });
            if drop_user {
                p.as_object_mut().unwrap().remove("user");
            }
            p
        },
    )
}

fn form(payload: &str) -> Vec<u8> {
    serde_urlencoded::to_string([("payload", payload)])
        .unwrap()
        .into_bytes()
}

fn check(code: u16, body: &str) -> Result<(), TestCaseError> {
    // 503 is Slack's own answer when who may approve cannot be checked (no Slack API
    // here); a 500 is always a defect.
    prop_assert!(code < 500 || code == 503, "{code}: {body}");
    if code >= 400 {
        let v: Value = serde_json::from_str(body)
            .map_err(|e| TestCaseError::fail(format!("{code} not JSON ({e}): {body}")))?;
        prop_assert!(v["error"]["code"].is_string(), "{body}");
    }
    Ok(())
}

#[test]
fn signed_slack_payloads_never_fail_the_server() {
    let w = World::start();
    let strategy = (payload(), "\\PC{0,60}", 0u8..3);
    runner()
        .run(&strategy, |(p, raw, which)| {
            let text = p.to_string().replace("PENDING", &w.pending);
            let body = match which {
                0 => form(&text),
                1 => form(&raw),
                _ => raw.clone().into_bytes(),
            };
            let (code, answer) = slack(&w, &body, true);
            check(code, &answer)
        })
        .unwrap();
    healthy(&w);
}

#[test]
fn unsigned_slack_payloads_are_refused() {
    let w = World::start();
    runner()
        .run(&payload(), |p| {
            let (code, answer) = slack(&w, &form(&p.to_string()), false);
            prop_assert_eq!(code, 401, "{}", answer);
            Ok(())
        })
        .unwrap();
    healthy(&w);
}

#[test]
fn forged_approval_links_decide_nothing() {
    let w = World::start();
    let strategy = (
        prop_oneof![Just("PENDING".to_string()), "[0-9a-f-]{0,40}", "\\PC{0,20}"],
        prop_oneof![
            Just("approve".to_string()),
            Just("reject".to_string()),
            "[a-z]{0,10}"
        ],
        prop_oneof![
            Just(None),
            any::<i64>().prop_map(Some),
            Just(Some(4_102_444_800i64))
        ],
        prop_oneof![
            Just(None),
            "[0-9a-f]{64}".prop_map(Some),
            "\\PC{0,70}".prop_map(Some)
        ],
        any::<bool>(),
    );
    runner()
        .run(&strategy, |(id, decision, expires, sig, post)| {
            let id = id.replace("PENDING", &w.pending);
            let mut q: Vec<(&str, String)> = Vec::new();
            if let Some(e) = expires {
                q.push(("expires", e.to_string()));
            }
            if let Some(s) = &sig {
                q.push(("sig", s.clone()));
            }
            let path = format!("/api/approvals/{}/{}", urlencode(&id), urlencode(&decision));
            let url = format!(
                "{}?{}",
                w.server.url(&path),
                serde_urlencoded::to_string(&q).unwrap()
            );
            let code = w.rt.block_on(async {
                let http = reqwest::Client::new();
                let req = if post {
                    http.post(&url)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body("comment=x")
                } else {
                    http.get(&url)
                };
                req.send().await.unwrap().status().as_u16()
            });
            prop_assert!((400..500).contains(&code), "{path}?{q:?}: {code}");
            Ok(())
        })
        .unwrap();
    // Nothing was decided through a forged link.
    let (_, e) =
        w.rt.block_on(w.server.get(&format!("/api/executions/{}", w.pending)));
    assert_eq!(e["status"], "pending", "{e}");
    healthy(&w);
}

/// The server still answers.
fn healthy(w: &World) {
    let (code, _) = w.rt.block_on(w.server.get("/api/healthz"));
    assert_eq!(code, 200);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
