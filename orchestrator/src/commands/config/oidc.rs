//! Single sign-on settings: command line, then environment, then file; the client secret
//! from the environment only.

use std::collections::BTreeMap;

use anyhow::bail;
use cloudo_core::auth::Role;
use cloudo_worker::command::config::env_secret;

use crate::api::oidc::OidcConfig;

/// What the command line and the file say, before defaults.
#[derive(Debug, Default)]
pub(super) struct OidcInput {
    pub(super) issuer: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) role_claim: Option<String>,
    /// `VALUE=ROLE` pairs from the command line (win over the file's table).
    pub(super) roles: Option<Vec<String>>,
    pub(super) file_roles: Option<BTreeMap<String, String>>,
    pub(super) scopes: Option<String>,
    pub(super) name: Option<String>,
}

fn role(value: &str, r: &str) -> anyhow::Result<Role> {
    match r.trim().parse::<Role>() {
        Ok(role @ (Role::Viewer | Role::Operator | Role::Admin)) => Ok(role),
        _ => bail!("oidc-roles {value:?}={r:?}: the role must be viewer, operator or admin"),
    }
}

pub(super) fn resolve(i: OidcInput) -> anyhow::Result<Option<OidcConfig>> {
    let Some(issuer) = i.issuer.filter(|s| !s.trim().is_empty()) else {
        if i.client_id.is_some() {
            bail!("--oidc-client-id needs --oidc-issuer");
        }
        return Ok(None);
    };
    if !(issuer.starts_with("https://") || issuer.starts_with("http://127.0.0.1")) {
        bail!("oidc-issuer must be an https:// URL (http only on 127.0.0.1, for tests)");
    }
    let Some(client_id) = i.client_id else {
        bail!("--oidc-issuer needs --oidc-client-id");
    };
    let Some(client_secret) = env_secret("CLOUDO_OIDC_CLIENT_SECRET") else {
        bail!("--oidc-issuer needs CLOUDO_OIDC_CLIENT_SECRET (environment only)");
    };
    let mut roles = BTreeMap::new();
    match i.roles {
        Some(pairs) => {
            for p in pairs.iter().filter(|p| !p.trim().is_empty()) {
                let Some((value, r)) = p.rsplit_once('=') else {
                    bail!("oidc-roles {p:?}: expected VALUE=ROLE");
                };
                roles.insert(value.trim().to_string(), role(value, r)?);
            }
        }
        None => {
            for (value, r) in i.file_roles.unwrap_or_default() {
                let r = role(&value, &r)?;
                roles.insert(value, r);
            }
        }
    }
    if roles.is_empty() {
        bail!("--oidc-issuer needs --oidc-roles: which claim values give which role");
    }
    Ok(Some(OidcConfig {
        issuer: issuer.trim_end_matches('/').to_string(),
        client_id,
        client_secret,
        role_claim: i.role_claim.unwrap_or_else(|| "groups".into()),
        roles,
        scopes: i.scopes.unwrap_or_else(|| "openid profile email".into()),
        name: i.name.unwrap_or_else(|| "single sign-on".into()),
    }))
}
