//! How the adapters reach and authenticate to an account: connection strings (SharedKey,
//! signed by our own pipeline policy, since azure_core 1.x has none) or an `azure_identity`
//! credential chosen at start-up (Bearer tokens, https only).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::headers::HeaderName;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request, Url};

/// Azurite's well-known development account key (public, documented by Microsoft).
const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("connection string: {0}")]
    ConnectionString(String),
    #[error("azure credential: {0}")]
    Credential(String),
}

/// Where the account's services are and how to sign requests to them.
#[derive(Clone)]
pub struct Account {
    pub name: String,
    pub table_endpoint: Url,
    pub queue_endpoint: Url,
    pub auth: Auth,
    /// Extra trusted CA certificates (PEM) for the endpoints, besides the system's: private
    /// endpoints behind a corporate CA, Azure Stack, emulators with TLS.
    pub ca_pem: Option<Vec<u8>>,
}

/// How requests are authenticated.
#[derive(Clone)]
pub enum Auth {
    /// SharedKey from an account key (connection strings, Azurite).
    SharedKey(Secret),
    /// Entra ID tokens (managed identity, workload identity, developer tools).
    Token(Arc<dyn TokenCredential>),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Auth::SharedKey(_) => "SharedKey(..)",
            Auth::Token(_) => "Token(..)",
        })
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("table_endpoint", &self.table_endpoint.as_str())
            .field("queue_endpoint", &self.queue_endpoint.as_str())
            .field(
                "auth",
                &match self.auth {
                    Auth::SharedKey(_) => "shared key",
                    Auth::Token(_) => "token credential",
                },
            )
            .finish()
    }
}

fn endpoint(s: &str) -> Result<Url, ConfigError> {
    // A trailing slash would make `…/account//queue` (azure_storage_queue 1.1).
    Url::parse(s.trim_end_matches('/'))
        .map_err(|e| ConfigError::ConnectionString(format!("bad endpoint {s:?}: {e}")))
}

impl Account {
    /// Parses a storage connection string: `UseDevelopmentStorage=true`, or `AccountName` +
    /// `AccountKey` with `DefaultEndpointsProtocol`/`EndpointSuffix` or explicit
    /// `TableEndpoint=`/`QueueEndpoint=`. Errors never include the key.
    pub fn from_connection_string(s: &str) -> Result<Self, ConfigError> {
        let mut kv = BTreeMap::new();
        for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            // Split at the first '=' only: keys end in '=='.
            let (k, v) = part.split_once('=').ok_or_else(|| {
                ConfigError::ConnectionString(format!(
                    "segment without '=' (after {:?})",
                    kv.keys().last()
                ))
            })?;
            kv.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
        if kv.contains_key("sharedaccesssignature") {
            return Err(ConfigError::ConnectionString(
                "SharedAccessSignature connection strings are not supported; use an account key or CLOUDO_AZURE_STORAGE_ACCOUNT with an Entra ID credential".into(),
            ));
        }
        let dev = kv
            .get("usedevelopmentstorage")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let name = match kv.get("accountname") {
            Some(n) => n.clone(),
            None if dev => DEV_ACCOUNT.to_string(),
            None => return Err(ConfigError::ConnectionString("no AccountName".into())),
        };
        let key = match kv.get("accountkey") {
            Some(k) => k.clone(),
            None if dev => DEV_KEY.to_string(),
            None => return Err(ConfigError::ConnectionString("no AccountKey".into())),
        };
        let default_endpoint = |service: &str, dev_port: u16| -> String {
            if dev {
                format!("http://127.0.0.1:{dev_port}/{name}")
            } else {
                let proto = kv
                    .get("defaultendpointsprotocol")
                    .map_or("https", String::as_str);
                let suffix = kv
                    .get("endpointsuffix")
                    .map_or("core.windows.net", String::as_str);
                format!("{proto}://{name}.{service}.{suffix}")
            }
        };
        let table = kv
            .get("tableendpoint")
            .cloned()
            .unwrap_or_else(|| default_endpoint("table", 10002));
        let queue = kv
            .get("queueendpoint")
            .cloned()
            .unwrap_or_else(|| default_endpoint("queue", 10001));
        Ok(Self {
            table_endpoint: endpoint(&table)?,
            queue_endpoint: endpoint(&queue)?,
            name,
            auth: Auth::SharedKey(Secret::new(key)),
            ca_pem: None,
        })
    }

    /// An account reached with an Entra ID credential.
    pub fn with_credential(
        name: &str,
        credential: Arc<dyn TokenCredential>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            table_endpoint: endpoint(&format!("https://{name}.table.core.windows.net"))?,
            queue_endpoint: endpoint(&format!("https://{name}.queue.core.windows.net"))?,
            name: name.to_string(),
            auth: Auth::Token(credential),
            ca_pem: None,
        })
    }
}

/// Which `azure_identity` credential to use (`--azure-credential`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// Workload identity when its variables are set, managed identity when the process
    /// runs where one is advertised, developer tools (Azure CLI, azd) otherwise.
    Auto,
    Workload,
    Managed,
    Developer,
}

