//! Finding the caller's key: where a request may carry it, and a short-lived cache of key
//! lookups (with the throttle on `last_used_at` updates).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use cloudo_core::auth::{ApiKey, hash_key};

use crate::api::ApiError;

/// Caches key look-ups briefly (a revocation in this process clears it at once; other
/// replicas see it within [`CACHE_TTL`]) and throttles `last_used_at` writes.
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (Option<ApiKey>, Instant)>>,
    touched: Mutex<HashMap<String, Instant>>,
}

const CACHE_TTL: Duration = Duration::from_secs(5);
const TOUCH_EVERY: Duration = Duration::from_secs(60);

impl KeyCache {
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub(crate) async fn lookup(
        &self,
        store: &crate::services::view::StoreView,
        key: &str,
    ) -> Result<Option<ApiKey>, ApiError> {
        self.lookup_hash(store, hash_key(key)).await
    }

    /// The key whose hash is `hash` (a console session keeps the hash, not the key).
    pub(super) async fn lookup_hash(
        &self,
        store: &crate::services::view::StoreView,
        hash: String,
    ) -> Result<Option<ApiKey>, ApiError> {
        if let Some((k, at)) = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(k.clone());
        }
        let found = store.key_by_hash(&hash).await?;
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(hash, (found.clone(), Instant::now()));
        Ok(found)
    }

    pub(super) fn should_touch(&self, name: &str) -> bool {
        let mut t = self.touched.lock().unwrap_or_else(|p| p.into_inner());
        match t.get(name) {
            Some(at) if at.elapsed() < TOUCH_EVERY => false,
            _ => {
                t.insert(name.to_string(), Instant::now());
                true
            }
        }
    }
}

/// The credentials of an `Authorization` header of `scheme` (compared without regard to
/// case, as RFC 9110 says: `bearer` is `Bearer`).
pub(super) fn authorization<'a>(headers: &'a HeaderMap, scheme: &str) -> Option<&'a str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (s, rest) = v.split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// The credential a request carries, if any.
pub(super) fn credential(
    headers: &HeaderMap,
    query: Option<&str>,
    allow_query: bool,
) -> Option<String> {
    if headers.contains_key(header::AUTHORIZATION) {
        if let Some(k) = authorization(headers, "Bearer") {
            return Some(k.to_string());
        }
        if let Some(b) = authorization(headers, "Basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()?;
            let text = String::from_utf8(decoded).ok()?;
            return text.split_once(':').map(|(_, pass)| pass.to_string());
        }
    }
    if let Some(k) = headers.get("x-cloudo-key").and_then(|v| v.to_str().ok()) {
        return Some(k.to_string());
    }
    if allow_query {
        for pair in query.unwrap_or_default().split('&') {
            if let Some((k, v)) = pair.split_once('=')
                && (k == "code" || k == "x-cloud-key")
                && !v.is_empty()
            {
                return Some(v.to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn credentials_from_every_place() {
        let mut h = HeaderMap::new();
        assert_eq!(credential(&h, Some("code=k1"), true).as_deref(), Some("k1"));
        assert_eq!(
            credential(&h, Some("id=x&x-cloud-key=k2"), true).as_deref(),
            Some("k2")
        );
        assert_eq!(
            credential(&h, Some("code=k1"), false),
            None,
            "query keys only on ingest routes"
        );
        h.insert("x-cloudo-key", HeaderValue::from_static("k3"));
        assert_eq!(credential(&h, None, false).as_deref(), Some("k3"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjprNA=="),
        );
        assert_eq!(credential(&h, None, false).as_deref(), Some("k4"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer k5"));
        assert_eq!(credential(&h, None, false).as_deref(), Some("k5"));
        // The scheme is case-insensitive (RFC 9110 §11.1).
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer k6"));
        assert_eq!(credential(&h, None, false).as_deref(), Some("k6"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("BASIC dXNlcjprNw=="),
        );
        assert_eq!(credential(&h, None, false).as_deref(), Some("k7"));
    }
}
