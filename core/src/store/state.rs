//! [`StateStore`]: small records that replicas change together by compare-and-swap —
//! concurrency slots, rate windows, schedule ticks ([`crate::limits`]). Adapters only keep
//! versioned text; what a record means, and how it changes, is decided in `core`, the same
//! for every adapter ([`update_state`]).

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{StoreError, StoreResult};

/// A record's text and the version a compare-and-swap names (opaque: a counter, an ETag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub value: String,
    pub version: String,
}

#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    async fn read_state(&self, key: &str) -> StoreResult<Option<Versioned>>;
    /// Writes `value` under `key` if the record is still at version `expected` (`None`: only
    /// if there is no record). `Ok(false)`, writing nothing, when another writer was first.
    async fn write_state(
        &self,
        key: &str,
        value: &str,
        expected: Option<&str>,
    ) -> StoreResult<bool>;
    /// Deletes the record if it is still at version `expected`; `Ok(false)` otherwise.
    async fn delete_state(&self, key: &str, expected: &str) -> StoreResult<bool>;
    /// Every record whose key starts with `prefix`, by key.
    async fn list_state(&self, prefix: &str) -> StoreResult<Vec<(String, Versioned)>>;
}

/// How often [`update_state`] retries against other writers before it gives up.
const TRIES: usize = 50;

/// Reads the record under `key` as a `T` (its default when there is none), lets `f` change
/// it and writes it back if it changed, again from a fresh read whenever another writer was
/// first. Returns what `f` returned on the attempt that counted. `f` may run several times,
/// so it must only change the record (no side effects).
pub async fn update_state<S, T, R>(
    store: &S,
    key: &str,
    mut f: impl FnMut(&mut T) -> R + Send,
) -> StoreResult<R>
where
    S: StateStore + ?Sized,
    T: Serialize + DeserializeOwned + Default + PartialEq + Send,
    R: Send,
{
    for _ in 0..TRIES {
        let current = store.read_state(key).await?;
        let before: T = match &current {
            Some(v) => serde_json::from_str(&v.value)
                .map_err(|e| StoreError::Corrupt(format!("state {key:?}: {e}")))?,
            None => T::default(),
        };
        let mut after: T = match &current {
            Some(v) => serde_json::from_str(&v.value)
                .map_err(|e| StoreError::Corrupt(format!("state {key:?}: {e}")))?,
            None => T::default(),
        };
        let out = f(&mut after);
        if after == before {
            return Ok(out);
        }
        let text = serde_json::to_string(&after)
            .map_err(|e| StoreError::Corrupt(format!("state {key:?}: {e}")))?;
        let expected = current.as_ref().map(|v| v.version.as_str());
        if store.write_state(key, &text, expected).await? {
            return Ok(out);
        }
    }
    Err(StoreError::Conflict(format!(
        "state {key:?} kept changing under {TRIES} attempts to update it"
    )))
}

/// Reads the record under `key` as a `T`, if there is one.
pub async fn read_state_as<S, T>(store: &S, key: &str) -> StoreResult<Option<T>>
where
    S: StateStore + ?Sized,
    T: DeserializeOwned,
{
    match store.read_state(key).await? {
        None => Ok(None),
        Some(v) => serde_json::from_str(&v.value)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("state {key:?}: {e}"))),
    }
}
