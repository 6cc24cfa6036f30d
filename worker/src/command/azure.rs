//! `--backend azure`: the storage account (connection string or Entra ID credential), the
//! name prefix, and a private CA.

use std::sync::Arc;

use anyhow::{Context, bail};
use cloudo_core::JobQueue;

/// The Azure Storage account and the names in it.
#[derive(Debug, Clone)]
pub struct AzureBackend {
    pub account: cloudo_azure::Account,
    pub prefix: String,
}

impl AzureBackend {
    pub fn resolve(
        account: Option<String>,
        credential: Option<String>,
        prefix: Option<String>,
    ) -> anyhow::Result<Self> {
        let prefix = prefix.unwrap_or_else(|| "cloudo".into());
        cloudo_azure::store::check_prefix(&prefix).map_err(anyhow::Error::msg)?;
        let conn = std::env::var("CLOUDO_AZURE_STORAGE_CONNECTION_STRING")
            .ok()
            .filter(|s| !s.trim().is_empty());
        let mut account = match (conn, account) {
            (Some(_), Some(_)) => bail!(
                "give either CLOUDO_AZURE_STORAGE_CONNECTION_STRING or --azure-storage-account, not both"
            ),
            (Some(cs), None) => cloudo_azure::Account::from_connection_string(&cs)?,
            (None, Some(name)) => {
                let kind: cloudo_azure::CredentialKind = credential
                    .as_deref()
                    .unwrap_or("auto")
                    .parse()
                    .map_err(anyhow::Error::msg)?;
                cloudo_azure::Account::with_credential(&name, kind.credential()?)?
            }
            (None, None) => bail!(
                "--backend azure needs CLOUDO_AZURE_STORAGE_CONNECTION_STRING or --azure-storage-account"
            ),
        };
        if let Ok(path) = std::env::var("CLOUDO_AZURE_CA_FILE")
            && !path.is_empty()
        {
            account.ca_pem = Some(
                std::fs::read(&path)
                    .with_context(|| format!("CLOUDO_AZURE_CA_FILE: cannot read {path}"))?,
            );
        }
        Ok(Self { account, prefix })
    }

    /// The job queues of the pools (one Storage queue each, and its poison queue).
    pub fn queue(&self, max_deliveries: u32) -> Arc<dyn JobQueue> {
        Arc::new(cloudo_azure::AzureQueue::new(
            self.account.clone(),
            &self.prefix,
            max_deliveries,
        ))
    }

    /// The account key, for log redaction.
    pub fn secret(&self) -> Option<String> {
        match &self.account.auth {
            cloudo_azure::auth::Auth::SharedKey(k) => Some(k.secret().to_string()),
            cloudo_azure::auth::Auth::Token(_) => None,
        }
    }
}
