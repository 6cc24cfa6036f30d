//! `cloudo keys`: create, list and revoke API keys straight in the database (SQLite allows
//! it while the server runs; the server sees changes within seconds).

use std::sync::Arc;

use anyhow::{Context, bail};
use cloudo_core::auth::{ApiKey, Role, generate_key, valid_name};
use cloudo_core::{Store, time};

use crate::commands::backend;

use crate::commands::cli::{KeysArgs, KeysCommand};

/// The store the keys live in: the data dir's database, or the shared Azure tables.
async fn open(args: &KeysArgs) -> anyhow::Result<Arc<dyn Store>> {
    if args.backend == Some(crate::commands::cli::Backend::Azure) {
        let az = cloudo_worker::command::azure::AzureBackend::resolve(
            args.azure_storage_account.clone(),
            args.azure_credential.clone(),
            args.azure_prefix.clone(),
        )?;
        return backend::azure_store(&az).await;
    }
    backend::existing_embedded_store(&args.data_dir.clone().unwrap_or_else(|| "data".into()))
}

pub async fn run(args: KeysArgs) -> anyhow::Result<()> {
    let store = open(&args).await?;
    match args.command {
        KeysCommand::Create {
            name,
            role,
            expires_at,
            pool,
            scope,
        } => {
            if !valid_name(&name) {
                bail!("name: 1-64 letters, digits, '-', '_' or '.'");
            }
            let role: Role = role.parse().map_err(anyhow::Error::msg)?;
            let pool = crate::api::check_pool(role, pool).map_err(anyhow::Error::msg)?;
            let scope = cloudo_core::scope::Scope::parse(scope).map_err(anyhow::Error::msg)?;
            let expires_at = match expires_at {
                None => None,
                Some(t) => {
                    Some(time::parse_rfc3339(&t).context("expires-at: not an RFC 3339 time")?)
                }
            };
            let key = generate_key().map_err(anyhow::Error::msg)?;
            let record =
                ApiKey::for_secret(&key, name.clone(), role, pool, expires_at).with_scope(scope);
            store.put_key(&record, false).await?;
            eprintln!("created key {name:?} with role {role}; it is shown only now:");
            println!("{key}");
        }
        KeysCommand::List => {
            for k in store.list_keys().await? {
                println!(
                    "{}\t{}\texpires={}\tlast_used={}\tscope={}",
                    k.name,
                    k.role,
                    k.expires_at
                        .map(time::rfc3339)
                        .unwrap_or_else(|| "never".into()),
                    k.last_used_at
                        .map(time::rfc3339)
                        .unwrap_or_else(|| "never".into()),
                    k.scope,
                );
            }
        }
        KeysCommand::Revoke { name } => {
            if !crate::services::access::revoke_key(&*store, &name).await? {
                bail!("no key named {name:?}");
            }
            eprintln!("revoked {name:?}");
        }
    }
    Ok(())
}
