//! An OpenID Connect provider (Entra ID, Google, Keycloak…): discovery, the authorization
//! code flow with PKCE, and ID token validation. Nothing here is provider-specific: the
//! issuer's discovery document says where everything is.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use cloudo_core::auth::Role;
use cloudo_worker::secrets::Secret;
use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::api::jwks::JwksCache;

/// How long a discovery document is trusted before it is read again.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The issuer URL (`https://login.microsoftonline.com/<tenant>/v2.0`).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// The claim whose values map to roles (`groups`, `roles`).
    pub role_claim: String,
    /// Claim value → role (viewer, operator or admin).
    pub roles: BTreeMap<String, Role>,
    pub scopes: String,
    /// What the sign-in button says.
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// Who signed in.
#[derive(Debug, Clone)]
pub struct User {
    pub subject: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// The highest role the role claim maps to, if any.
    pub role: Option<Role>,
}

/// The discovery document, the keys it points to, and when it was read.
type Discovered = (Arc<Discovery>, Arc<JwksCache>, Instant);

#[derive(Debug)]
pub struct Provider {
    cfg: OidcConfig,
    http: reqwest::Client,
    discovered: Mutex<Option<Discovered>>,
}

/// URL-safe base64 of 32 random bytes.
pub fn random_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The PKCE S256 challenge of `verifier`.
pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn rank(r: Role) -> u8 {
    match r {
        Role::Admin => 3,
        Role::Operator => 2,
        Role::Viewer => 1,
        _ => 0,
    }
}

impl Provider {
    pub fn new(cfg: OidcConfig) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            cfg,
            http,
            discovered: Mutex::default(),
        })
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    async fn discovery(&self) -> Result<(Arc<Discovery>, Arc<JwksCache>), String> {
        let mut held = self.discovered.lock().await;
        if let Some((d, k, at)) = held.as_ref()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok((d.clone(), k.clone()));
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.cfg.issuer.trim_end_matches('/')
        );
        let d: Discovery = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("cannot read the provider's discovery document: {e}"))?
            .json()
            .await
            .map_err(|e| format!("bad discovery document: {e}"))?;
        if d.issuer.trim_end_matches('/') != self.cfg.issuer.trim_end_matches('/') {
            return Err(format!(
                "the discovery document names issuer {:?}, not the configured {:?}",
                d.issuer, self.cfg.issuer
            ));
        }
        let keys = Arc::new(JwksCache::new(self.http.clone(), d.jwks_uri.clone()));
        let d = Arc::new(d);
        *held = Some((d.clone(), keys.clone(), Instant::now()));
        Ok((d, keys))
    }

    /// Where to send the browser to sign in.
    pub async fn authorize_url(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        verifier: &str,
    ) -> Result<String, String> {
        let (d, _) = self.discovery().await?;
        let query = serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", self.cfg.client_id.as_str()),
            ("redirect_uri", redirect_uri),
            ("scope", self.cfg.scopes.as_str()),
            ("state", state),
            ("nonce", nonce),
            ("code_challenge", &challenge(verifier)),
            ("code_challenge_method", "S256"),
        ])
        .map_err(|e| e.to_string())?;
        let sep = if d.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(format!("{}{sep}{query}", d.authorization_endpoint))
    }

    /// Exchanges the authorization code for tokens; the user of the ID token, checked.
    pub async fn sign_in(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
        nonce: &str,
    ) -> Result<User, String> {
        let (d, keys) = self.discovery().await?;
        let form = serde_urlencoded::to_string([
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", self.cfg.client_id.as_str()),
            ("client_secret", self.cfg.client_secret.expose()),
            ("code_verifier", verifier),
        ])
        .map_err(|e| e.to_string())?;
        let res = self
            .http
            .post(&d.token_endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(form)
            .send()
            .await
            .map_err(|e| format!("the token endpoint cannot be reached: {e}"))?;
        let status = res.status();
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!(
                "the provider refused the code ({status}): {}",
                body["error_description"]
                    .as_str()
                    .or(body["error"].as_str())
                    .unwrap_or("no reason given")
            ));
        }
        let id_token = body["id_token"]
            .as_str()
            .ok_or("the provider's answer has no id_token")?;
        self.validate(id_token, &d.issuer, &keys, nonce).await
    }

    async fn validate(
        &self,
        token: &str,
        issuer: &str,
        keys: &JwksCache,
        nonce: &str,
    ) -> Result<User, String> {
        let header = decode_header(token).map_err(|e| format!("malformed ID token: {e}"))?;
        if header.alg != Algorithm::RS256 {
            return Err(format!("unexpected ID token algorithm {:?}", header.alg));
        }
        let kid = header.kid.ok_or("the ID token names no key")?;
        let key = keys.key(&kid).await?;
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&[&self.cfg.client_id]);
        v.set_issuer(&[issuer]);
        v.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        v.leeway = 60;
        let claims = decode::<serde_json::Value>(token, &key, &v)
            .map_err(|e| format!("invalid ID token: {e}"))?
            .claims;
        if claims["nonce"].as_str() != Some(nonce) {
            return Err("the ID token's nonce is not this sign-in's".into());
        }
        let text = |k: &str| claims[k].as_str().map(str::to_string);
        let values: Vec<String> = match &claims[self.cfg.role_claim.as_str()] {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        let role = values
            .iter()
            .filter_map(|v| self.cfg.roles.get(v).copied())
            .max_by_key(|r| rank(*r));
        Ok(User {
            subject: text("sub").ok_or("the ID token has no subject")?,
            name: text("name"),
            email: text("email").or_else(|| text("preferred_username")),
            role,
        })
    }
}

#[cfg(test)]
mod tests {
    /// RFC 7636, appendix B.
    #[test]
    fn the_pkce_challenge_is_s256() {
        assert_eq!(
            super::challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
