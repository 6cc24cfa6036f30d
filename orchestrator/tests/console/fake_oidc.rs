//! A fake OpenID Connect provider on loopback: discovery, an authorization endpoint that
//! signs the user in at once and sends the browser back, a token endpoint that checks the
//! exact request (code, redirect URI, client credentials, PKCE verifier against the
//! challenge) and answers an RS256 ID token with the nonce it was given, and the JWKS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::jwt::{rsa_key, token};

pub const CLIENT_ID: &str = "cloudo-console";
pub const CLIENT_SECRET: &str = "s3cret-client-value";

#[derive(Default)]
struct Seen {
    /// The authorization requests' query parameters.
    authorize: Vec<HashMap<String, String>>,
    /// The token requests' form fields.
    token: Vec<HashMap<String, String>>,
    /// code → (challenge, nonce, redirect_uri)
    codes: HashMap<String, (String, String, String)>,
}

#[derive(Clone)]
struct Fake {
    base: String,
    pem: Arc<Vec<u8>>,
    modulus: String,
    /// The user's claims (sub, name, email, groups).
    user: Arc<Mutex<Value>>,
    seen: Arc<Mutex<Seen>>,
}

pub struct FakeOidc {
    pub issuer: String,
    fake: Fake,
    _dir: tempfile::TempDir,
}

impl FakeOidc {
    pub async fn start(user: Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (pem, modulus) = rsa_key(dir.path(), "idp.pem");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let fake = Fake {
            base: base.clone(),
            pem: Arc::new(pem),
            modulus,
            user: Arc::new(Mutex::new(user)),
            seen: Arc::default(),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize))
            .route("/token", post(token_endpoint))
            .route("/jwks", get(jwks))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            issuer: base,
            fake,
            _dir: dir,
        }
    }

    pub fn set_user(&self, user: Value) {
        *self.fake.user.lock().unwrap() = user;
    }

    pub fn authorize_requests(&self) -> Vec<HashMap<String, String>> {
        self.fake.seen.lock().unwrap().authorize.clone()
    }

    pub fn token_requests(&self) -> Vec<HashMap<String, String>> {
        self.fake.seen.lock().unwrap().token.clone()
    }
}

async fn discovery(State(f): State<Fake>) -> Response {
    axum::Json(json!({
        "issuer": f.base,
        "authorization_endpoint": format!("{}/authorize", f.base),
        "token_endpoint": format!("{}/token", f.base),
        "jwks_uri": format!("{}/jwks", f.base),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
    }))
    .into_response()
}

async fn authorize(State(f): State<Fake>, Query(q): Query<HashMap<String, String>>) -> Response {
    let code = format!("code-{}", f.seen.lock().unwrap().authorize.len());
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    let state = q.get("state").cloned().unwrap_or_default();
    {
        let mut seen = f.seen.lock().unwrap();
        seen.codes.insert(
            code.clone(),
            (
                q.get("code_challenge").cloned().unwrap_or_default(),
                q.get("nonce").cloned().unwrap_or_default(),
                redirect.clone(),
            ),
        );
        seen.authorize.push(q);
    }
    Redirect::to(&format!("{redirect}?code={code}&state={state}")).into_response()
}

fn refuse(why: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": "invalid_grant", "error_description": why})),
    )
        .into_response()
}

async fn token_endpoint(State(f): State<Fake>, body: String) -> Response {
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap();
    let grant = {
        let mut seen = f.seen.lock().unwrap();
        seen.token.push(form.clone());
        // A code is good once.
        form.get("code").and_then(|c| seen.codes.remove(c))
    };
    let Some((challenge, nonce, redirect)) = grant else {
        return refuse("unknown or used code");
    };
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let verifier_ok = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(field("code_verifier").as_bytes()))
        == challenge;
    if field("grant_type") != "authorization_code"
        || field("client_id") != CLIENT_ID
        || field("client_secret") != CLIENT_SECRET
        || field("redirect_uri") != redirect
        || !verifier_ok
    {
        return refuse("the request does not match the authorization");
    }
    let now = chrono::Utc::now().timestamp();
    let mut claims = f.user.lock().unwrap().clone();
    for (k, v) in [
        ("iss", json!(f.base)),
        ("aud", json!(CLIENT_ID)),
        ("iat", json!(now)),
        ("exp", json!(now + 300)),
        ("nonce", json!(nonce)),
    ] {
        claims[k] = v;
    }
    axum::Json(json!({
        "access_token": "opaque",
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": token(&f.pem, "idp-key", claims),
    }))
    .into_response()
}

async fn jwks(State(f): State<Fake>) -> Response {
    axum::Json(json!({"keys": [
        {"kty": "RSA", "kid": "idp-key", "use": "sig", "alg": "RS256", "n": f.modulus, "e": "AQAB"}
    ]}))
    .into_response()
}
