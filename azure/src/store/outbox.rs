//! [`Outbox`] on tables: `notifications` per execution and `outbox`, the open ones.

use super::*;

impl AzureStore {
    /// Notifications of `table` matching `filter`, in id (creation) order.
    pub(super) async fn notifications_where(
        &self,
        table: &Table,
        filter: &str,
    ) -> StoreResult<Vec<Notification>> {
        table
            .query_all(Some(filter))
            .await?
            .iter()
            .map(|(e, _)| {
                let doc = get_text(e, "doc").ok_or_else(|| corrupt("notification without doc"))?;
                serde_json::from_str(&doc).map_err(corrupt)
            })
            .collect()
    }
}

#[async_trait]
impl Outbox for AzureStore {
    async fn add_notifications(&self, n: &[Notification]) -> StoreResult<()> {
        for one in n {
            self.update_notification(one).await?;
        }
        Ok(())
    }

    async fn update_notification(&self, n: &Notification) -> StoreResult<()> {
        let mut e = Entity::new();
        e.insert("PartitionKey".into(), json!(n.exec_id.as_str()));
        e.insert("RowKey".into(), json!(n.id));
        put_text(&mut e, "doc", &serde_json::to_string(n).map_err(corrupt)?);
        self.notifications.write(&e, false, None).await?;
        e.insert("PartitionKey".into(), json!("o"));
        if matches!(n.state, Delivery::Held | Delivery::Pending) {
            self.outbox.write(&e, false, None).await?;
        } else {
            self.outbox.delete("o", &n.id, None).await?;
        }
        Ok(())
    }

    async fn open_notifications(&self, limit: usize) -> StoreResult<Vec<Notification>> {
        let mut out = self
            .notifications_where(&self.outbox, "PartitionKey eq 'o'")
            .await?;
        out.truncate(limit);
        Ok(out)
    }

    async fn notifications_for(&self, id: &ExecId) -> StoreResult<Vec<Notification>> {
        let filter = format!("PartitionKey eq {}", quote(id.as_str()));
        self.notifications_where(&self.notifications, &filter).await
    }
}
