//! The Entra ID (Bearer token) path of both adapters, against an HTTPS Azurite with
//! `--oauth basic` (started by `test-env/with-azurite.sh` with a throw-away CA). Azurite
//! checks the token's audience, issuer and lifetime but not its signature, so a test
//! credential stands in for the managed / workload identity a deployment uses: the same
//! `TokenCredential` port and azure_core's Bearer policy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::http::Url;
use azure_core::time::OffsetDateTime;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use cloudo_azure::auth::{Account, Auth};
use cloudo_azure::{AzureQueue, AzureStore};
use cloudo_core::conformance::new_execution;
use cloudo_core::store::ExecutionStore;
use cloudo_core::{JobQueue, Status, StatusChange, time};

/// Issues unsigned tokens for `audience`, and counts how often it was asked.
#[derive(Debug)]
struct TestCredential {
    audience: &'static str,
    asked: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl TokenCredential for TestCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        assert_eq!(scopes, ["https://storage.azure.com/.default"]);
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let header = B64URL.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = B64URL.encode(
            serde_json::json!({
                "aud": self.audience,
                "iss": "https://sts.windows.net/11111111-2222-3333-4444-555555555555/",
                "nbf": now - 60, "iat": now - 60, "exp": now + 3600,
                "oid": "00000000-0000-0000-0000-00000000c10d",
            })
            .to_string(),
        );
        Ok(AccessToken::new(
            format!("{header}.{claims}.c2lnbmF0dXJl"),
            OffsetDateTime::now_utc() + Duration::from_secs(3600),
        ))
    }
}

fn account(audience: &'static str) -> (Account, Arc<TestCredential>) {
    let var = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| {
            panic!("{k} is not set: run through test-env/with-azurite.sh (make test does)")
        })
    };
    let cred = Arc::new(TestCredential {
        audience,
        asked: Default::default(),
    });
    let account = Account {
        name: "devstoreaccount1".into(),
        table_endpoint: Url::parse(&var("CLOUDO_TEST_AZURE_OAUTH_TABLE")).unwrap(),
        queue_endpoint: Url::parse(&var("CLOUDO_TEST_AZURE_OAUTH_QUEUE")).unwrap(),
        auth: Auth::Token(cred.clone()),
        ca_pem: Some(std::fs::read(var("CLOUDO_TEST_AZURE_CA")).unwrap()),
    };
    (account, cred)
}

fn prefix() -> String {
    format!("e{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

#[tokio::test]
async fn store_and_queue_work_with_entra_tokens_over_https() {
    let (account, cred) = account("https://storage.azure.com");
    let p = prefix();
    let store = AzureStore::open(&account, &p)
        .await
        .expect("tables with a token");
    let e = new_execution("a", Status::Accepted);
    store.create_execution(&e, None).await.unwrap();
    store
        .transition(&e.exec_id, &StatusChange::to(Status::Running), time::now())
        .await
        .unwrap();
    let got = store.get_execution(&e.exec_id).await.unwrap().unwrap();
    assert_eq!(got.status, Status::Running);

    let queue = AzureQueue::new(account, &p, 3);
    let job = cloudo_core::Job::for_execution(&e, Default::default(), None);
    queue
        .enqueue("default", &job)
        .await
        .expect("queue with a token");
    let lease = queue
        .lease("default", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("the job");
    assert_eq!(lease.job, job);
    queue.ack(&lease).await.unwrap();
    assert!(
        cred.asked.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "tokens came from the credential"
    );
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let (account, _) = account("https://management.azure.com");
    let err = AzureStore::open(&account, &prefix()).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
}

#[tokio::test]
async fn without_the_ca_the_emulators_certificate_is_not_trusted() {
    let (mut account, _) = account("https://storage.azure.com");
    account.ca_pem = None;
    let err = AzureStore::open(&account, &prefix()).await.unwrap_err();
    assert!(!err.to_string().contains("403"), "TLS fails first: {err}");
}
