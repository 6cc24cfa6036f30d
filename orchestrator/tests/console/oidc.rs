//! Single sign-on against the fake provider: a browser signs in with PKCE and acts as
//! `oidc:<subject>`; answers that were replayed, forged or come from another browser, and
//! users whose claims map to no role, are refused.

use serde_json::json;

use crate::browser::Browser;
use crate::common::{Env, Server, catalog};
use crate::fake_oidc::{CLIENT_ID, CLIENT_SECRET, FakeOidc};

fn ada() -> serde_json::Value {
    json!({"sub": "ada-123", "name": "Ada Lovelace", "email": "ada@example.com",
           "groups": ["g-readers", "g-oncall"]})
}

fn env(idp: &FakeOidc) -> Env {
    Env::new(
        &catalog(&[r#"{"id": "gated", "runbook": "ok.sh", "require_approval": true}"#]),
        &[("ok.sh", "echo ok\n")],
    )
    .arg("--oidc-issuer")
    .arg(&idp.issuer)
    .arg("--oidc-client-id")
    .arg(CLIENT_ID)
    .arg("--oidc-roles")
    .arg("g-readers=viewer,g-oncall=operator")
    .arg("--oidc-name")
    .arg("Fake IdP")
    .env("CLOUDO_OIDC_CLIENT_SECRET", CLIENT_SECRET)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_with_pkce_and_acts_as_the_oidc_user() {
    let idp = FakeOidc::start(ada()).await;
    let env = env(&idp);
    let s = env.start();
    let b = Browser::start("oidc", 1280, 900).await;
    b.goto(&s.url("/")).await;
    b.click("p.sso a.button").await;
    let who = b
        .until(
            "return !document.getElementById('nav').hidden && document.getElementById('who-name').innerText",
            json!([]),
            "signed in through the provider",
        )
        .await;
    let who = who.as_str().unwrap();
    assert!(
        who.contains("Ada Lovelace") && who.contains("ada@example.com") && who.contains("operator"),
        "{who}"
    );
    b.shot("01-signed-in").await;

    // The provider saw a PKCE S256 authorization request, and a token request with the
    // client's credentials and the verifier (checked against the challenge by the fake).
    let auth = idp.authorize_requests();
    assert_eq!(auth.len(), 1);
    let a = &auth[0];
    assert_eq!(a["response_type"], "code");
    assert_eq!(a["client_id"], CLIENT_ID);
    assert_eq!(a["code_challenge_method"], "S256");
    assert_eq!(a["redirect_uri"], s.url("/api/session/oidc/callback"));
    assert!(a["scope"].split(' ').any(|x| x == "openid"));
    assert!(a["nonce"].len() >= 32 && a["state"].len() >= 32);
    let tokens = idp.token_requests();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0]["grant_type"], "authorization_code");
    assert!(tokens[0]["code_verifier"].len() >= 43);
    // Nothing secret in the page.
    let leaked = b
        .js("return document.documentElement.outerHTML.includes(arguments[0]) || location.href.includes('code=')",
            json!([CLIENT_SECRET]))
        .await;
    assert_eq!(leaked, false);

    // Approve a request as the single sign-on user: recorded as oidc:<subject>.
    let pending = s.trigger("gated").await;
    b.goto(&s.url("/#/approvals")).await;
    let card = format!("article[data-exec='{pending}']");
    b.click(&format!("{card} button.primary")).await;
    let done = s.wait(&pending).await;
    assert_eq!(
        done["approval"]["approvals"][0]["by"], "oidc:ada-123",
        "{done}"
    );
    let mut actors = Vec::new();
    for _ in 0..50 {
        let (_, audit) = s.get("/api/audit?actor=oidc:ada-123").await;
        actors = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["action"].as_str().unwrap().to_string())
            .collect();
        if actors.iter().any(|a| a.contains("approve"))
            && actors.iter().any(|a| a.contains("callback"))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(actors.iter().any(|a| a.contains("/approve")), "{actors:?}");
    assert!(
        actors.iter().any(|a| a.contains("oidc/callback")),
        "{actors:?}"
    );
    b.quit().await;
}

/// The answer path by hand (no redirects followed): login, then the callback.
async fn start_login(s: &Server) -> (String, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = http
        .get(s.url("/api/session/oidc/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let location = res.headers()["location"].to_str().unwrap().to_string();
    // The provider answers (the fake signs the user in at once).
    let res = http.get(&location).send().await.unwrap();
    let back = res.headers()["location"].to_str().unwrap().to_string();
    (cookie.split(';').next().unwrap().to_string(), back)
}

#[tokio::test]
async fn replayed_forged_and_roleless_answers_are_refused() {
    let idp = FakeOidc::start(ada()).await;
    let env = env(&idp);
    let s = env.start();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // From another browser (no state cookie): refused, and the attempt is still unused.
    let (cookie, back) = start_login(&s).await;
    let res = http.get(&back).send().await.unwrap();
    assert_eq!(res.status(), 403);
    // With it: signed in (a session cookie, back to the console).
    let res = http
        .get(&back)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    assert_eq!(res.headers()["location"], "/");
    let set: Vec<&str> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        set.iter()
            .any(|c| c.starts_with("cloudo_session=") && c.contains("SameSite=Strict")),
        "{set:?}"
    );
    // The same answer again: refused (the attempt is used up).
    let res = http
        .get(&back)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("already used"));

    // A forged state: refused.
    let res = http
        .get(s.url("/api/session/oidc/callback?code=x&state=forged"))
        .header("cookie", "cloudo_oidc=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // A user whose groups map to no role: 403, no session.
    idp.set_user(json!({"sub": "eve", "groups": ["g-visitors"]}));
    let (cookie, back) = start_login(&s).await;
    let res = http
        .get(&back)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(
        res.headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("cloudo_session="))
    );
    assert!(res.text().await.unwrap().contains("oidc:eve"));

    // The provider's own refusal is shown.
    let res =
        http.get(s.url(
            "/api/session/oidc/callback?error=access_denied&error_description=user+cancelled",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("user cancelled"));
    let (_, providers) = s.get("/api/session/providers").await;
    assert_eq!(providers["oidc"]["name"], "Fake IdP");
}
