//! The worker's token endpoint for runbooks: the managed-identity protocol of App Service
//! and Container Apps (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`, api-version 2019-08-01), which
//! `az login --identity`, the Azure SDKs and kubelogin speak. A run of a schema with
//! `azure: true` gets the endpoint and a secret of its own; the endpoint answers that secret
//! with tokens for the schema's scopes only, as the schema's identity, for as long as the run
//! lasts. Nothing else: other scopes, identities, secrets and ended runs are refused. Tokens
//! come from the worker's own credential (`cloudo_azure::runbook_tokens`) and are never
//! logged.
//!
//! The endpoint listens on the worker's loopback (the process sandbox, which shares the
//! worker's network) and on a Unix socket that bwrap and docker map into the sandbox,
//! where the relay (`sandbox::relay`) puts it on the sandbox's own loopback. The relay
//! also fetches a run's files (its kubeconfig) from here when the sandbox cannot give
//! them itself (docker).

pub mod aks;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cloudo_azure::CredentialKind;
use cloudo_azure::runbook_tokens::RunbookTokens;
use cloudo_core::auth::{generate_key, hash_key};
use cloudo_core::schema::access::AzureAccess;
use hyper::{Request, StatusCode};

use crate::sandbox::relay::FILE_PATH;
use crate::sandbox::{BrokerLink, RunFile};
use crate::secrets::Secret;
use crate::small_http::{Answer, json};

/// The path tokens are asked for at.
const TOKEN_PATH: &str = "/msi/token";

/// What one run may have.
#[derive(Debug, Clone)]
struct Grant {
    exec_id: String,
    /// Tokens (`azure: true`), or none.
    access: Option<AzureAccess>,
    /// Files the relay may fetch for the run (sandboxes that cannot give them themselves).
    files: Vec<RunFile>,
}

struct Inner {
    addr: SocketAddr,
    /// The same endpoint on a Unix socket, for sandboxes with their own network; in a
    /// folder of the worker's temporary ones (removed with it, or as a leftover).
    socket: PathBuf,
    _socket_dir: tempfile::TempDir,
    /// The relay those sandboxes start runbooks with: this very binary.
    relay: PathBuf,
    /// The worker's own identity (`AZURE_CLIENT_ID`, for storage): never a runbook's.
    worker_identity: Option<String>,
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
            .field("socket", &self.0.socket)
            .finish_non_exhaustive()
    }
}

/// A run's access: the variables its runbook gets, and how an isolating sandbox reaches
/// the endpoint. Dropping it (the run ended) revokes it.
pub struct RunGrant {
    broker: TokenBroker,
    key: String,
    pub env: Vec<(String, String)>,
    pub link: BrokerLink,
}

impl std::fmt::Debug for RunGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("RunGrant")
            .field("env", &names)
            .field("link", &self.link)
            .finish_non_exhaustive()
    }
}

impl Drop for RunGrant {
    fn drop(&mut self) {
        // Revoked even if another thread panicked holding the lock.
        let mut g = self
            .broker
            .0
            .grants
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        g.remove(&self.key);
    }
}

