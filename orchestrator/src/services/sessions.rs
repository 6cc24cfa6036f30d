//! Console sessions: what a browser's session cookie stands for, kept server-side.
//!
//! The cookie holds a random token; the store holds, under the token's SHA-256, who signed
//! in (the hash of an API key — the key itself is never kept — or an OpenID Connect user
//! with the role its claims mapped to), the CSRF token every state-changing request of the
//! session must echo, and the expiry. Records live in the [`StateStore`], so every replica
//! knows every session and signing out ends it everywhere. A key session follows its key:
//! revoked or expired, the session no longer signs anything in.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use cloudo_core::auth::{Role, hash_key};
use cloudo_core::scope::Scope;
use cloudo_core::store::{StateStore, StoreError, StoreResult};
use cloudo_core::time::{self, Timestamp};
use serde::{Deserialize, Serialize};

const PREFIX: &str = "session/";
/// Single sign-on attempts between the redirect to the provider and its answer.
const LOGIN_PREFIX: &str = "login/";

/// Who a session signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "lowercase")]
pub enum Owner {
    /// An API key, by its hash (its name, role and scope are read at each request).
    Key { key_hash: String },
    /// A single sign-on user, `oidc:<subject>`, with the role their claims mapped to.
    Oidc {
        subject: String,
        name: Option<String>,
        email: Option<String>,
        role: Role,
        #[serde(default)]
        scope: Scope,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    #[serde(flatten)]
    pub owner: Owner,
    /// Sent back by the console in `X-CSRF-Token` with every state-changing request.
    pub csrf: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What a single sign-on attempt must remember until the provider sends the browser back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    /// The PKCE code verifier.
    pub verifier: String,
    pub nonce: String,
    pub expires_at: Timestamp,
}

/// Any record with an expiry (what the sweep reads).
#[derive(Deserialize)]
struct Expiring {
    expires_at: Timestamp,
}

#[derive(Clone)]
pub struct Sessions {
    store: Arc<dyn StateStore>,
    ttl: Duration,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// 32 random bytes, URL-safe base64.
fn token() -> StoreResult<String> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Unavailable(format!("no randomness for a session: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn record_key(token: &str) -> String {
    format!("{PREFIX}{}", hash_key(token))
}

fn login_key(state: &str) -> String {
    format!("{LOGIN_PREFIX}{}", hash_key(state))
}

impl Sessions {
    pub fn new(store: Arc<dyn StateStore>, ttl: Duration) -> Self {
        Self { store, ttl }
    }

    /// How long a session lasts from sign-in.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Opens a session for `owner`: its token (for the cookie) and record.
    pub async fn open(&self, owner: Owner) -> StoreResult<(String, Session)> {
        let now = time::now();
        let ttl = TimeDelta::from_std(self.ttl).unwrap_or(TimeDelta::hours(8));
        let session = Session {
            owner,
            csrf: token()?,
            created_at: now,
            expires_at: now + ttl,
        };
        let token = token()?;
        let text = serde_json::to_string(&session)
            .map_err(|e| StoreError::Corrupt(format!("session: {e}")))?;
        if !self
            .store
            .write_state(&record_key(&token), &text, None)
            .await?
        {
            return Err(StoreError::Conflict("session token collision".into()));
        }
        Ok((token, session))
    }

    /// The live session of `token`; an expired one is removed.
    pub async fn get(&self, token: &str) -> StoreResult<Option<Session>> {
        let key = record_key(token);
        let Some(v) = self.store.read_state(&key).await? else {
            return Ok(None);
        };
        let session: Session = serde_json::from_str(&v.value)
            .map_err(|e| StoreError::Corrupt(format!("session: {e}")))?;
        if session.expires_at <= time::now() {
            self.store.delete_state(&key, &v.version).await?;
            return Ok(None);
        }
        Ok(Some(session))
    }

    /// Signs out: the session of `token` ends on every replica. Whether there was one.
    pub async fn close(&self, token: &str) -> StoreResult<bool> {
        let key = record_key(token);
        match self.store.read_state(&key).await? {
            Some(v) => self.store.delete_state(&key, &v.version).await,
            None => Ok(false),
        }
    }
}

impl Sessions {
    /// Remembers a single sign-on attempt under its `state` (for ten minutes).
    pub async fn remember_login(&self, state: &str, login: &PendingLogin) -> StoreResult<()> {
        let text =
            serde_json::to_string(login).map_err(|e| StoreError::Corrupt(format!("login: {e}")))?;
        if self
            .store
            .write_state(&login_key(state), &text, None)
            .await?
        {
            Ok(())
        } else {
            Err(StoreError::Conflict("sign-in state collision".into()))
        }
    }

    /// The attempt of `state`, once: it is removed as it is read (a replayed answer finds
    /// nothing); `None` when unknown or expired.
    pub async fn take_login(&self, state: &str) -> StoreResult<Option<PendingLogin>> {
        let key = login_key(state);
        let Some(v) = self.store.read_state(&key).await? else {
            return Ok(None);
        };
        if !self.store.delete_state(&key, &v.version).await? {
            return Ok(None);
        }
        let login: PendingLogin = serde_json::from_str(&v.value)
            .map_err(|e| StoreError::Corrupt(format!("login: {e}")))?;
        Ok((login.expires_at > time::now()).then_some(login))
    }
}

/// Removes expired sessions and sign-on attempts (the reaper's sweep); how many.
pub async fn sweep<S: StateStore + ?Sized>(store: &S, now: Timestamp) -> StoreResult<usize> {
    let mut removed = 0;
    for prefix in [PREFIX, LOGIN_PREFIX] {
        for (key, v) in store.list_state(prefix).await? {
            let expired = serde_json::from_str::<Expiring>(&v.value)
                .map(|s| s.expires_at <= now)
                .unwrap_or(true);
            if expired && store.delete_state(&key, &v.version).await? {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Constant-time comparison of a CSRF token.
pub fn same_token(a: &str, b: &str) -> bool {
    use sha2::{Digest, Sha256};
    // Equal-length digests compared without early exit.
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_compare_equal_only_when_equal() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "abcd"));
        assert!(!same_token("", "a"));
    }

    #[test]
    fn a_session_record_keeps_no_key_and_reads_back() {
        let s = Session {
            owner: Owner::Key {
                key_hash: hash_key("cloudo_secret"),
            },
            csrf: "t".into(),
            created_at: time::now(),
            expires_at: time::now(),
        };
        let text = serde_json::to_string(&s).unwrap();
        assert!(!text.contains("cloudo_secret") && text.contains("\"via\":\"key\""));
        assert_eq!(serde_json::from_str::<Session>(&text).unwrap(), s);
    }

    fn store() -> (tempfile::TempDir, Arc<dyn StateStore>) {
        use cloudo_sqlite::{Db, Durability, SqliteStore};
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), Durability::Process).unwrap();
        (dir, Arc::new(SqliteStore::new(db)))
    }

    #[tokio::test]
    async fn sessions_end_at_their_expiry_or_sign_out_and_logins_are_single_use() {
        let (_dir, st) = store();
        let owner = Owner::Key {
            key_hash: hash_key("k"),
        };
        // Expired at once: not found, and its record is gone.
        let short = Sessions::new(st.clone(), Duration::ZERO);
        let (token, _) = short.open(owner.clone()).await.unwrap();
        assert_eq!(short.get(&token).await.unwrap(), None);
        assert!(st.list_state(PREFIX).await.unwrap().is_empty());

        let s = Sessions::new(st.clone(), Duration::from_secs(600));
        let (token, opened) = s.open(owner).await.unwrap();
        assert_eq!(s.get(&token).await.unwrap(), Some(opened));
        assert!(s.get("another").await.unwrap().is_none());
        assert!(s.close(&token).await.unwrap());
        assert_eq!(s.get(&token).await.unwrap(), None);

        let login = PendingLogin {
            verifier: "v".into(),
            nonce: "n".into(),
            expires_at: time::now() + TimeDelta::seconds(60),
        };
        s.remember_login("state-1", &login).await.unwrap();
        assert_eq!(s.take_login("state-1").await.unwrap(), Some(login.clone()));
        assert_eq!(s.take_login("state-1").await.unwrap(), None, "used once");

        // The sweep removes what expired, keeps the rest.
        let old = PendingLogin {
            expires_at: time::now() - TimeDelta::seconds(1),
            ..login.clone()
        };
        s.remember_login("old", &old).await.unwrap();
        s.remember_login("new", &login).await.unwrap();
        let (_live, _) = s
            .open(Owner::Key {
                key_hash: "h".into(),
            })
            .await
            .unwrap();
        assert_eq!(sweep(&*st, time::now()).await.unwrap(), 1);
        assert_eq!(st.list_state(LOGIN_PREFIX).await.unwrap().len(), 1);
        assert_eq!(st.list_state(PREFIX).await.unwrap().len(), 1);
    }
}
