//! The Azure adapters against the same conformance suites as the embedded ones, on Azurite
//! (started by `test-env/with-azurite.sh`, which `make test` wraps around the tests).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cloudo_azure::{Account, AzureQueue, AzureStore};
use cloudo_core::conformance;

/// Azurite's account. A run without it fails: a skipped suite is not a pass.
pub fn account() -> Account {
    let cs = std::env::var("CLOUDO_TEST_AZURE_CONNECTION_STRING").expect(
        "CLOUDO_TEST_AZURE_CONNECTION_STRING is not set: run through test-env/with-azurite.sh (make test does)",
    );
    Account::from_connection_string(&cs).expect("valid connection string")
}

/// A fresh prefix, so every test gets its own tables and queues.
fn prefix() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

#[tokio::test]
async fn azure_store_conforms() {
    let account = account();
    conformance::run_all(|| {
        let account = account.clone();
        async move {
            AzureStore::open(&account, &prefix())
                .await
                .expect("open store")
        }
    })
    .await;
}

#[tokio::test]
async fn azure_queue_conforms() {
    let account = account();
    conformance::queue::run_all(
        || {
            let account = account.clone();
            async move { AzureQueue::new(account, &prefix(), 3) }
        },
        Duration::from_secs(1),
    )
    .await;
}
