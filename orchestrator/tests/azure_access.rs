//! Runbooks that act on Azure: a schema with `azure: true` gets the worker's per-run token
//! endpoint (the managed-identity protocol); a Python runbook with the Azure SDK's
//! `azure-identity` gets an ARM token through it; other scopes, ended runs and unknown
//! secrets are refused; schemas without it see nothing; no token is logged or recorded.
//! Entra is faked on loopback (the worker's own managed identity, App Service protocol).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Env;
use common::fake::Fake;
use serde_json::Value;

/// What the fake Entra endpoint answers: a token no log or record may ever show.
const UPSTREAM_TOKEN: &str = "fake-arm-token-9f8e7d6c5b4a";
const TOKEN_BODY: &str = r#"{"access_token": "fake-arm-token-9f8e7d6c5b4a", "expires_on": "4102444800", "resource": "https://management.azure.com", "token_type": "Bearer"}"#;
const UPSTREAM_SECRET: &str = "upstream-identity-header-0001";
const IDENTITY: &str = "11111111-2222-3333-4444-555555555555";

fn arm_runbook(handoff: &str) -> String {
    format!(
        r#"import hashlib, json, os, time
from azure.identity import ManagedIdentityCredential
cred = ManagedIdentityCredential(client_id=os.environ["AZURE_CLIENT_ID"])
token = cred.get_token("https://management.azure.com/.default")
print("arm token sha256", hashlib.sha256(token.token.encode()).hexdigest())
try:
    cred.get_token("https://vault.azure.net/.default")
    print("vault: given")
except Exception:
    print("vault: refused")
print("subscription", os.environ.get("AZURE_SUBSCRIPTION_ID"))
print("header", os.environ["IDENTITY_HEADER"])
with open({handoff:?} + ".tmp", "w") as f:
    json.dump({{"endpoint": os.environ["IDENTITY_ENDPOINT"], "secret": os.environ["IDENTITY_HEADER"]}}, f)
os.rename({handoff:?} + ".tmp", {handoff:?})
time.sleep(3)
print("done")
"#
    )
}

async fn ask(endpoint: &str, secret: &str, resource: &str) -> (u16, Value) {
    common::answer(
        common::client(None)
            .get(format!(
                "{endpoint}?api-version=2019-08-01&resource={resource}"
            ))
            .header("X-IDENTITY-HEADER", secret),
    )
    .await
}

