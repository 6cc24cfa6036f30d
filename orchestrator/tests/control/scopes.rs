//! Keys limited to some schemas: they run, approve, cancel and read those only; 403 names
//! the key, what it tried and its scope.

use super::*;
use common::{Env, catalog, client};
use serde_json::json;

async fn key(s: &Server, name: &str, role: &str, scope: &[&str]) -> reqwest::Client {
    let (code, k) = common::post_json(
        &s.http,
        &s.url("/api/keys"),
        &json!({"name": name, "role": role, "scope": scope}),
    )
    .await;
    assert_eq!(code, 201, "{k}");
    assert_eq!(k["scope"], json!(scope), "{k}");
    client(k["key"].as_str())
}

async fn call(c: &reqwest::Client, s: &Server, m: reqwest::Method, path: &str) -> (u16, Value) {
    crate::common::answer(c.request(m, s.url(path))).await
}

fn refused(r: &(u16, Value), what: &str) {
    assert_eq!(r.0, 403, "{}", r.1);
    assert_eq!(r.1["error"]["code"], "out_of_scope", "{}", r.1);
    let m = r.1["error"]["message"].as_str().unwrap();
    assert!(
        m.contains(what) && m.contains("\"payops\"") && m.contains("tag:payments"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_key_runs_approves_and_reads_its_schemas_only() {
    let env = Env::new(
        &catalog(&[
            r#"{"id": "pay-run", "runbook": "ok.sh", "tags": "payments,aks"}"#,
            r#"{"id": "pay-gated", "runbook": "ok.sh", "tags": ["payments"], "require_approval": true}"#,
            r#"{"id": "web-run", "runbook": "ok.sh", "tags": "web"}"#,
            r#"{"id": "web-gated", "runbook": "ok.sh", "tags": "web", "require_approval": true}"#,
        ]),
        &[("ok.sh", "echo ok\n")],
    );
    let s = env.start();
    let payops = key(&s, "payops", "operator", &["tag:payments"]).await;
    use reqwest::Method as M;

    // Runs its own schemas, not others.
    let (code, t) = call(&payops, &s, M::POST, "/api/Trigger?id=pay-run").await;
    assert_eq!(code, 202, "{t}");
    let mine = t["exec_id"].as_str().unwrap().to_string();
    refused(
        &call(&payops, &s, M::POST, "/api/Trigger?id=web-run").await,
        "may not run schema \"web-run\"",
    );

    // Approves, cancels and reads its own only.
    let web = s.trigger("web-gated").await;
    let pay = s.trigger("pay-gated").await;
    refused(
        &call(
            &payops,
            &s,
            M::POST,
            &format!("/api/executions/{web}/approve"),
        )
        .await,
        "may not approve",
    );
    refused(
        &call(
            &payops,
            &s,
            M::POST,
            &format!("/api/executions/{web}/cancel"),
        )
        .await,
        "may not cancel",
    );
    refused(
        &call(&payops, &s, M::GET, &format!("/api/executions/{web}")).await,
        "may not read",
    );
    refused(
        &call(
            &payops,
            &s,
            M::GET,
            &format!("/api/executions/{web}/output"),
        )
        .await,
        "may not read",
    );
    let (_, e) = s.get(&format!("/api/executions/{web}")).await;
    assert_eq!(e["status"], "pending", "nothing happened to it: {e}");
    let (code, r) = call(
        &payops,
        &s,
        M::POST,
        &format!("/api/executions/{pay}/approve"),
    )
    .await;
    assert_eq!((code, r["status"].as_str()), (200, Some("accepted")), "{r}");
    s.wait(&mine).await;

    // Listings show what it may read, nothing else.
    let (_, list) = call(&payops, &s, M::GET, "/api/executions?limit=100").await;
    let schemas: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["schema_id"].as_str().unwrap())
        .collect();
    assert!(
        !schemas.is_empty() && schemas.iter().all(|s| s.starts_with("pay-")),
        "{schemas:?}"
    );
    let (_, all) = s.get("/api/executions?limit=100").await;
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        3,
        "the admin sees all: {all}"
    );

    // A scope is checked when the key is made; the CLI makes scoped keys too.
    let (code, e) = common::post_json(
        &s.http,
        &s.url("/api/keys"),
        &json!({"name": "bad", "role": "operator", "scope": ["team:payments"]}),
    )
    .await;
    assert_eq!(code, 400, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expected id:"),
        "{e}"
    );
    let data = common::data_dir(&env);
    let made = common::stdout_of(
        std::process::Command::new(env!("CARGO_BIN_EXE_cloudo"))
            .args([
                "keys",
                "create",
                "--name",
                "cli-pay",
                "--role",
                "viewer",
                "--scope",
                "tag:payments,id:web-run",
            ])
            .arg("--data-dir")
            .arg(&data),
    );
    let cli = client(Some(made.trim()));
    let (code, _) = call(&cli, &s, M::GET, &format!("/api/executions/{web}")).await;
    assert_eq!(code, 403);
    let (code, _) = call(&cli, &s, M::GET, &format!("/api/executions/{mine}")).await;
    assert_eq!(code, 200);
    let listed = common::stdout_of(
        std::process::Command::new(env!("CARGO_BIN_EXE_cloudo"))
            .args(["keys", "list", "--data-dir"])
            .arg(&data),
    );
    assert!(
        listed.contains("cli-pay\tviewer") && listed.contains("scope=tag:payments, id:web-run"),
        "{listed}"
    );
}
