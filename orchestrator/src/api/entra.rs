//! Entra ID "Secure Webhook": Azure Monitor action groups that call with a bearer JWT
//! instead of a key in the URL.
//!
//! The token must be signed (RS256) by a key of the tenant's JWKS (fetched, cached for a
//! day, refetched - at most once a minute - when an unknown key id shows up), carry our
//! audience and the tenant's issuer (v2 or v1 form), be within its validity, and hold the
//! app role `ActionGroupsSecureWebhook`. Such a caller gets the `ingest` role.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use tokio::sync::RwLock;

/// The app role Azure's action groups service principal is given.
pub const ROLE: &str = "ActionGroupsSecureWebhook";
const JWKS_TTL: Duration = Duration::from_secs(24 * 3600);
const REFETCH_AT_MOST: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct EntraConfig {
    pub tenant: String,
    pub audience: String,
    pub jwks_url: String,
}

#[derive(Debug, Default)]
struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

pub struct EntraValidator {
    cfg: EntraConfig,
    http: reqwest::Client,
    keys: RwLock<Keys>,
}

impl std::fmt::Debug for EntraValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntraValidator")
            .field("tenant", &self.cfg.tenant)
            .field("audience", &self.cfg.audience)
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

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    appid: Option<String>,
    #[serde(default)]
    azp: Option<String>,
}

/// Does this bearer value look like a JWT (rather than an API key)?
pub fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.split('.').count() == 3
}

impl EntraValidator {
    pub fn new(cfg: EntraConfig) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            cfg,
            http,
            keys: RwLock::default(),
        })
    }

    async fn refresh(&self) -> Result<(), String> {
        let jwks: Jwks = self
            .http
            .get(&self.cfg.jwks_url)
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

    async fn key(&self, kid: &str) -> Result<DecodingKey, String> {
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

    /// Validates a token; returns the caller's app id.
    pub async fn validate(&self, token: &str) -> Result<String, String> {
        let header = decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
        if header.alg != Algorithm::RS256 {
            return Err(format!("unexpected algorithm {:?}", header.alg));
        }
        let kid = header.kid.ok_or("token has no key id")?;
        let key = self.key(&kid).await?;
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&[&self.cfg.audience]);
        v.set_issuer(&[
            format!("https://login.microsoftonline.com/{}/v2.0", self.cfg.tenant),
            format!("https://sts.windows.net/{}/", self.cfg.tenant),
        ]);
        v.set_required_spec_claims(&["exp", "aud", "iss"]);
        v.leeway = 60;
        let data = decode::<Claims>(token, &key, &v).map_err(|e| format!("invalid token: {e}"))?;
        if !data.claims.roles.iter().any(|r| r == ROLE) {
            return Err(format!("token lacks the {ROLE} role"));
        }
        Ok(data
            .claims
            .appid
            .or(data.claims.azp)
            .unwrap_or_else(|| "entra".into()))
    }
}
