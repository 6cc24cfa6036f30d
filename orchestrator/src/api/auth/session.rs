//! The console's session cookie, as the middleware sees it: who it signs in, and the CSRF
//! check of every state-changing request made with it.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloudo_core::time;

use super::super::{ApiError, AppState};
use super::Identity;
use crate::services::sessions::{Owner, Session, same_token};

/// The cookie's name: with the `__Host-` prefix (Secure, no Domain, Path=/, which browsers
/// enforce) when the console is served over TLS.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-cloudo_session"
    } else {
        "cloudo_session"
    }
}

/// The header the console echoes the session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of the request's cookie `name`, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The session token of the request's cookie, if any.
pub fn token(headers: &HeaderMap, secure: bool) -> Option<&str> {
    cookie(headers, cookie_name(secure)).filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value that stores `token` for `max_age` seconds (0: deletes it).
pub fn set_cookie(token: &str, secure: bool, max_age: u64) -> Option<HeaderValue> {
    let secure_attr = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure_attr}",
        cookie_name(secure)
    ))
    .ok()
}

/// Who the session of `token` signs in, as the API sees them, with the session; `None`
/// for no session (unknown, expired, signed out) or a key revoked or expired since.
pub async fn resolve(
    state: &AppState,
    token: &str,
) -> Result<Option<(Identity, Session)>, ApiError> {
    let Some(session) = state.sessions.get(token).await? else {
        return Ok(None);
    };
    let identity = match &session.owner {
        Owner::Key { key_hash } => {
            match state
                .keys
                .lookup_hash(&state.store, key_hash.clone())
                .await?
            {
                Some(key) if !key.expired(time::now()) => Identity {
                    name: key.name,
                    role: key.role,
                    pool: key.pool,
                    scope: key.scope,
                },
                _ => return Ok(None),
            }
        }
        Owner::Oidc {
            subject,
            role,
            scope,
            ..
        } => Identity {
            name: format!("oidc:{subject}"),
            role: *role,
            pool: None,
            scope: scope.clone(),
        },
    };
    Ok(Some((identity, session)))
}

/// A state-changing request made with the session cookie must carry its CSRF token: a
/// page on another site can make the browser send the cookie, not read the token.
/// The refusal, if any.
pub fn check_csrf(headers: &HeaderMap, session: &Session) -> Option<Response> {
    let given = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !given.is_empty() && same_token(given, &session.csrf) {
        return None;
    }
    Some(ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf",
        format!(
            "a request changing state with the session cookie needs the session's {CSRF_HEADER} header"
        ),
    )
    .into_response())
}
