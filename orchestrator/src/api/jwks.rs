//! Signing keys of a token issuer (a JWKS document): fetched, cached for a day, refetched -
//! at most once a minute - when a token names a key id not seen yet. Used for Entra ID
//! Secure Webhook tokens and for OpenID Connect ID tokens.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use tokio::sync::RwLock;

const JWKS_TTL: Duration = Duration::from_secs(24 * 3600);
const REFETCH_AT_MOST: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

pub struct JwksCache {
    url: String,
    http: reqwest::Client,
    keys: RwLock<Keys>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Debug, Deserialize)]
struct Jwk {
    kid: Option<String>,
    kty: String,
    n: Option<String>,
    e: Option<String>,
}

impl JwksCache {
    pub fn new(http: reqwest::Client, url: String) -> Self {
        Self {
            url,
            http,
            keys: RwLock::default(),
        }
    }

    async fn refresh(&self) -> Result<(), String> {
        let jwks: Jwks = self
            .http
            .get(&self.url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("cannot fetch the JWKS: {e}"))?
            .json()
            .await
            .map_err(|e| format!("bad JWKS: {e}"))?;
        let mut by_kid = HashMap::new();
        for k in jwks.keys {
            if let (Some(kid), "RSA", Some(n), Some(e)) = (k.kid, k.kty.as_str(), k.n, k.e)
                && let Ok(key) = DecodingKey::from_rsa_components(&n, &e)
            {
                by_kid.insert(kid, key);
            }
        }
        *self.keys.write().await = Keys {
            by_kid,
            fetched: Some(Instant::now()),
        };
        Ok(())
    }

    /// The RSA key `kid`.
    pub async fn key(&self, kid: &str) -> Result<DecodingKey, String> {
        {
            let keys = self.keys.read().await;
            let fresh = keys.fetched.is_some_and(|t| t.elapsed() < JWKS_TTL);
            if fresh && let Some(k) = keys.by_kid.get(kid) {
                return Ok(k.clone());
            }
            let recently = keys.fetched.is_some_and(|t| t.elapsed() < REFETCH_AT_MOST);
            if fresh && recently {
                return Err(format!("unknown signing key {kid:?}"));
            }
        }
        self.refresh().await?;
        self.keys
            .read()
            .await
            .by_kid
            .get(kid)
            .cloned()
            .ok_or_else(|| format!("unknown signing key {kid:?}"))
    }
}