#[tokio::test]
async fn a_runbook_gets_arm_tokens_for_its_run_only_and_nothing_leaks() {
    let entra = Fake::start(200, TOKEN_BODY).await;
    let dir = tempfile::tempdir().unwrap();
    let handoff = dir.path().join("handoff.json");
    let env = Env::new(
        &common::catalog(&[
            &format!(r#"{{"id": "arm", "runbook": "arm.py", "azure": true, "azure_identity": "{IDENTITY}"}}"#),
            r#"{"id": "plain", "runbook": "plain.sh"}"#,
        ]),
        &[
            ("arm.py", &arm_runbook(&handoff.display().to_string())),
            ("plain.sh", "env | sort\n"),
        ],
    )
    .env("CLOUDO_RUNBOOK_CREDENTIAL", "managed")
    .env("IDENTITY_ENDPOINT", &format!("{}/msi/token", entra.base))
    .env("IDENTITY_HEADER", UPSTREAM_SECRET);
    let mut s = env.start();

    let alert: Value = serde_json::from_str(include_str!(
        "fixtures/azure-monitor/test-action-metric-static-threshold.json"
    ))
    .unwrap();
    let (code, answer) = common::post_json(&s.http, &s.url("/api/Trigger?id=arm"), &alert).await;
    assert_eq!(code, 202, "{answer}");
    let id = answer["exec_id"].as_str().unwrap().to_string();

    // While it runs: its secret gets ARM tokens, not Key Vault ones; a made-up one nothing.
    common::until(|| handoff.exists(), "the runbook's handoff").await;
    let h: Value = serde_json::from_slice(&std::fs::read(&handoff).unwrap()).unwrap();
    let (endpoint, secret) = (
        h["endpoint"].as_str().unwrap(),
        h["secret"].as_str().unwrap(),
    );
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    let (code, t) = ask(endpoint, secret, "https://management.azure.com/").await;
    assert_eq!(code, 200, "{t}");
    assert_eq!(t["access_token"], UPSTREAM_TOKEN);
    assert_eq!(t["expires_on"], "4102444800");
    let (code, _) = ask(endpoint, secret, "https://vault.azure.net").await;
    assert_eq!(code, 403, "another scope");
    let (code, _) = ask(endpoint, "0123456789abcdef", "https://management.azure.com").await;
    assert_eq!(code, 401, "another secret");
    let res = common::client(None)
        .get(format!("{endpoint}?api-version=2019-08-01&resource=https://management.azure.com&client_id=99999999-2222-3333-4444-555555555555"))
        .header("X-IDENTITY-HEADER", secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "another identity");

    let e = s.wait(&id).await;
    assert_eq!(e["status"], "succeeded", "{e}");
    let (_, out) = s.get(&format!("/api/executions/{id}/output")).await;
    let text = out["data"].as_str().unwrap();
    let sha = cloudo_core::auth::hash_key(UPSTREAM_TOKEN);
    assert!(text.contains(&format!("arm token sha256 {sha}")), "{text}");
    assert!(text.contains("vault: refused"), "{text}");
    assert!(
        text.contains("subscription aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e"),
        "{text}"
    );
    // The run's own secret, printed, is masked in its output.
    assert!(
        text.contains("header ***") && !text.contains(secret),
        "{text}"
    );

    // After the run: its secret is dead.
    let (code, _) = ask(endpoint, secret, "https://management.azure.com").await;
    assert_eq!(code, 401, "after the run ended");

    // The worker asked Entra as the schema's identity, for ARM only, with its own secret.
    let seen = entra.seen();
    assert!(!seen.is_empty());
    for r in &seen {
        assert_eq!(
            r.headers.get("x-identity-header").map(String::as_str),
            Some(UPSTREAM_SECRET)
        );
        assert!(
            r.uri
                .contains("resource=https%3A%2F%2Fmanagement.azure.com")
                || r.uri.contains("resource=https://management.azure.com"),
            "{}",
            r.uri
        );
        assert!(
            r.uri.contains(&format!("client_id={IDENTITY}")),
            "{}",
            r.uri
        );
        assert!(!r.uri.contains("vault"), "{}", r.uri);
    }

    // A schema without `azure` gets none of it.
    let plain = s.trigger("plain").await;
    s.wait(&plain).await;
    let (_, out) = s.get(&format!("/api/executions/{plain}/output")).await;
    let dump = out["data"].as_str().unwrap();
    for name in [
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "AZURE_CLIENT_ID",
        "MSI_",
    ] {
        assert!(
            !dump.contains(name),
            "{name} in a plain runbook's environment: {dump}"
        );
    }

    // The token is nowhere: logs, records, outputs.
    let (_, record) = s.get(&format!("/api/executions/{id}")).await;
    assert!(!record.to_string().contains(UPSTREAM_TOKEN));
    assert!(
        !record.to_string().contains(secret),
        "the run's secret in its record"
    );
    let logs = s.final_logs().await;
    assert!(logs.contains("runbook token"), "requests are logged");
    assert!(!logs.contains(UPSTREAM_TOKEN), "a token in the logs");
}

/// The endpoint reaches runbooks in bwrap with and without the schema's network, and in
/// docker: the relay serves it on the sandbox's own loopback through the worker's socket.
/// The SDK gets its token in bwrap; in docker (whose test image has no SDK) the runbook
/// speaks the protocol itself. The relay's own secret never reaches the runbook. These
/// schemas name no identity: they act as the worker's default (CLOUDO_RUNBOOK_CLIENT_ID).
#[tokio::test]
async fn sandboxes_reach_the_endpoint_through_the_relay() {
    let entra = Fake::start(200, TOKEN_BODY).await;
    let image = std::env::var("CLOUDO_TEST_IMAGE")
        .expect("CLOUDO_TEST_IMAGE (run through test-env/with-sandboxes.sh; make test does)");
    let sdk = r#"import hashlib, os
from azure.identity import ManagedIdentityCredential
token = ManagedIdentityCredential().get_token("https://management.azure.com/.default")
print("arm token sha256", hashlib.sha256(token.token.encode()).hexdigest())
print("endpoint", os.environ["IDENTITY_ENDPOINT"])
print("relay secret seen:", "CLOUDO_RELAY_SECRET" in os.environ)
print("client", os.environ.get("AZURE_CLIENT_ID"))
"#;
    let raw = r#"import hashlib, json, os, urllib.request
url = os.environ["IDENTITY_ENDPOINT"] + "?api-version=2019-08-01&resource=https://management.azure.com"
req = urllib.request.Request(url, headers={"X-IDENTITY-HEADER": os.environ["IDENTITY_HEADER"]})
token = json.load(urllib.request.urlopen(req, timeout=10))["access_token"]
print("arm token sha256", hashlib.sha256(token.encode()).hexdigest())
print("endpoint", os.environ["IDENTITY_ENDPOINT"])
print("relay secret seen:", "CLOUDO_RELAY_SECRET" in os.environ)
print("client", os.environ.get("AZURE_CLIENT_ID"))
"#;
    let env = Env::new(
        &common::catalog(&[
            r#"{"id": "in-bwrap", "runbook": "sdk.py", "azure": true, "sandbox": "bwrap", "network": true}"#,
            r#"{"id": "bwrap-offline", "runbook": "sdk.py", "azure": true, "sandbox": "bwrap"}"#,
            r#"{"id": "in-docker", "runbook": "raw.py", "azure": true, "sandbox": "docker"}"#,
        ]),
        &[("sdk.py", sdk), ("raw.py", raw)],
    )
    .arg("--sandbox")
    .arg("auto")
    .arg("--sandbox-image")
    .arg(&image)
    .env("CLOUDO_RUNBOOK_CREDENTIAL", "managed")
    .env("CLOUDO_RUNBOOK_CLIENT_ID", IDENTITY)
    .env("IDENTITY_ENDPOINT", &format!("{}/msi/token", entra.base))
    .env("IDENTITY_HEADER", UPSTREAM_SECRET);
    let s = env.start();

    let sha = cloudo_core::auth::hash_key(UPSTREAM_TOKEN);
    for (schema, sandbox) in [
        ("in-bwrap", "bwrap"),
        ("bwrap-offline", "bwrap"),
        ("in-docker", "docker"),
    ] {
        let id = s.trigger(schema).await;
        let e = s.wait(&id).await;
        let (_, out) = s.get(&format!("/api/executions/{id}/output")).await;
        let text = out["data"].as_str().unwrap_or_default();
        assert_eq!(e["status"], "succeeded", "{schema}: {e} {text}");
        assert_eq!(e["sandbox"], sandbox);
        assert!(text.contains(&sha), "{schema}: {text}");
        assert!(
            text.contains("endpoint http://127.0.0.1:"),
            "{schema}: {text}"
        );
        assert!(
            text.contains("relay secret seen: False"),
            "{schema}: {text}"
        );
    }
    // Tokens came from the worker's own credential (cached across runs).
    let seen = entra.seen();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(
            |r| r.headers.get("x-identity-header").map(String::as_str) == Some(UPSTREAM_SECRET)
        )
    );
    assert!(!s.logs().contains(UPSTREAM_TOKEN));
}

