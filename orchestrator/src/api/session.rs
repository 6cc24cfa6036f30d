//! Console sign-in: `POST /api/session` with `{"key"}` opens a session behind an HttpOnly,
//! SameSite=Strict cookie (Secure over TLS); `GET /api/session` says who is signed in, with
//! the CSRF token the console sends back in `X-CSRF-Token`; `DELETE /api/session` signs out.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use cloudo_core::auth::{AuditRecord, Permission, hash_key};
use cloudo_core::time;
use serde::{Deserialize, Serialize};

use super::auth::Identity;
use super::auth::session::{resolve, set_cookie, token};
use super::body::optional_json;
use super::{ApiError, AppState};
use crate::services::sessions::{Owner, Session};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct SignIn {
    key: String,
}

/// Who is signed in.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    pub name: String,
    pub role: String,
    pub scope: cloudo_core::scope::Scope,
    /// `key` or `oidc` for a console session; `header` for a key sent with the request.
    pub via: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// What state-changing requests of this session send in `X-CSRF-Token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

impl Me {
    pub fn of(id: &Identity, session: Option<&Session>) -> Self {
        let (via, display_name, email) = match session.map(|s| &s.owner) {
            None => ("header", None, None),
            Some(Owner::Key { .. }) => ("key", None, None),
            Some(Owner::Oidc { name, email, .. }) => ("oidc", name.clone(), email.clone()),
        };
        Self {
            name: id.name.clone(),
            role: id.role.to_string(),
            scope: id.scope.clone(),
            via,
            display_name,
            email,
            expires_at: session.map(|s| time::rfc3339(s.expires_at)),
            csrf_token: session.map(|s| s.csrf.clone()),
        }
    }
}

async fn audit(
    state: &AppState,
    actor: &str,
    role: &str,
    action: &str,
    source: String,
    outcome: StatusCode,
) {
    state
        .audit
        .record(AuditRecord {
            at: time::now(),
            actor: actor.to_string(),
            role: role.to_string(),
            action: action.to_string(),
            target: "/api/session".into(),
            source,
            outcome: outcome.as_u16(),
        })
        .await;
}

/// The answer that sets the session cookie (or deletes it, `max_age` 0).
pub fn with_cookie(mut res: Response, state: &AppState, token: &str, max_age: u64) -> Response {
    if let Some(v) = set_cookie(token, state.secure_cookies, max_age) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

pub async fn sign_in(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let source = peer.map(|Extension(c)| c.0.ip());
    if let Some(ip) = source
        && let Err(wait) = state.sign_in_limit.check(ip)
    {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many sign-in attempts from {ip}; retry in {wait} s"),
        ));
    }
    let source = source.map(|ip| ip.to_string()).unwrap_or_default();
    // A declared JSON type (a cross-site form or a no-cors fetch cannot send one without a
    // preflight): no login CSRF.
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "sign in with content-type: application/json and {\"key\": \"<API key>\"}",
        ));
    }
    let (_, value) = optional_json(&headers, &body?)?
        .ok_or_else(|| ApiError::bad_request("expected {\"key\": \"<API key>\"}"))?;
    let SignIn { key } = serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("expected {{\"key\": \"<API key>\"}}: {e}")))?;
    let action = "POST /api/session";
    let found = state.keys.lookup(&state.store, key.trim()).await?;
    let Some(k) = found.filter(|k| !k.expired(time::now())) else {
        audit(
            &state,
            "unknown",
            "-",
            action,
            source,
            StatusCode::UNAUTHORIZED,
        )
        .await;
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unknown, revoked or expired key",
        ));
    };
    if !k.role.allows(Permission::Read) {
        audit(
            &state,
            &k.name,
            k.role.as_str(),
            action,
            source,
            StatusCode::FORBIDDEN,
        )
        .await;
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "a {} key cannot sign in to the console (viewer, operator or admin can)",
                k.role
            ),
        ));
    }
    let (token, session) = state
        .sessions
        .open(Owner::Key {
            key_hash: hash_key(key.trim()),
        })
        .await?;
    audit(
        &state,
        &k.name,
        k.role.as_str(),
        action,
        source,
        StatusCode::CREATED,
    )
    .await;
    let id = Identity {
        name: k.name,
        role: k.role,
        pool: k.pool,
        scope: k.scope,
    };
    let res = (StatusCode::CREATED, Json(Me::of(&id, Some(&session)))).into_response();
    Ok(with_cookie(
        res,
        &state,
        &token,
        state.sessions.ttl().as_secs(),
    ))
}

/// `GET /api/session`: the caller (viewer and up), with the session's CSRF token when the
/// request came with the cookie.
pub async fn me(
    who: Option<Extension<Identity>>,
    session: Option<Extension<Session>>,
) -> Result<Response, ApiError> {
    let Some(Extension(id)) = who else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "not signed in",
        ));
    };
    let session = session.map(|Extension(s)| s);
    let mut res = Json(Me::of(&id, session.as_ref())).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// `DELETE /api/session`: the session ends on every replica; the cookie is deleted.
pub async fn sign_out(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let source = peer
        .map(|Extension(c)| c.0.ip().to_string())
        .unwrap_or_default();
    if let Some(t) = token(&headers, state.secure_cookies) {
        let who = resolve(&state, t).await?.map(|(id, _)| id);
        if state.sessions.close(t).await? {
            let (name, role) = who.map_or(("unknown".into(), "-".into()), |i| {
                (i.name, i.role.to_string())
            });
            audit(
                &state,
                &name,
                &role,
                "DELETE /api/session",
                source,
                StatusCode::NO_CONTENT,
            )
            .await;
        }
    }
    Ok(with_cookie(
        StatusCode::NO_CONTENT.into_response(),
        &state,
        "",
        0,
    ))
}

/// `GET /api/session/providers` (public): the ways to sign in besides a key, for the
/// sign-in page.
pub async fn providers(State(state): State<AppState>) -> Response {
    let oidc = state.oidc.as_ref().map(|p| SingleSignOn {
        name: p.name().to_string(),
        login_url: "/api/session/oidc/login",
    });
    Json(Providers { oidc }).into_response()
}

/// The ways to sign in besides a key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Providers {
    /// Single sign-on, when configured.
    pub oidc: Option<SingleSignOn>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SingleSignOn {
    /// What the sign-in button says.
    pub name: String,
    pub login_url: &'static str,
}