impl std::str::FromStr for CredentialKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "workload" => Ok(Self::Workload),
            "managed" => Ok(Self::Managed),
            "developer" | "cli" => Ok(Self::Developer),
            other => Err(format!(
                "unknown credential {other:?} (auto, workload, managed, developer)"
            )),
        }
    }
}

impl CredentialKind {
    /// What `Auto` resolves to in an environment (`get` reads a variable).
    pub fn resolve(self, get: impl Fn(&str) -> Option<String>) -> Self {
        if self != Self::Auto {
            return self;
        }
        if get("AZURE_FEDERATED_TOKEN_FILE").is_some() {
            Self::Workload
        } else if get("IDENTITY_ENDPOINT").is_some() || get("MSI_ENDPOINT").is_some() {
            Self::Managed
        } else {
            Self::Developer
        }
    }

    pub fn credential(self) -> Result<Arc<dyn TokenCredential>, ConfigError> {
        let kind = self.resolve(|k| std::env::var(k).ok());
        let err = |e: azure_core::Error| ConfigError::Credential(e.to_string());
        Ok(match kind {
            Self::Workload => azure_identity::WorkloadIdentityCredential::new(None).map_err(err)?,
            // A user-assigned identity by AZURE_CLIENT_ID, as the Azure SDKs read it (an app
            // with several identities must say which one reaches storage).
            Self::Managed => azure_identity::ManagedIdentityCredential::new(Some(
                azure_identity::ManagedIdentityCredentialOptions {
                    user_assigned_id: std::env::var("AZURE_CLIENT_ID")
                        .ok()
                        .filter(|v| !v.is_empty())
                        .map(azure_identity::UserAssignedId::ClientId),
                    ..Default::default()
                },
            ))
            .map_err(err)?,
            Self::Auto | Self::Developer => {
                azure_identity::DeveloperToolsCredential::new(None).map_err(err)?
            }
        })
    }
}

/// Which string-to-sign the service wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Blob and Queue: every standard header plus canonical `x-ms-*` headers and query.
    Queue,
    /// Tables: verb, MD5, type, date, resource (+ `?comp=`).
    Table,
}

/// Signs every try with SharedKey (fresh `x-ms-date` each time, so retries stay valid).
pub struct SharedKeyPolicy {
    account: String,
    key: Secret,
    service: Service,
}

impl fmt::Debug for SharedKeyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedKeyPolicy")
            .field("account", &self.account)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl SharedKeyPolicy {
    pub fn new(account: &str, key: Secret, service: Service) -> Self {
        Self {
            account: account.to_string(),
            key,
            service,
        }
    }
}

pub(crate) fn rfc1123_now() -> String {
    chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

fn header<'a>(r: &'a Request, name: &'static str) -> &'a str {
    r.headers()
        .get_optional_str(&HeaderName::from_static(name))
        .unwrap_or("")
}

/// The string SharedKey signs, for one request.
pub fn string_to_sign(account: &str, service: Service, r: &Request) -> String {
    let url = r.url();
    let mut resource = format!("/{account}{}", url.path());
    let method = r.method().as_str().to_ascii_uppercase();
    match service {
        Service::Table => {
            if let Some((_, comp)) = url.query_pairs().find(|(k, _)| k == "comp") {
                resource.push_str("?comp=");
                resource.push_str(&comp);
            }
            format!(
                "{method}\n{}\n{}\n{}\n{resource}",
                header(r, "content-md5"),
                header(r, "content-type"),
                header(r, "x-ms-date"),
            )
        }
        Service::Queue => {
            let mut ms: Vec<(String, &str)> = r
                .headers()
                .iter()
                .filter(|(k, _)| k.as_str().starts_with("x-ms-"))
                .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.as_str()))
                .collect();
            ms.sort();
            let canon_headers: String = ms
                .iter()
                .map(|(k, v)| format!("{k}:{}\n", v.trim()))
                .collect();
            let mut query: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (k, v) in url.query_pairs() {
                query
                    .entry(k.to_ascii_lowercase())
                    .or_default()
                    .push(v.into_owned());
            }
            for (k, mut vs) in query {
                vs.sort();
                resource.push_str(&format!("\n{k}:{}", vs.join(",")));
            }
            let length = match r.body().len() {
                Some(0) | None => String::new(),
                Some(n) => n.to_string(),
            };
            format!(
                "{method}\n{}\n{}\n{length}\n{}\n{}\n\n{}\n{}\n{}\n{}\n{}\n{canon_headers}{resource}",
                header(r, "content-encoding"),
                header(r, "content-language"),
                header(r, "content-md5"),
                header(r, "content-type"),
                header(r, "if-modified-since"),
                header(r, "if-match"),
                header(r, "if-none-match"),
                header(r, "if-unmodified-since"),
                header(r, "range"),
            )
        }
    }
}

#[async_trait]
impl Policy for SharedKeyPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        request.insert_header("x-ms-date", rfc1123_now());
        let to_sign = string_to_sign(&self.account, self.service, request);
        let signature = azure_core::hmac::hmac_sha256(&to_sign, &self.key)?;
        request.insert_header(
            "authorization",
            format!("SharedKey {}:{signature}", self.account),
        );
        next[0].send(ctx, request, &next[1..]).await
    }
}

#[cfg(test)]
mod tests;
