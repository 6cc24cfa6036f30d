//! [`Outbox`]: notifications recorded with the change that caused them, delivered later.

use async_trait::async_trait;

use super::StoreResult;
use crate::execution::ExecId;
use crate::notify::Notification;

#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// Adds notifications to the outbox.
    async fn add_notifications(&self, n: &[Notification]) -> StoreResult<()>;
    /// Replaces a notification (by id): its delivery state.
    async fn update_notification(&self, n: &Notification) -> StoreResult<()>;
    /// Held and pending notifications, oldest first.
    async fn open_notifications(&self, limit: usize) -> StoreResult<Vec<Notification>>;
    /// Every notification of an execution, oldest first.
    async fn notifications_for(&self, id: &ExecId) -> StoreResult<Vec<Notification>>;
}
