//! The web console in headless Chromium, against the real binary with authentication on:
//! sign in; trigger a schema and watch its output appear live; cancel a running one;
//! approve a pending one from the inbox; a failure stands out; a schema edit shows its
//! validation error by the field; sign out and be refused. Screenshots of each step are
//! saved under `target/screenshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
#[path = "../common/mod.rs"]
mod common;
mod fake_oidc;
mod oidc;

use browser::Browser;
use common::{Env, catalog};
use serde_json::{Value, json};

/// Prints a numbered line every 0.3 s for about 9 s.
const SLOW: &str = "for i in $(seq 1 30); do echo \"line $i\"; sleep 0.3; done\n";

fn env() -> Env {
    Env::new(
        &catalog(&[
            r#"{"id": "slow", "name": "Slow one", "runbook": "slow.sh"}"#,
            r#"{"id": "broken", "runbook": "fail.sh"}"#,
            r#"{"id": "gated", "runbook": "ok.sh", "require_approval": true}"#,
        ]),
        &[
            ("slow.sh", SLOW),
            ("fail.sh", "echo 'about to fail'\nexit 3\n"),
            ("ok.sh", "echo ok\n"),
        ],
    )
}

async fn sign_in(b: &Browser, s: &common::Server, key: &str) {
    b.goto(&s.url("/")).await;
    b.type_into("input[name=key]", key).await;
    b.click("form.signin button[type=submit]").await;
    b.until(
        "return !document.getElementById('nav').hidden && document.getElementById('who-name').innerText",
        json!([]),
        "signed in",
    )
    .await;
}