/// The worker's and orchestrator's own storage credential: with several user-assigned
/// identities (the Terraform module gives each app its own and the runbooks another),
/// AZURE_CLIENT_ID says which one reaches storage. The account is unreachable here, so the
/// start fails after asking; what it asked the managed-identity endpoint is the point.
#[tokio::test(flavor = "multi_thread")]
async fn the_storage_credential_is_the_identity_azure_client_id_names() {
    const STORAGE_ID: &str = "99999999-2222-3333-4444-555555555555";
    let entra = Fake::start(200, TOKEN_BODY).await;
    let env = Env::new(&common::catalog(&[]), &[])
        .arg("--backend")
        .arg("azure")
        .arg("--azure-storage-account")
        .arg("cloudotestaccount")
        .arg("--azure-credential")
        .arg("managed")
        .env("IDENTITY_ENDPOINT", &format!("{}/msi/token", entra.base))
        .env("IDENTITY_HEADER", UPSTREAM_SECRET)
        .env("AZURE_CLIENT_ID", STORAGE_ID);
    let stderr = tokio::task::spawn_blocking(move || env.start_fails())
        .await
        .unwrap();
    assert!(stderr.contains("cannot open the Azure tables"), "{stderr}");
    let seen = entra.seen();
    assert!(!seen.is_empty(), "no token was asked for: {stderr}");
    for r in &seen {
        assert!(
            r.uri.contains(&format!("client_id={STORAGE_ID}")),
            "{}",
            r.uri
        );
        assert!(r.uri.contains("storage.azure.com"), "{}", r.uri);
    }
}

/// The worker's own identity (AZURE_CLIENT_ID, what it reaches storage with) is never a
/// runbook's: not by naming it, not by a schema naming none while no runbooks' identity is
/// set (a credential without a client id may fall back to AZURE_CLIENT_ID).
#[tokio::test]
async fn runbooks_never_act_as_the_workers_own_identity() {
    const OWN: &str = "77777777-2222-3333-4444-555555555555";
    let entra = Fake::start(200, TOKEN_BODY).await;
    let env = Env::new(
        &common::catalog(&[
            &format!(r#"{{"id": "names-own", "runbook": "ok.sh", "azure": true, "azure_identity": "{OWN}"}}"#),
            r#"{"id": "names-none", "runbook": "ok.sh", "azure": true}"#,
            r#"{"id": "aks-none", "runbook": "ok.sh", "aks": true, "aks_cluster": "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c1"}"#,
        ]),
        &[("ok.sh", "echo should not run\n")],
    )
    .env("CLOUDO_RUNBOOK_CREDENTIAL", "managed")
    .env("AZURE_CLIENT_ID", OWN)
    .env("IDENTITY_ENDPOINT", &format!("{}/msi/token", entra.base))
    .env("IDENTITY_HEADER", UPSTREAM_SECRET);
    let s = env.start();
    for (schema, why) in [
        ("names-own", "the worker's own"),
        ("names-none", "CLOUDO_RUNBOOK_CLIENT_ID"),
        ("aks-none", "CLOUDO_RUNBOOK_CLIENT_ID"),
    ] {
        let e = s.wait(&s.trigger(schema).await).await;
        assert_eq!(e["status"], "error", "{schema}: {e}");
        assert!(e["error"].as_str().unwrap().contains(why), "{schema}: {e}");
        assert!(e["output"].is_null() || !e["output"].as_str().unwrap().contains("should not run"));
    }
    assert!(entra.seen().is_empty(), "no token was asked for");
}
