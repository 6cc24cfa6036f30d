//! The worker's token endpoint for runbooks: the managed-identity protocol of App Service
//! and Container Apps (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`, api-version 2019-08-01), which
//! `az login --identity`, the Azure SDKs and kubelogin speak. A run of a schema with
//! `azure: true` gets the endpoint and a secret of its own; the endpoint answers that secret
//! with tokens for the schema's scopes only, as the schema's identity, for as long as the run
//! lasts. Nothing else: other scopes, identities, secrets and ended runs are refused. Tokens
//! come from the worker's own credential (`cloudo_azure::runbook_tokens`) and are never
//! logged.

pub mod aks;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use cloudo_azure::CredentialKind;
use cloudo_azure::runbook_tokens::RunbookTokens;
use cloudo_core::auth::{generate_key, hash_key};
use cloudo_core::schema::access::AzureAccess;
use hyper::{Request, StatusCode};

use crate::small_http::{Answer, json};

/// The path tokens are asked for at.
const TOKEN_PATH: &str = "/msi/token";

/// What one run may have.
#[derive(Debug, Clone)]
struct Grant {
    exec_id: String,
    access: AzureAccess,
}

struct Inner {
    addr: SocketAddr,
    /// By the SHA-256 of the run's secret.
    grants: Mutex<HashMap<String, Grant>>,
    tokens: Arc<RunbookTokens>,
    aks: aks::AksAccessor,
}

/// The endpoint, shared by every run of this worker.
#[derive(Clone)]
pub struct TokenBroker(Arc<Inner>);

impl std::fmt::Debug for TokenBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBroker")
            .field("addr", &self.0.addr)
            .finish_non_exhaustive()
    }
}

/// A run's access: the variables its runbook gets. Dropping it (the run ended) revokes it.
#[derive(Debug)]
pub struct RunGrant {
    broker: TokenBroker,
    key: String,
    pub env: Vec<(String, String)>,
}

impl Drop for RunGrant {
    fn drop(&mut self) {
        if let Ok(mut g) = self.broker.0.grants.lock() {
            g.remove(&self.key);
        }
    }
}

impl TokenBroker {
    /// Listens on loopback (an ephemeral port) and serves until the process ends.
    pub async fn start(kind: CredentialKind) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let tokens = Arc::new(RunbookTokens::new(kind));
        let broker = Self(Arc::new(Inner {
            addr: listener.local_addr()?,
            grants: Mutex::default(),
            aks: aks::AksAccessor::new(tokens.clone()).map_err(std::io::Error::other)?,
            tokens,
        }));
        let me = broker.clone();
        tokio::spawn(crate::small_http::serve(
            listener,
            "runbook tokens",
            move |req| {
                let me = me.clone();
                async move { me.answer(req).await }
            },
            std::future::pending(),
        ));
        Ok(broker)
    }

    /// Kubeconfigs for runs of schemas with `aks: true`.
    pub fn aks(&self) -> &aks::AksAccessor {
        &self.0.aks
    }

    /// Access for one run of `exec_id`: a fresh secret, valid until the grant is dropped.
    pub fn grant(&self, exec_id: &str, access: &AzureAccess) -> Result<RunGrant, String> {
        let secret = generate_key().map_err(|e| format!("cannot make the run's secret: {e}"))?;
        let key = hash_key(&secret);
        self.0
            .grants
            .lock()
            .map_err(|_| "token grants poisoned")?
            .insert(
                key.clone(),
                Grant {
                    exec_id: exec_id.to_string(),
                    access: access.clone(),
                },
            );
        let mut env = vec![
            (
                "IDENTITY_ENDPOINT".to_string(),
                format!("http://{}{TOKEN_PATH}", self.0.addr),
            ),
            ("IDENTITY_HEADER".to_string(), secret),
        ];
        if let Some(id) = &access.identity {
            env.push(("AZURE_CLIENT_ID".to_string(), id.clone()));
        }
        Ok(RunGrant {
            broker: self.clone(),
            key,
            env,
        })
    }

    async fn answer<B>(&self, req: Request<B>) -> Answer {
        if req.uri().path() != TOKEN_PATH || req.method() != hyper::Method::GET {
            return refuse(
                StatusCode::NOT_FOUND,
                "not_found",
                "only GET /msi/token",
                None,
            );
        }
        let q: HashMap<String, String> = req
            .uri()
            .query()
            .map(|q| serde_urlencoded::from_str(q).unwrap_or_default())
            .unwrap_or_default();
        let secret = req
            .headers()
            .get("x-identity-header")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let grant = if secret.is_empty() {
            None
        } else {
            self.0
                .grants
                .lock()
                .ok()
                .and_then(|g| g.get(&hash_key(secret)).cloned())
        };
        let Some(grant) = grant else {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "invalid_secret",
                "no run holds this X-IDENTITY-HEADER (wrong, or the run ended)",
                None,
            );
        };
        let exec = Some(grant.exec_id.as_str());
        let resource = q.get("resource").map(String::as_str).unwrap_or_default();
        if !grant.access.allows(resource) {
            return refuse(
                StatusCode::FORBIDDEN,
                "scope_not_allowed",
                &format!("this runbook's schema does not allow tokens for {resource:?}"),
                exec,
            );
        }
        if let Some(asked) = q.get("client_id").filter(|c| !c.is_empty())
            && grant.access.identity.as_deref() != Some(asked.as_str())
        {
            return refuse(
                StatusCode::FORBIDDEN,
                "identity_not_allowed",
                "this runbook's schema does not allow that identity",
                exec,
            );
        }
        if q.contains_key("mi_res_id")
            || q.contains_key("principal_id")
            || q.contains_key("object_id")
        {
            return refuse(
                StatusCode::FORBIDDEN,
                "identity_not_allowed",
                "name the identity by client_id (the schema's azure_identity)",
                exec,
            );
        }
        let scope = format!(
            "{}/.default",
            cloudo_core::schema::access::resource_of(resource)
        );
        match self
            .0
            .tokens
            .token(&scope, grant.access.identity.as_deref())
            .await
        {
            Ok(t) => {
                tracing::info!(exec_id = %grant.exec_id, scope = %scope, outcome = "issued", "runbook token");
                let body = serde_json::json!({
                    "access_token": t.secret,
                    "expires_on": t.expires_on.to_string(),
                    "resource": resource,
                    "token_type": "Bearer",
                    "client_id": grant.access.identity.clone().unwrap_or_default(),
                });
                json(StatusCode::OK, &body)
            }
            Err(why) => {
                tracing::warn!(exec_id = %grant.exec_id, scope = %scope, outcome = "failed", error = %why, "runbook token");
                json(
                    StatusCode::BAD_GATEWAY,
                    &serde_json::json!({"error": "upstream", "error_description": why}),
                )
            }
        }
    }
}

/// A refusal, logged with the run it concerns (when known), in the shape Azure's
/// managed-identity endpoints use.
fn refuse(status: StatusCode, error: &str, description: &str, exec_id: Option<&str>) -> Answer {
    tracing::warn!(
        exec_id = exec_id.unwrap_or("-"),
        outcome = error,
        reason = description,
        "runbook token refused"
    );
    json(
        status,
        &serde_json::json!({"error": error, "error_description": description}),
    )
}