/// The key is nowhere the page can reach: URL, page source, storage, readable cookies.
async fn key_is_nowhere(b: &Browser, key: &str) {
    let found = b
        .js(
            "const k = arguments[0];
             return [location.href, document.documentElement.outerHTML,
                     JSON.stringify(localStorage), JSON.stringify(sessionStorage),
                     document.cookie].filter((s) => s.includes(k)).length;",
            json!([key]),
        )
        .await;
    assert_eq!(found, 0, "the key is visible to the page");
    let cookie = b.js("return document.cookie", json!([])).await;
    assert!(
        !cookie.as_str().unwrap().contains("cloudo_session"),
        "the session cookie is readable by scripts: {cookie}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_watches_cancels_approves_and_signs_out() {
    let env = env();
    let s = env.start();
    let admin = common::new_key(&s, "ui-admin", "admin").await;
    let b = Browser::start("operator", 1280, 900).await;

    // Not signed in: the sign-in form, and the API refuses.
    b.goto(&s.url("/")).await;
    b.find("input[name=key]").await;
    b.shot("01-sign-in").await;
    sign_in(&b, &s, &admin).await;
    assert!(b.text("#who-name").await.contains("ui-admin"));
    key_is_nowhere(&b, &admin).await;

    // Trigger from the catalog, with the confirmation, and watch the output live.
    b.goto(&s.url("/#/catalog/slow")).await;
    b.click("#trigger").await;
    b.click("#dlg-ok").await;
    let url = b
        .until(
            "return location.hash.startsWith('#/executions/') && location.hash",
            json!([]),
            "the execution page",
        )
        .await;
    let exec_id = url
        .as_str()
        .unwrap()
        .trim_start_matches("#/executions/")
        .to_string();
    b.until(
        "return document.getElementById('output').innerText.includes('line 2')",
        json!([]),
        "the first lines",
    )
    .await;
    // Seen while the runbook still runs: the last line is not there yet.
    let (_, e) = s.get(&format!("/api/executions/{exec_id}")).await;
    assert_eq!(e["status"], "running", "{e}");
    assert!(!b.text("#output").await.contains("line 30"));
    let before = b.text("#output").await.lines().count();
    b.until(
        "return document.getElementById('output').innerText.split('\\n').filter(Boolean).length > arguments[0]",
        json!([before]),
        "more lines while watching",
    )
    .await;
    b.shot("02-live-output").await;

    // Cancel it, with the confirmation.
    b.click("#cancel").await;
    b.click("#dlg-ok").await;
    b.until(
        "return document.querySelector('h1 .badge[data-status=stopped]')",
        json!([]),
        "the stopped badge",
    )
    .await;
    let (_, e) = s.get(&format!("/api/executions/{exec_id}")).await;
    assert_eq!(e["status"], "stopped", "{e}");
    b.shot("03-cancelled").await;

    // A failure stands out in the list (a class and the word, not colour alone).
    let failed = s.trigger("broken").await;
    assert_eq!(s.wait(&failed).await["status"], "failed");
    b.goto(&s.url("/#/executions")).await;
    let row = format!("tr.failed-row[data-exec='{failed}']");
    b.find(&row).await;
    assert!(b.text(&row).await.contains("failed"));
    b.shot("04-failure").await;

    // Approve a pending request from the inbox (requested by another key).
    let pending = s.trigger("gated").await;
    b.goto(&s.url("/#/approvals")).await;
    let card = format!("article[data-exec='{pending}']");
    b.find(&card).await;
    b.type_into(&format!("{card} textarea[name=comment]"), "looks right")
        .await;
    b.shot("05-approval").await;
    b.click(&format!("{card} button.primary")).await;
    let done = s.wait(&pending).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let decision = &done["approval"]["approvals"][0];
    assert_eq!(
        (decision["by"].as_str(), decision["comment"].as_str()),
        (Some("ui-admin"), Some("looks right")),
        "{done}"
    );

    // Sign out: back to the form, and the API refuses the browser.
    b.click("#sign-out").await;
    b.find("input[name=key]").await;
    let code = b
        .until(
            "return fetch('/api/executions').then((r) => r.status)",
            json!([]),
            "an answer",
        )
        .await;
    assert_eq!(code, 401);
    b.shot("06-signed-out").await;
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_edit_shows_its_error_by_the_field_and_pages_fit_a_phone() {
    let env = env();
    let s = env.start();
    let admin = common::new_key(&s, "editor", "admin").await;
    let b = Browser::start("admin", 1280, 900).await;
    sign_in(&b, &s, &admin).await;

    b.goto(&s.url("/#/catalog/slow")).await;
    b.type_into("form.editor input[name=timeout]", "0").await;
    b.click("#save").await;
    let err = b
        .until(
            "return document.querySelector('[data-field=timeout] .field-error').innerText",
            json!([]),
            "the timeout field's error",
        )
        .await;
    assert!(err.as_str().unwrap().contains("must be between"), "{err}");
    let invalid = b
        .js(
            "return document.querySelector('form.editor input[name=timeout]').getAttribute('aria-invalid')",
            json!([]),
        )
        .await;
    assert_eq!(invalid, "true");
    b.shot("01-edit-error").await;
    // Nothing was stored.
    let (_, schema) = s.get("/api/schemas/slow").await;
    assert_eq!(schema["timeout_secs"], 900);

    // A valid edit is stored.
    b.type_into("form.editor input[name=timeout]", "120").await;
    b.type_into(
        "form.editor input[name=description]",
        "edited in the console",
    )
    .await;
    b.click("#save").await;
    let mut stored = Value::Null;
    for _ in 0..100 {
        stored = s.get("/api/schemas/slow").await.1;
        if stored["timeout_secs"] == 120 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(stored["description"], "edited in the console", "{stored}");
    // The browser has had the answer too (its refresh is dispatched with the toast).
    b.until(
        "return document.getElementById('toast').innerText === 'Saved'",
        json!([]),
        "the save's toast",
    )
    .await;

    // A save answered after the page was left does not refresh the page asked for since,
    // whether or not that page has loaded yet (its list is held back longer than the save).
    b.js(
        "window.refreshes = 0; \
         window.addEventListener('cloudo:refresh', () => { window.refreshes++; }); \
         const f = window.fetch; \
         const later = (ms, u, o) => new Promise((r) => setTimeout(r, ms)).then(() => f(u, o)); \
         window.fetch = (u, o) => o && o.method === 'PUT' ? later(600, u, o) \
           : String(u).startsWith('/api/executions') ? later(1000, u, o) : f(u, o); \
         document.querySelector('#save').click(); \
         setTimeout(() => { location.hash = '#/executions'; }, 50); \
         setTimeout(() => { window.fetch = f; }, 1800); return true;",
        json!([]),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let refreshes = b.js("return window.refreshes", json!([])).await;
    assert_eq!(refreshes, 0, "a save refreshed a page it was not on");

    // Phone width: nothing scrolls sideways; the dashboard and lists render.
    let done = s.trigger("broken").await;
    s.wait(&done).await;

    // A page that loads slowly never replaces the one navigated to since: the schema's
    // answer is held back 800 ms while the executions page is asked for.
    b.js(
        "const f = window.fetch; \
         window.fetch = (u, o) => String(u).includes('/api/schemas/slow') \
           ? new Promise((r) => setTimeout(r, 800)).then(() => f(u, o)) : f(u, o); \
         window.dispatchEvent(new Event('cloudo:refresh')); \
         setTimeout(() => { location.hash = '#/executions'; }, 50); \
         setTimeout(() => { window.fetch = f; }, 1500); return true;",
        json!([]),
    )
    .await;
    b.find("tr[data-exec]").await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let shown = b
        .js(
            "return [!!document.querySelector('main tr[data-exec]'), document.querySelector('main h1').innerText]",
            json!([]),
        )
        .await;
    assert_eq!(shown, json!([true, "Executions"]), "{shown}");
    b.resize(390, 844).await;
    for (page, ready) in [
        ("#/executions", "tr[data-exec]"),
        ("#/dashboard", "#mttr"),
        ("#/catalog", "tr[data-schema=slow]"),
    ] {
        b.goto(&s.url(&format!("/{page}"))).await;
        b.find(ready).await;
        let overflow = b
            .js(
                "return document.documentElement.scrollWidth - window.innerWidth",
                json!([]),
            )
            .await;
        assert!(
            overflow.as_i64().unwrap() <= 1,
            "{page} scrolls sideways by {overflow}"
        );
        b.shot(&format!("02-phone-{}", page.trim_start_matches("#/")))
            .await;
    }
    b.quit().await;
}
