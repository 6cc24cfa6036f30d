//! Single sign-on to the console: OpenID Connect's authorization code flow with PKCE.
//!
//! `GET /api/session/oidc/login` remembers a new attempt (PKCE verifier and nonce, in the
//! store under the `state`, ten minutes) and a short cookie naming its `state` (so the
//! answer must come back to the browser that started), then sends the browser to the
//! provider. `GET /api/session/oidc/callback` takes the attempt (once), exchanges the code
//! with the verifier and the client secret, checks the ID token (signature by the
//! provider's JWKS, issuer, audience, expiry, nonce), maps the role claim to a role, opens
//! a session for `oidc:<subject>` and sends the browser to the console.

pub mod provider;

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::TimeDelta;
use cloudo_core::auth::AuditRecord;
use cloudo_core::time;
use serde::Deserialize;

use super::approvals::page_with;
use super::auth::session::{cookie, set_cookie};
use super::error::Query;
use super::logs::esc;
use super::{ApiError, AppState};
use crate::services::sessions::{Owner, PendingLogin};
pub use provider::{OidcConfig, Provider};

/// The cookie that ties the provider's answer to the browser that asked.
const STATE_COOKIE: &str = "cloudo_oidc";
const CALLBACK: &str = "/api/session/oidc/callback";
/// How long a sign-in at the provider may take.
const ATTEMPT_SECS: i64 = 600;

fn state_cookie(value: &str, secure: bool, max_age: i64) -> Option<HeaderValue> {
    // Lax, not Strict: it must come back with the provider's top-level redirect.
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{STATE_COOKIE}={value}; Path=/api/session/oidc; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .ok()
}

fn failed(code: StatusCode, why: &str) -> Response {
    page_with(
        code,
        "Sign-in failed",
        &format!(
            "<p>{}</p><p><a href=\"/\">Back to the console</a></p>",
            esc(why)
        ),
    )
}

fn provider(state: &AppState) -> Result<&Provider, ApiError> {
    state
        .oidc
        .as_deref()
        .ok_or_else(|| ApiError::not_found("single sign-on is not configured (--oidc-issuer)"))
}

/// `GET /api/session/oidc/login`. Public, and each call stores a pending attempt: held to
/// the sign-in rate per client.
pub async fn login(
    State(state): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
) -> Result<Response, ApiError> {
    let p = provider(&state)?;
    if let Some(axum::Extension(c)) = peer
        && let Err(wait) = state.sign_in_limit.check(c.0.ip())
    {
        return Err(ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many sign-in attempts from {}; retry in {wait} s",
                c.0.ip()
            ),
        ));
    }
    let token = |what: &str| {
        provider::random_token().map_err(|e| ApiError::internal(format!("{what}: {e}")))
    };
    let (attempt, verifier, nonce) = (token("state")?, token("verifier")?, token("nonce")?);
    let redirect_uri = format!("{}{CALLBACK}", state.public_url);
    let url = p
        .authorize_url(&redirect_uri, &attempt, &nonce, &verifier)
        .await
        .map_err(ApiError::unavailable)?;
    state
        .sessions
        .remember_login(
            &attempt,
            &PendingLogin {
                verifier,
                nonce,
                expires_at: time::now() + TimeDelta::seconds(ATTEMPT_SECS),
            },
        )
        .await?;
    let mut res = Redirect::to(&url).into_response();
    if let Some(v) = state_cookie(&attempt, state.secure_cookies, ATTEMPT_SECS) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /api/session/oidc/callback`: always a page or a redirect (a browser is there).
pub async fn callback(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    let p = provider(&state)?;
    let source = peer
        .map(|Extension(c)| c.0.ip().to_string())
        .unwrap_or_default();
    let audit = |actor: String, role: String, outcome: StatusCode| AuditRecord {
        at: time::now(),
        actor,
        role,
        action: format!("GET {CALLBACK}"),
        target: CALLBACK.into(),
        source: source.clone(),
        outcome: outcome.as_u16(),
    };
    if let Some(e) = q.error {
        let why = q.error_description.unwrap_or(e);
        return Ok(failed(
            StatusCode::UNAUTHORIZED,
            &format!("The provider refused: {why}"),
        ));
    }
    let (Some(code), Some(attempt)) = (q.code, q.state) else {
        return Ok(failed(
            StatusCode::BAD_REQUEST,
            "The answer has no code or state.",
        ));
    };
    if cookie(&headers, STATE_COOKIE) != Some(attempt.as_str()) {
        return Ok(failed(
            StatusCode::FORBIDDEN,
            "This answer is not for a sign-in started in this browser; start again.",
        ));
    }
    let Some(login) = state.sessions.take_login(&attempt).await? else {
        return Ok(failed(
            StatusCode::FORBIDDEN,
            "This sign-in expired or was already used; start again.",
        ));
    };
    let redirect_uri = format!("{}{CALLBACK}", state.public_url);
    let user = match p
        .sign_in(&code, &login.verifier, &redirect_uri, &login.nonce)
        .await
    {
        Ok(u) => u,
        Err(why) => {
            tracing::warn!(reason = %why, "single sign-on refused");
            state
                .audit
                .record(audit(
                    "unknown".into(),
                    "-".into(),
                    StatusCode::UNAUTHORIZED,
                ))
                .await;
            return Ok(failed(StatusCode::UNAUTHORIZED, &why));
        }
    };
    let actor = format!("oidc:{}", user.subject);
    let Some(role) = user.role else {
        state
            .audit
            .record(audit(actor.clone(), "-".into(), StatusCode::FORBIDDEN))
            .await;
        return Ok(failed(
            StatusCode::FORBIDDEN,
            &format!("{actor} signed in, but none of their claims maps to a cloudo role."),
        ));
    };
    let (token, _) = state
        .sessions
        .open(Owner::Oidc {
            subject: user.subject,
            name: user.name,
            email: user.email,
            role,
            scope: Default::default(),
        })
        .await?;
    state
        .audit
        .record(audit(actor, role.to_string(), StatusCode::SEE_OTHER))
        .await;
    let mut res = Redirect::to("/").into_response();
    let h = res.headers_mut();
    if let Some(v) = set_cookie(&token, state.secure_cookies, state.sessions.ttl().as_secs()) {
        h.append(header::SET_COOKIE, v);
    }
    if let Some(v) = state_cookie("", state.secure_cookies, 0) {
        h.append(header::SET_COOKIE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}
