//! Tokens for runbooks, obtained with the worker's own credential: the managed identity
//! (optionally one of its user-assigned identities, by client id), workload identity, or the
//! developer's tools. The worker's token endpoint (worker `access/`) hands them to the runbook
//! that may have them; this module only fetches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use azure_core::credentials::TokenCredential;
use azure_identity::{
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};

use crate::auth::CredentialKind;

/// A token and when it expires (Unix seconds).
pub struct Token {
    pub secret: String,
    pub expires_on: i64,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("expires_on", &self.expires_on)
            .finish_non_exhaustive()
    }
}

/// One credential per identity, made on first use (they cache their own tokens).
pub struct RunbookTokens {
    kind: CredentialKind,
    /// The identity of runbooks whose schema names none (a client id), if not the
    /// credential's own default.
    default_identity: Option<String>,
    credentials: Mutex<HashMap<Option<String>, Arc<dyn TokenCredential>>>,
}

impl std::fmt::Debug for RunbookTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunbookTokens")
            .field("kind", &self.kind)
            .field("default_identity", &self.default_identity)
            .finish_non_exhaustive()
    }
}

impl RunbookTokens {
    pub fn new(kind: CredentialKind, default_identity: Option<String>) -> Self {
        Self {
            kind,
            default_identity,
            credentials: Mutex::default(),
        }
    }

    /// The identity a schema's runbooks act as: its own, else the default one.
    pub fn identity_for(&self, schema_identity: Option<&str>) -> Option<String> {
        schema_identity
            .map(str::to_string)
            .or_else(|| self.default_identity.clone())
    }

    fn credential(&self, client_id: Option<&str>) -> Result<Arc<dyn TokenCredential>, String> {
        let key = self.identity_for(client_id);
        let mut creds = self
            .credentials
            .lock()
            .map_err(|_| "credential cache poisoned")?;
        if let Some(c) = creds.get(&key) {
            return Ok(c.clone());
        }
        let kind = self.kind.resolve(|k| std::env::var(k).ok());
        let made: Arc<dyn TokenCredential> = match kind {
            CredentialKind::Workload => {
                WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                    client_id: key.clone(),
                    ..Default::default()
                }))
                .map_err(|e| e.to_string())?
            }
            CredentialKind::Managed => {
                ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                    user_assigned_id: key.clone().map(UserAssignedId::ClientId),
                    ..Default::default()
                }))
                .map_err(|e| e.to_string())?
            }
            CredentialKind::Auto | CredentialKind::Developer => {
                if key.is_some() {
                    return Err("a user-assigned identity needs a managed or workload identity credential, not developer tools".into());
                }
                azure_identity::DeveloperToolsCredential::new(None).map_err(|e| e.to_string())?
            }
        };
        creds.insert(key, made.clone());
        Ok(made)
    }

    /// A token for `scope` as `client_id` (or the default identity).
    pub async fn token(&self, scope: &str, client_id: Option<&str>) -> Result<Token, String> {
        let cred = self.credential(client_id)?;
        let t = cred
            .get_token(&[scope], None)
            .await
            .map_err(|e| format!("the worker's credential could not get a token: {e}"))?;
        Ok(Token {
            secret: t.token.secret().to_string(),
            expires_on: t.expires_on.unix_timestamp(),
        })
    }
}
