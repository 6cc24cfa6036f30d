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

/// A delivery whose recorder died after claiming its dedup key (an orchestrator killed -9
/// between the two writes): a copy within the grace period is asked to retry (never told
/// "duplicate" with nothing recorded, which the sender would take as done), and a copy
/// after it records the executions.
#[tokio::test]
async fn a_dedup_claim_without_its_executions_is_retried_then_void() {
    use cloudo_azure::tables::{Entity, Table};
    use cloudo_core::conformance::new_execution;
    use cloudo_core::store::{Created, DedupKey, ExecutionStore, NewExecution, StoreError};
    use cloudo_core::{Status, time};
    use sha2::{Digest, Sha256};

    let account = account();
    let prefix = prefix();
    let store = AzureStore::open(&account, &prefix).await.unwrap();
    let key = DedupKey {
        key: "azure:rule:/alerts/killed:Fired".into(),
        window: Duration::from_secs(600),
    };
    let claim = |age: i64| {
        let mut e = Entity::new();
        let rk: String = Sha256::digest(key.key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        e.insert("PartitionKey".into(), "d".into());
        e.insert("RowKey".into(), rk.into());
        e.insert(
            "ids".into(),
            r#"["01a20047-ed88-7272-ba6c-fec97cd44c93"]"#.into(),
        );
        let at = time::now() - chrono::Duration::seconds(age);
        e.insert("created_at".into(), time::rfc3339(at).into());
        e
    };
    let dedup = Table::new(&account, &format!("{prefix}dedup"));
    dedup.write(&claim(1), false, None).await.unwrap();
    let batch = [NewExecution {
        execution: new_execution("a", Status::Accepted),
        reason: None,
    }];
    let early = store.create_executions(&batch, Some(&key)).await;
    assert!(
        matches!(early, Err(StoreError::Unavailable(_))),
        "{early:?}"
    );
    assert!(
        store
            .get_execution(&batch[0].execution.exec_id)
            .await
            .unwrap()
            .is_none()
    );

    dedup.write(&claim(45), false, None).await.unwrap();
    assert_eq!(
        store.create_executions(&batch, Some(&key)).await.unwrap(),
        Created::New
    );
    let again = store.create_executions(&batch, Some(&key)).await.unwrap();
    assert_eq!(
        again,
        Created::Duplicate(vec![batch[0].execution.exec_id.clone()])
    );
}
