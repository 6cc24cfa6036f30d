//! Key life-cycle rules shared by the API and `cloudo keys`: revocation is remembered, and
//! the bootstrap admin key (`CLOUDO_ADMIN_KEY`) is stored at start-up unless it was revoked.
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

/// The first admin key: `CLOUDO_ADMIN_KEY` (stored as the key `admin`, replacing an older
/// one) unless that value was revoked; or, when no key exists at all, a generated one
/// printed once on stderr.
pub async fn bootstrap_admin(store: &dyn Store, key: Option<&Secret>) -> anyhow::Result<()> {
    let record = |k: &str| ApiKey::for_secret(k, "admin".into(), Role::Admin, None, None);
    match key {
        Some(k) => {
            let hash = hash_key(k.expose());
            if let Some(r) = revoked(store).await?.into_iter().find(|r| r.hash == hash) {
                tracing::warn!(
                    key = %r.name,
                    revoked_at = %time::rfc3339(r.at),
                    "CLOUDO_ADMIN_KEY is a revoked key: not stored again. Set a new value to \
                     bootstrap an admin key, or unset it"
                );
                return Ok(());
            }
            store.put_key(&record(k.expose()), true).await?;
        }
        None if store.list_keys().await?.is_empty() => {
            let k = generate_key().map_err(anyhow::Error::msg)?;
            store.put_key(&record(&k), false).await?;
            eprintln!(
                "cloudo: no API key existed, so an admin key was created. It is shown only now:\n\n    {k}\n\nUse it as 'Authorization: Bearer <key>'; create others with 'cloudo keys create'."
            );
        }
        None => {}
    }
    Ok(())
}
