//! Key life-cycle rules shared by the API and `cloudo keys`: revocation is remembered, and
//! the keys the environment gives (`CLOUDO_ADMIN_KEY`, `CLOUDO_INGEST_KEY`,
//! `CLOUDO_WORKER_KEY_<POOL>`) are stored at start-up unless they were revoked.
//!
//! A revoked key is deleted, and its hash is kept in the `revoked_keys` setting, so that a
//! value still set in the environment of a restarted server does not quietly come back.

use cloudo_core::Store;
use cloudo_core::auth::{ApiKey, Role, generate_key, hash_key};
use cloudo_core::store::StoreResult;
use cloudo_core::time::{self, Timestamp};
use cloudo_worker::secrets::Secret;
use serde::{Deserialize, Serialize};

/// The setting that remembers revoked keys.
const REVOKED_SETTING: &str = "revoked_keys";
/// Revocations remembered (oldest forgotten first).
const REVOKED_KEPT: usize = 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Revoked {
    name: String,
    hash: String,
    #[serde(with = "time::serde_rfc3339")]
    at: Timestamp,
}

async fn revoked(store: &dyn Store) -> StoreResult<Vec<Revoked>> {
    Ok(store
        .get_setting(REVOKED_SETTING)
        .await?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

/// Key changes the API makes (the handlers hold no writer).
#[derive(Clone)]
pub struct Access(std::sync::Arc<dyn Store>);

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access").finish_non_exhaustive()
    }
}

impl Access {
    pub fn new(store: std::sync::Arc<dyn Store>) -> Self {
        Self(store)
    }

    /// Stores a new key; a name in use is a conflict.
    pub async fn create(&self, key: &ApiKey) -> StoreResult<()> {
        self.0.put_key(key, false).await
    }

    /// See [`revoke_key`].
    pub async fn revoke(&self, name: &str) -> StoreResult<bool> {
        revoke_key(&*self.0, name).await
    }

    /// Records that the key `name` was used at `at`.
    pub async fn touch(&self, name: &str, at: Timestamp) -> StoreResult<()> {
        self.0.touch_key(name, at).await
    }
}

/// Revokes the key `name`: deleted, and remembered as revoked. False if there was none.
pub async fn revoke_key(store: &dyn Store, name: &str) -> StoreResult<bool> {
    let Some(key) = store
        .list_keys()
        .await?
        .into_iter()
        .find(|k| k.name == name)
    else {
        return Ok(false);
    };
    let mut list = revoked(store).await?;
    list.push(Revoked {
        name: key.name.clone(),
        hash: key.hash.clone(),
        at: time::now(),
    });
    let excess = list.len().saturating_sub(REVOKED_KEPT);
    list.drain(..excess);
    let text = serde_json::to_string(&list)
        .map_err(|e| cloudo_core::StoreError::Corrupt(e.to_string()))?;
    // Remembered before the key goes: a crash in between leaves a live key, never a revoked
    // one that can come back.
    store.put_setting(REVOKED_SETTING, &text).await?;
    store.delete_key(name).await
}

/// A key the environment gives (an install's generated keys: Terraform puts them in Key
/// Vault and the apps' settings reference them), stored at start-up unless it was revoked.
#[derive(Debug, Clone)]
pub struct GivenKey {
    /// The variable it came from, for the log.
    pub var: String,
    pub name: String,
    pub role: Role,
    pub pool: Option<String>,
    pub secret: Secret,
}

/// The prefix of the variables that give a pool's worker key: `CLOUDO_WORKER_KEY_<POOL>`, the
/// pool in upper case with `_` for `-` (`CLOUDO_WORKER_KEY_AKS_WEU` is pool `aks-weu`).
const WORKER_KEY_PREFIX: &str = "CLOUDO_WORKER_KEY_";

/// `CLOUDO_ADMIN_KEY` (key `admin`), `CLOUDO_INGEST_KEY` (key `ingest`, role ingest) and every
/// `CLOUDO_WORKER_KEY_<POOL>` (key `worker-<pool>`, role worker for that pool).
pub fn keys_from_env() -> Vec<GivenKey> {
    let given = |var: &str, name: String, role: Role, pool: Option<String>| {
        cloudo_worker::command::config::env_secret(var).map(|secret| GivenKey {
            var: var.to_string(),
            name,
            role,
            pool,
            secret,
        })
    };
    let mut keys: Vec<GivenKey> = [
        given("CLOUDO_ADMIN_KEY", "admin".into(), Role::Admin, None),
        given("CLOUDO_INGEST_KEY", "ingest".into(), Role::Ingest, None),
    ]
    .into_iter()
    .flatten()
    .collect();
    // vars_os: a variable that is not UTF-8 elsewhere in the environment is not ours to fail on.
    let mut pools: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(var, _)| {
            let var = var.into_string().ok()?;
            let pool = var.strip_prefix(WORKER_KEY_PREFIX)?;
            (!pool.is_empty()).then(|| (var.clone(), pool.to_ascii_lowercase().replace('_', "-")))
        })
        .collect();
    pools.sort();
    for (var, pool) in pools {
        keys.extend(given(
            &var,
            format!("worker-{pool}"),
            Role::Worker,
            Some(pool),
        ));
    }
    keys
}

/// Stores the keys the environment gives (replacing older ones of the same name), except
/// those whose value was revoked; and when there is no admin key among them and no key at
/// all in the store, makes an admin key and prints it once on stderr.
pub async fn bootstrap_keys(store: &dyn Store, given: &[GivenKey]) -> anyhow::Result<()> {
    let none_yet = store.list_keys().await?.is_empty();
    let revoked = revoked(store).await?;
    for k in given {
        let hash = hash_key(k.secret.expose());
        if let Some(r) = revoked.iter().find(|r| r.hash == hash) {
            tracing::warn!(
                key = %r.name,
                revoked_at = %time::rfc3339(r.at),
                "{} is a revoked key: not stored again. Set a new value to bootstrap the key, \
                 or unset it",
                k.var
            );
            continue;
        }
        let record = ApiKey::for_secret(
            k.secret.expose(),
            k.name.clone(),
            k.role,
            k.pool.clone(),
            None,
        );
        store.put_key(&record, true).await?;
    }
    if none_yet && !given.iter().any(|k| k.role == Role::Admin) {
        let k = generate_key().map_err(anyhow::Error::msg)?;
        let record = ApiKey::for_secret(&k, "admin".into(), Role::Admin, None, None);
        store.put_key(&record, false).await?;
        eprintln!(
            "cloudo: no API key existed, so an admin key was created. It is shown only now:\n\n    {k}\n\nUse it as 'Authorization: Bearer <key>'; create others with 'cloudo keys create'."
        );
    }
    Ok(())
}
