//! Identities: API keys with a role, what each role may do, and the audit record.
//!
//! Keys are 256 random bits, shown once at creation and stored only as a SHA-256 hash
//! (a fast hash is enough for random secrets of this size; there is nothing to brute-force).
//! A key is found by the hash of what the client sent, so no key is ever compared in clear.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::time::{self, Timestamp};

/// What a key may do. `viewer` < `operator` < `admin`; `ingest` may only deliver alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A standalone worker of one pool: reports on that pool's executions only.
    Worker,
    Ingest,
    Viewer,
    Operator,
    Admin,
    /// Scrapes `/metrics` and nothing else (a Prometheus server's key).
    Metrics,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Worker => "worker",
            Role::Ingest => "ingest",
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Metrics => "metrics",
        }
    }

    /// May this role use a route that needs `p`?
    pub fn allows(self, p: Permission) -> bool {
        match p {
            Permission::Public | Permission::AnyKey => true,
            Permission::Read => matches!(self, Role::Viewer | Role::Operator | Role::Admin),
            Permission::Ingest => matches!(self, Role::Ingest | Role::Operator | Role::Admin),
            Permission::Operate => matches!(self, Role::Operator | Role::Admin),
            Permission::Admin => self == Role::Admin,
            Permission::Worker => self == Role::Worker,
            Permission::Metrics => matches!(
                self,
                Role::Metrics | Role::Viewer | Role::Operator | Role::Admin
            ),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "worker" => Ok(Role::Worker),
            "ingest" => Ok(Role::Ingest),
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            "metrics" => Ok(Role::Metrics),
            other => Err(format!(
                "unknown role {other:?}; one of ingest, viewer, operator, admin, metrics"
            )),
        }
    }
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// No key (health checks).
    Public,
    /// Read executions, logs, runbooks, routes.
    Read,
    /// Deliver alerts and triggers (`ingest`, `operator`, `admin`).
    Ingest,
    /// Trigger, refresh, test routes (`operator`, `admin`).
    Operate,
    /// Keys, routes, audit.
    Admin,
    /// Worker reports (a `worker` key, limited to its pool's executions).
    Worker,
    /// `/metrics` (`metrics`, and `viewer` and above).
    Metrics,
    /// Any valid key, whatever its role (the API's description).
    AnyKey,
}

impl Permission {
    /// The lowest role that has it, for documentation.
    pub fn describe(self) -> &'static str {
        match self {
            Permission::Public => "none",
            Permission::Read => "viewer",
            Permission::Ingest => "ingest",
            Permission::Operate => "operator",
            Permission::Admin => "admin",
            Permission::Worker => "worker",
            Permission::Metrics => "metrics",
            Permission::AnyKey => "any key",
        }
    }
}

/// A stored key (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub name: String,
    pub role: Role,
    /// The pool a `worker` key may report for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// The schemas it may run, approve and read (empty: every one).
    #[serde(default, skip_serializing_if = "crate::scope::Scope::is_all")]
    pub scope: crate::scope::Scope,
    #[serde(skip_serializing)]
    pub hash: String,
    #[serde(with = "time::serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(with = "time::serde_rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    #[serde(with = "time::serde_rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<Timestamp>,
}

impl ApiKey {
    /// A record for the secret `key`, created now.
    pub fn for_secret(
        key: &str,
        name: String,
        role: Role,
        pool: Option<String>,
        expires_at: Option<Timestamp>,
    ) -> Self {
        Self {
            name,
            role,
            pool,
            scope: crate::scope::Scope::default(),
            hash: hash_key(key),
            created_at: time::now(),
            expires_at,
            last_used_at: None,
        }
    }

    /// The same key, limited to `scope`.
    pub fn with_scope(mut self, scope: crate::scope::Scope) -> Self {
        self.scope = scope;
        self
    }

    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

/// A new random key: `cloudo_` + 64 hex characters.
pub fn generate_key() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(format!("cloudo_{}", hex(&bytes)))
}

/// What is stored and looked up for a key.
pub fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// Lower-case hex, in one allocation (this runs for every request with a key).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Valid key names: what `DELETE /api/keys/{name}` and the audit show.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// One audit record: who did what, from where, and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    #[serde(with = "time::serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// The key's name (`anonymous` with `--dev-no-auth`).
    pub actor: String,
    pub role: String,
    /// `METHOD /route/pattern`.
    pub action: String,
    /// The request path (ids of what was acted on).
    pub target: String,
    pub source: String,
    /// The HTTP status answered.
    pub outcome: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_permissions() {
        assert!(Role::Viewer.allows(Permission::Read) && !Role::Viewer.allows(Permission::Operate));
        assert!(Role::Ingest.allows(Permission::Ingest) && !Role::Ingest.allows(Permission::Read));
        assert!(
            Role::Operator.allows(Permission::Ingest) && !Role::Operator.allows(Permission::Admin)
        );
        assert!(Role::Admin.allows(Permission::Admin) && Role::Admin.allows(Permission::Read));
        assert!(!Role::Viewer.allows(Permission::Ingest));
    }

    #[test]
    fn keys_are_random_and_hashed() {
        let (a, b) = (generate_key().expect("key"), generate_key().expect("key"));
        assert_ne!(a, b);
        assert!(a.starts_with("cloudo_") && a.len() == 71);
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hash_key(&a), hash_key(&a));
        assert_ne!(hash_key(&a), hash_key(&b));
        assert!(!hash_key(&a).contains(&a[7..]));
    }
}