impl TokenBroker {
    /// Listens on loopback (an ephemeral port) and on a Unix socket, and serves until the
    /// process ends.
    pub async fn start(
        kind: CredentialKind,
        default_identity: Option<String>,
        worker_identity: Option<String>,
    ) -> std::io::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        // The sandboxes' users (65534) connect: the folder is searchable, the socket
        // writable by all; what answers is still only a run's secret.
        let dir = tempfile::Builder::new()
            .prefix(&crate::sandbox::run_dir_prefix())
            .tempdir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))?;
        let socket = dir.path().join("identity.sock");
        let unix = tokio::net::UnixListener::bind(&socket)?;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))?;
        let tokens = Arc::new(RunbookTokens::new(kind, default_identity));
        let broker = Self(Arc::new(Inner {
            addr: listener.local_addr()?,
            socket,
            _socket_dir: dir,
            relay: std::env::current_exe()?,
            worker_identity,
            grants: Mutex::default(),
            aks: aks::AksAccessor::new(tokens.clone()),
            tokens,
        }));
        tokio::spawn(broker.serve_on(listener));
        tokio::spawn(broker.serve_on(unix));
        Ok(broker)
    }

    fn serve_on<L: crate::small_http::Listener>(
        &self,
        listener: L,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let me = self.clone();
        crate::small_http::serve(
            listener,
            "runbook tokens",
            move |req| {
                let me = me.clone();
                async move { me.answer(req).await }
            },
            std::future::pending(),
        )
    }

    /// Kubeconfigs for runs of schemas with `aks: true`.
    pub fn aks(&self) -> &aks::AksAccessor {
        &self.0.aks
    }

    /// Access for one run of `exec_id`: tokens as `access` allows (if at all) and `files`,
    /// with a fresh secret valid until the grant is dropped.
    pub fn grant(
        &self,
        exec_id: &str,
        access: Option<&AzureAccess>,
        files: &[RunFile],
    ) -> Result<RunGrant, String> {
        let secret = generate_key().map_err(|e| format!("cannot make the run's secret: {e}"))?;
        let key = hash_key(&secret);
        // The identity it acts as, settled now: the schema's, else the worker's default.
        let access = match access {
            Some(a) => Some(AzureAccess {
                identity: self.runbook_identity(a.identity.as_deref())?,
                ..a.clone()
            }),
            None => None,
        };
        let access = access.as_ref();
        self.0
            .grants
            .lock()
            .map_err(|_| "token grants poisoned")?
            .insert(
                key.clone(),
                Grant {
                    exec_id: exec_id.to_string(),
                    access: access.cloned(),
                    files: files.to_vec(),
                },
            );
        let mut env = Vec::new();
        if let Some(access) = access {
            env.push((
                "IDENTITY_ENDPOINT".to_string(),
                format!("http://{}{TOKEN_PATH}", self.0.addr),
            ));
            env.push(("IDENTITY_HEADER".to_string(), secret.clone()));
            if let Some(id) = &access.identity {
                env.push(("AZURE_CLIENT_ID".to_string(), id.clone()));
            }
        }
        Ok(RunGrant {
            broker: self.clone(),
            key,
            env,
            link: BrokerLink {
                socket: self.0.socket.clone(),
                relay: self.0.relay.clone(),
                secret: Secret::new(secret),
                tokens: access.is_some(),
            },
        })
    }

    /// The identity a runbook acts as: its schema's, else the worker's default
    /// (`CLOUDO_RUNBOOK_CLIENT_ID`); never the worker's own (`AZURE_CLIENT_ID`, for storage),
    /// which a credential left without a client id could fall back to.
    pub fn runbook_identity(
        &self,
        schema_identity: Option<&str>,
    ) -> Result<Option<String>, String> {
        let id = self.0.tokens.identity_for(schema_identity);
        let Some(own) = &self.0.worker_identity else {
            return Ok(id);
        };
        match id {
            None => Err(format!(
                "this worker has an identity of its own (AZURE_CLIENT_ID {own}), which runbooks \
                 never get: name theirs with CLOUDO_RUNBOOK_CLIENT_ID on the worker or the \
                 schema's azure_identity"
            )),
            Some(id) if id.eq_ignore_ascii_case(own) => Err(format!(
                "identity {id} is the worker's own (AZURE_CLIENT_ID), which runbooks never get"
            )),
            Some(id) => Ok(Some(id)),
        }
    }

    /// The grant `req`'s X-IDENTITY-HEADER names, if a run holds it.
    fn grant_of<B>(&self, req: &Request<B>) -> Option<Grant> {
        let secret = req
            .headers()
            .get("x-identity-header")
            .and_then(|v| v.to_str().ok())
            .filter(|s| !s.is_empty())?;
        self.0
            .grants
            .lock()
            .ok()
            .and_then(|g| g.get(&hash_key(secret)).cloned())
    }

    /// A run's file, for the relay of a sandbox that cannot give it itself.
    fn run_file(grant: &Grant, name: &str) -> Answer {
        let Some(f) = grant.files.iter().find(|f| f.name == name) else {
            return refuse(
                StatusCode::NOT_FOUND,
                "no_such_file",
                "this run has no such file",
                Some(&grant.exec_id),
            );
        };
        tracing::info!(exec_id = %grant.exec_id, file = name, outcome = "given", "run file");
        let mut res = hyper::Response::new(http_body_util::Full::new(hyper::body::Bytes::from(
            f.content.expose().to_string(),
        )));
        res.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/octet-stream"),
        );
        res
    }

    async fn answer<B>(&self, req: Request<B>) -> Answer {
        let path = req.uri().path();
        let file = path.strip_prefix(FILE_PATH);
        if req.method() != hyper::Method::GET || (path != TOKEN_PATH && file.is_none()) {
            return refuse(
                StatusCode::NOT_FOUND,
                "not_found",
                "only GET /msi/token",
                None,
            );
        }
        let Some(grant) = self.grant_of(&req) else {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "invalid_secret",
                "no run holds this X-IDENTITY-HEADER (wrong, or the run ended)",
                None,
            );
        };
        if let Some(name) = file {
            return Self::run_file(&grant, name);
        }
        let q: HashMap<String, String> = req
            .uri()
            .query()
            .map(|q| serde_urlencoded::from_str(q).unwrap_or_default())
            .unwrap_or_default();
        let exec = Some(grant.exec_id.as_str());
        let Some(access) = &grant.access else {
            return refuse(
                StatusCode::FORBIDDEN,
                "no_azure_access",
                "this runbook's schema has no Azure access (azure: true)",
                exec,
            );
        };
        let resource = q.get("resource").map(String::as_str).unwrap_or_default();
        if !access.allows(resource) {
            return refuse(
                StatusCode::FORBIDDEN,
                "scope_not_allowed",
                &format!("this runbook's schema does not allow tokens for {resource:?}"),
                exec,
            );
        }
        if let Some(asked) = q.get("client_id").filter(|c| !c.is_empty())
            && access.identity.as_deref() != Some(asked.as_str())
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
            .token(&scope, access.identity.as_deref())
            .await
        {
            Ok(t) => {
                tracing::info!(exec_id = %grant.exec_id, scope = %scope, outcome = "issued", "runbook token");
                let body = serde_json::json!({
                    "access_token": t.secret,
                    "expires_on": t.expires_on.to_string(),
                    "resource": resource,
                    "token_type": "Bearer",
                    "client_id": access.identity.clone().unwrap_or_default(),
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
