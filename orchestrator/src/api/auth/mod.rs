//! Authentication, authorization and audit: one mechanism for every route.
//!
//! Routes are only ever added through [`RoleRouter::add`], which records the permission each
//! (method, path) needs, so a route cannot exist without a declared role. The middleware
//! (a route layer, so it sees the matched path) finds the caller's key, checks its role
//! against the table, and writes an audit record for every state-changing request.
//!
//! Keys come as `Authorization: Bearer <key>`, `x-cloudo-key: <key>` (ClouDO), basic auth
//! with the key as password (Alertmanager), or - on ingest routes only, for senders that
//! cannot set headers (Azure action groups) - `?code=<key>` / ClouDO's `?x-cloud-key=`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, State};
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use cloudo_core::auth::{AuditRecord, Permission, Role};
use cloudo_core::time;

pub use super::audit::AuditSink;
pub use super::ratelimit::RateLimit;
use super::{ApiError, AppState};

mod credentials;
pub mod session;
pub use credentials::KeyCache;
use credentials::{authorization, credential};

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub role: Role,
    /// The pool of a `worker` key.
    pub pool: Option<String>,
    /// The schemas it may run, approve and read.
    pub scope: cloudo_core::scope::Scope,
}

/// The permission table, filled by [`RoleRouter::add`].
pub type Table = Arc<HashMap<(Method, &'static str), Permission>>;

/// A router that cannot get a route without a permission.
pub struct RoleRouter {
    router: Router<AppState>,
    table: HashMap<(Method, &'static str), Permission>,
}

impl RoleRouter {
    pub fn new() -> Self {
        Self {
            router: Router::new(),
            table: HashMap::new(),
        }
    }

    /// Adds `path` with one (method, permission, handler) per method.
    pub fn add(
        mut self,
        path: &'static str,
        methods: Vec<(Method, Permission, MethodRouter<AppState>)>,
    ) -> Self {
        let mut mr = MethodRouter::new();
        for (method, perm, handler) in methods {
            self.table.insert((method, path), perm);
            mr = mr.merge(handler);
        }
        self.router = self.router.route(path, mr);
        self
    }

    pub fn finish(self) -> (Router<AppState>, Table) {
        (self.router, Arc::new(self.table))
    }
}

fn unauthorized(msg: &str) -> Response {
    let mut res = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", msg).into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"cloudo\""),
    );
    res
}

fn forbidden(role: Role, action: &str, perm: Permission) -> Response {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("role {role} may not {action}; it needs {}", perm.describe()),
    )
    .into_response()
}

/// The methods `path` declares.
fn declared<'a>(table: &'a Table, path: &str) -> Vec<&'a str> {
    let mut m: Vec<&str> = table
        .keys()
        .filter(|(_, p)| *p == path)
        .map(|(m, _)| m.as_str())
        .collect();
    m.sort_unstable();
    m
}

/// 405 with the methods `path` takes (`Allow`).
fn method_not_allowed(method: &Method, path: &str, allowed: Vec<&str>) -> Response {
    let allow = allowed.join(", ");
    let mut res = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {path}; allowed: {allow}"),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&allow) {
        res.headers_mut().insert(header::ALLOW, v);
    }
    res
}

/// A request whose method the matched path does not declare: 405 with the methods it
/// does (`Allow`), or — a path with no declared method at all — refused, failing closed.
fn undeclared(table: &Table, method: &Method, path: &str) -> Response {
    let mut allowed = declared(table, path);
    if allowed.is_empty() {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "route has no declared role",
        )
        .into_response();
    }
    if allowed.contains(&"GET") {
        allowed.push("HEAD");
    }
    allowed.sort_unstable();
    allowed.dedup();
    method_not_allowed(method, path, allowed)
}

