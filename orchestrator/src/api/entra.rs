//! Entra ID "Secure Webhook": Azure Monitor action groups that call with a bearer JWT
//! instead of a key in the URL.
//!
//! The token must be signed (RS256) by a key of the tenant's JWKS (fetched, cached for a
//! day, refetched - at most once a minute - when an unknown key id shows up), carry our
//! audience and the tenant's issuer (v2 or v1 form), be within its validity, and hold the
//! app role `ActionGroupsSecureWebhook`. Such a caller gets the `ingest` role.

use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
use serde::Deserialize;

use super::jwks::JwksCache;

/// The app role Azure's action groups service principal is given.
pub const ROLE: &str = "ActionGroupsSecureWebhook";

#[derive(Debug, Clone)]
pub struct EntraConfig {
    pub tenant: String,
    pub audience: String,
    pub jwks_url: String,
}

#[derive(Debug)]
pub struct EntraValidator {
    cfg: EntraConfig,
    keys: JwksCache,
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
            keys: JwksCache::new(http, cfg.jwks_url.clone()),
            cfg,
        })
    }

    /// Validates a token; returns the caller's app id.
    pub async fn validate(&self, token: &str) -> Result<String, String> {
        let header = decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
        if header.alg != Algorithm::RS256 {
            return Err(format!("unexpected algorithm {:?}", header.alg));
        }
        let kid = header.kid.ok_or("token has no key id")?;
        let key = self.keys.key(&kid).await?;
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
