//! The outbox record: one message to send, and how sending went.

use serde::{Deserialize, Serialize};

use crate::execution::{ExecId, Status};
use crate::time::{self, Timestamp};

/// Delivery state of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// Written before its status change; released (pending) once the change is stored.
    Held,
    Pending,
    Delivered,
    Failed,
    /// Never sent, and why is in `last_error` (an on-call failure with no channel to page).
    Skipped,
}

/// One message in the outbox: what to send where, and how sending went. The request
/// carries no credential: the team's key, token or webhook is resolved when sending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// UUIDv7: outbox order is creation order.
    pub id: String,
    pub exec_id: ExecId,
    /// The execution status it reports (a held notification is released once the execution
    /// is in it).
    pub status: Status,
    /// `opsgenie` or `slack`.
    pub channel: String,
    /// `create`, `note`, `close` (Opsgenie) or `post` (Slack).
    pub action: String,
    pub team: String,
    /// Messages with the same key are sent in order (the Opsgenie alias, the Slack team).
    pub key: String,
    /// Path and query below the channel's base URL (e.g. `/v2/alerts`).
    pub path: String,
    /// The JSON body.
    pub body: String,
    pub state: Delivery,
    pub attempts: u32,
    #[serde(with = "time::serde_rfc3339")]
    pub next_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(with = "time::serde_rfc3339")]
    pub created_at: Timestamp,
    #[serde(default, with = "time::serde_rfc3339::option")]
    pub delivered_at: Option<Timestamp>,
    /// What the service answered that later messages refer to: a Slack message's
    /// `<channel> <ts>`, so an approval request's buttons can be taken away once decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
}

impl Notification {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        exec_id: &ExecId,
        status: Status,
        channel: &str,
        action: &str,
        team: &str,
        key: &str,
        path: String,
        body: &serde_json::Value,
    ) -> Self {
        let now = time::now();
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            exec_id: exec_id.clone(),
            status,
            channel: channel.to_string(),
            action: action.to_string(),
            team: team.to_string(),
            key: key.to_string(),
            path,
            body: body.to_string(),
            state: Delivery::Pending,
            attempts: 0,
            next_at: now,
            last_error: None,
            created_at: now,
            delivered_at: None,
            reply: None,
        }
    }
}