/// The middleware: authenticate, authorize, audit.
pub async fn authorize(State(state): State<AppState>, req: Request<Body>, next: Next) -> Response {
    let head = req.method() == Method::HEAD;
    let method = if head {
        Method::GET
    } else {
        req.method().clone()
    };
    let Some(path) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
    else {
        return next.run(req).await;
    };
    let Some(&perm) = state
        .auth_table
        .iter()
        .find(|((m, p), _)| *m == method && *p == path)
        .map(|(_, perm)| perm)
    else {
        return undeclared(&state.auth_table, &method, &path);
    };
    // A HEAD must have no effect; the trigger's GET has one (ClouDO's trigger URL).
    if head && perm == Permission::Ingest {
        return method_not_allowed(&Method::HEAD, &path, declared(&state.auth_table, &path));
    }
    if perm == Permission::Public {
        return next.run(req).await;
    }
    let client_ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let source = client_ip.map(|ip| ip.to_string()).unwrap_or_default();
    if perm == Permission::Ingest
        && let Some(ip) = client_ip
        && let Err(wait) = state.ingest_limit.check(ip)
    {
        let mut res = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests from {ip}; retry in {wait} s"),
        )
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return res;
    }
    let target = req.uri().path().to_string();
    // Triggers change state even through GET (ClouDO's trigger URL accepts it).
    let mutating = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS)
        || perm == Permission::Ingest;
    let action = format!("{method} {path}");

    let bearer_jwt = authorization(req.headers(), "Bearer")
        .filter(|t| super::entra::looks_like_jwt(t))
        .map(str::to_string);
    // The console session the identity came from, for the handlers that show it.
    let mut from_session = None;
    let (identity, denied): (Option<Identity>, Option<Response>) = if state.dev_no_auth {
        (
            Some(Identity {
                name: "anonymous".into(),
                role: Role::Admin,
                pool: None,
                scope: Default::default(),
            }),
            None,
        )
    } else if let (Some(token), Some(entra), Permission::Ingest) = (&bearer_jwt, &state.entra, perm)
    {
        match entra.validate(token).await {
            Ok(app) => (
                Some(Identity {
                    name: format!("entra:{app}"),
                    role: Role::Ingest,
                    pool: None,
                    scope: Default::default(),
                }),
                None,
            ),
            Err(why) if why.contains(super::entra::ROLE) => (
                None,
                Some(ApiError::new(StatusCode::FORBIDDEN, "forbidden", why).into_response()),
            ),
            Err(why) => (
                None,
                Some(unauthorized(&format!("Entra token refused: {why}"))),
            ),
        }
    } else {
        let cred = credential(req.headers(), req.uri().query(), perm == Permission::Ingest);
        match cred {
            None => match session::token(req.headers(), state.secure_cookies) {
                None => (
                    None,
                    Some(unauthorized("a key is needed: Authorization: Bearer <key>")),
                ),
                Some(token) => match session::resolve(&state, token).await {
                    Err(e) => return e.into_response(),
                    Ok(None) => (
                        None,
                        Some(unauthorized(
                            "the session ended (signed out, expired, or its key revoked): sign in again",
                        )),
                    ),
                    Ok(Some((id, s))) => {
                        let refused = if mutating {
                            session::check_csrf(req.headers(), &s)
                        } else {
                            None
                        };
                        let refused = refused.or_else(|| {
                            (!id.role.allows(perm)).then(|| forbidden(id.role, &action, perm))
                        });
                        from_session = Some(s);
                        (Some(id), refused)
                    }
                },
            },
            Some(k) => match state.keys.lookup(&state.store, &k).await {
                Err(e) => return e.into_response(),
                Ok(None) => (None, Some(unauthorized("unknown or revoked key"))),
                Ok(Some(key)) if key.expired(time::now()) => {
                    (None, Some(unauthorized("expired key")))
                }
                Ok(Some(key)) if !key.role.allows(perm) => (
                    Some(Identity {
                        name: key.name.clone(),
                        role: key.role,
                        pool: key.pool.clone(),
                        scope: key.scope.clone(),
                    }),
                    Some(forbidden(key.role, &action, perm)),
                ),
                Ok(Some(key)) => {
                    if state.keys.should_touch(&key.name) {
                        let access = state.access.clone();
                        let name = key.name.clone();
                        tokio::spawn(async move {
                            let _ = access.touch(&name, time::now()).await;
                        });
                    }
                    (
                        Some(Identity {
                            name: key.name,
                            role: key.role,
                            pool: key.pool,
                            scope: key.scope,
                        }),
                        None,
                    )
                }
            },
        }
    };
    let identity_ext = identity.clone();
    let record = move |outcome: StatusCode| AuditRecord {
        at: time::now(),
        actor: identity
            .as_ref()
            .map_or_else(|| "unknown".into(), |i| i.name.clone()),
        role: identity
            .as_ref()
            .map_or_else(|| "-".into(), |i| i.role.to_string()),
        action,
        target,
        source,
        outcome: outcome.as_u16(),
    };
    if let Some(refused) = denied {
        if mutating {
            state.audit.record(record(refused.status())).await;
        }
        return refused;
    }
    let mut req = req;
    if let Some(id) = identity_ext {
        req.extensions_mut().insert(id);
    }
    if let Some(s) = from_session {
        req.extensions_mut().insert(s);
    }
    if !mutating {
        return next.run(req).await;
    }
    // A state-changing request runs to its end in a task of its own, audit record
    // included, even if the client goes away meanwhile (hyper then drops this future):
    // its effects never happen without their record.
    let audit = state.audit.clone();
    let handled = tokio::spawn(async move {
        let response = next.run(req).await;
        // Queued for the batch writer, off the answer's latency.
        audit.record(record(response.status())).await;
        response
    });
    match handled.await {
        Ok(response) => response,
        Err(e) => ApiError::internal(format!("request handler failed: {e}")).into_response(),
    }
}
