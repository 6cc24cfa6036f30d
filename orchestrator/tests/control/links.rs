//! Signed approval links: a preview decides nothing, the page's button does, once; altered
//! and expired links are refused with a page that says so.

use super::*;
use common::{Env, catalog, client};
use serde_json::json;

async fn key(s: &Server, name: &str, role: &str) -> reqwest::Client {
    let (code, k) = common::post_json(
        &s.http,
        &s.url("/api/keys"),
        &json!({"name": name, "role": role}),
    )
    .await;
    assert_eq!(code, 201, "{k}");
    client(k["key"].as_str())
}

/// A request's links, as an operator sees them.
async fn links(op: &reqwest::Client, s: &Server, id: &str) -> (String, String) {
    let e: Value = op
        .get(s.url(&format!("/api/executions/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let a = &e["approval"];
    (
        a["approve_url"].as_str().expect("approve_url").to_string(),
        a["reject_url"].as_str().expect("reject_url").to_string(),
    )
}

async fn page(c: &reqwest::Client, method: reqwest::Method, url: &str) -> (u16, String) {
    let mut req = c.request(method.clone(), url);
    if method == reqwest::Method::POST {
        // What a browser sends for the page's form.
        req = req
            .header("content-type", "application/x-www-form-urlencoded")
            .body("comment=fine+by+me");
    }
    let res = req.send().await.unwrap();
    let code = res.status().as_u16();
    assert_eq!(res.headers()["cache-control"], "no-store");
    (code, res.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_decide_once_on_the_pages_button_only() {
    let env = Env::new(
        &catalog(&[
            r#"{"id": "gated", "name": "restart <web>", "runbook": "say.sh", "run_args": "now", "require_approval": true}"#,
            r#"{"id": "brief", "runbook": "say.sh", "require_approval": true, "approval_timeout": 1}"#,
        ]),
        &[("say.sh", "echo \"said $*\"\n")],
    );
    let s = env.start();
    let (bob, viewer, nobody) = (
        key(&s, "bob", "operator").await,
        key(&s, "val", "viewer").await,
        client(None),
    );
    let id = s.trigger("gated").await;
    let (approve, reject) = links(&bob, &s, &id).await;
    assert!(
        approve.starts_with(&s.url(&format!("/api/approvals/{id}/approve?expires="))),
        "{approve}"
    );
    let seen: Value = viewer
        .get(s.url(&format!("/api/executions/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        seen["approval"].get("approve_url").is_none(),
        "viewers get no links: {seen}"
    );

    // A preview (GET) shows what would run, escaped, and decides nothing.
    let (code, html) = page(&nobody, reqwest::Method::GET, &approve).await;
    assert_eq!(code, 200, "{html}");
    assert!(
        html.contains("Approve this run?")
            && html.contains("restart &lt;web&gt;")
            && html.contains("say.sh now"),
        "{html}"
    );
    assert!(html.contains("<form method=\"post\""), "{html}");
    let (_, e) = s.get(&format!("/api/executions/{id}")).await;
    assert_eq!(e["status"], "pending", "a GET decided: {e}");

    // Altered links are refused.
    let mut forged = approve.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    assert_eq!(page(&nobody, reqwest::Method::POST, &forged).await.0, 403);
    let swapped = approve.replace("/approve?", "/reject?");
    let (code, html) = page(&nobody, reqwest::Method::POST, &swapped).await;
    assert_eq!(code, 403, "{html}");
    assert!(html.contains("not one cloudo made"), "{html}");
    let (_, e) = s.get(&format!("/api/executions/{id}")).await;
    assert_eq!(e["status"], "pending");

    // The page's button decides, once.
    let (code, html) = page(&nobody, reqwest::Method::POST, &approve).await;
    assert_eq!(code, 200, "{html}");
    assert!(html.contains("Approved: the run is queued"), "{html}");
    let done = s.wait(&id).await;
    assert_eq!(done["output"], "said now\n", "{done}");
    let d = &done["approval"]["approvals"][0];
    assert_eq!(
        (d["by"].as_str(), d["via"].as_str(), d["comment"].as_str()),
        (Some("link:approve"), Some("link"), Some("fine by me"))
    );
    for method in [reqwest::Method::POST, reqwest::Method::GET] {
        let (code, html) = page(&nobody, method, &approve).await;
        assert_eq!(code, 409, "{html}");
        assert!(html.contains("already used"), "{html}");
    }
    assert_eq!(
        page(&nobody, reqwest::Method::POST, &reject).await.0,
        409,
        "decided already"
    );

    // The reject link of another request rejects it.
    let other = s.trigger("gated").await;
    let (_, reject) = links(&bob, &s, &other).await;
    let (code, html) = page(&nobody, reqwest::Method::POST, &reject).await;
    assert_eq!(code, 200, "{html}");
    let (_, e) = s.get(&format!("/api/executions/{other}")).await;
    assert_eq!(e["status"], "rejected");
    assert_eq!(e["error"], "rejected by link:reject (link): fine by me");

    // Past its time, a link is refused (before anything else is looked at).
    let brief = s.trigger("brief").await;
    let (approve, _) = links(&bob, &s, &brief).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (code, html) = page(&nobody, reqwest::Method::POST, &approve).await;
    assert_eq!(code, 410, "{html}");
    assert!(html.contains("expired"), "{html}");

    // Link decisions are audited under the link's name.
    let (_, audit) = s.get("/api/audit?limit=200").await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["actor"] == "link:approve" && r["outcome"] == 200),
        "{audit}"
    );
}
