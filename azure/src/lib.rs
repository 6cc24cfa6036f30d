//! Azure Storage adapters of the engine's ports: [`store::AzureStore`] on Table Storage
//! (through the small [`tables`] client) and [`queue::AzureQueue`] on Storage Queues, with
//! [`auth`] for connection strings, SharedKey signing and Entra ID credentials.

pub mod auth;
pub mod queue;
pub mod runbook_tokens;
pub mod store;
pub mod tables;

pub use auth::{Account, CredentialKind};
pub use queue::AzureQueue;
pub use store::AzureStore;
