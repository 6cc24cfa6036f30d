//! The first admin key, dev mode, and the ingest rate per client.

use super::*;

#[tokio::test]
async fn without_keys_a_first_admin_key_is_printed_once_and_dev_mode_is_loud() {
    let env = env().env("CLOUDO_ADMIN_KEY", "");
    let mut s = env.start();
    let logs = s.logs();
    let key = logs
        .split_whitespace()
        .find(|w| w.starts_with("cloudo_") && w.len() == 71)
        .unwrap_or_else(|| panic!("no key printed: {logs}"))
        .to_string();
    let res = client(Some(&key))
        .get(s.url("/api/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the printed key is an admin key");
    s.stop();
    drop(s);
    let s = env.start();
    assert!(!s.logs().contains("shown only now"), "printed once only");
    drop(s);

    let dev = self::env().arg("--dev-no-auth");
    let s = dev.start();
    assert!(s.logs().contains("AUTHENTICATION IS OFF"), "{}", s.logs());
    let res = client(None)
        .post(s.url("/api/Trigger?id=ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
}

#[tokio::test]
async fn ingest_is_rate_limited_per_client() {
    let env = env().arg("--ingest-rate").arg("5");
    let s = env.start();
    let mut codes = Vec::new();
    let began = std::time::Instant::now();
    for _ in 0..20 {
        let res = s
            .http
            .post(s.url("/api/Trigger?id=ok"))
            .send()
            .await
            .unwrap();
        if res.status() == 429 {
            let retry: u64 = res.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=2).contains(&retry), "{retry}");
        }
        codes.push(res.status().as_u16());
    }
    // A burst of twice the rate, then the rate: tokens come back at 5 a second while the
    // requests are sent (slowly, on a slow machine), and no faster.
    let refilled = (began.elapsed().as_secs_f64() * 5.0).ceil() as usize;
    let accepted = codes.iter().filter(|&&c| c == 202).count();
    assert!(
        codes[..10].iter().all(|&c| c == 202),
        "a burst of twice the rate: {codes:?}"
    );
    assert!(
        accepted <= 10 + refilled && codes.iter().all(|&c| c == 202 || c == 429),
        "{accepted} accepted with {refilled} tokens back: {codes:?}"
    );
    assert!(codes.contains(&429), "{codes:?}");
    let (code, _) = s.get("/api/executions").await;
    assert_eq!(code, 200, "reads are not limited");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = s
        .http
        .post(s.url("/api/Trigger?id=ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "tokens come back");
}

/// An install's generated keys come from the environment (Key Vault references in the
/// Terraform module): CLOUDO_INGEST_KEY is an ingest key, each CLOUDO_WORKER_KEY_<POOL> a
/// worker key of that pool; neither value is ever logged.
#[tokio::test]
async fn the_environment_gives_the_ingest_and_worker_keys() {
    const INGEST: &str = "ingest-key-from-the-vault-0001";
    const WORKER: &str = "worker-key-from-the-vault-0002";
    let env = env()
        .env("CLOUDO_INGEST_KEY", INGEST)
        .env("CLOUDO_WORKER_KEY_AKS_WEU", WORKER);
    let s = env.start();
    let ingest = client(Some(INGEST));
    let res = ingest
        .post(s.url("/api/Trigger?id=ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "the ingest key delivers");
    let res = ingest.get(s.url("/api/executions")).send().await.unwrap();
    assert_eq!(res.status(), 403, "and does nothing else");
    let (code, keys) = s.get("/api/keys").await;
    assert_eq!(code, 200, "{keys}");
    let worker = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "worker-aks-weu")
        .unwrap_or_else(|| panic!("{keys}"));
    assert_eq!(worker["role"], "worker");
    assert_eq!(worker["pool"], "aks-weu");
    let res = client(Some(WORKER))
        .get(s.url("/api/executions"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "a worker key is for the worker protocol");
    let logs = s.logs();
    assert!(!logs.contains(INGEST) && !logs.contains(WORKER), "{logs}");
}
