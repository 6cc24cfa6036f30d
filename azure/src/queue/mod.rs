//! [`JobQueue`] on Azure Storage Queues (`azure_storage_queue` 1.x).
//!
//! One queue per worker pool, `<prefix>-<pool>`, and its dead-letter queue
//! `<prefix>-<pool>-poison`. A message's text is the [`Job`] as JSON, base64-encoded (the
//! convention of Azure Functions queue triggers and the other SDKs' default encoders). Jobs
//! carry secret *names* only. A lease is Azure's visibility timeout (whole seconds); its pop
//! receipt changes on every renewal. A message received for the (N+1)th time is moved to the
//! poison queue, wrapped with the time and the delivery count, instead of being handed out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use azure_core::http::Url;
use azure_core::http::headers::HeaderName;
use azure_storage_queue::models::{
    QueueClientPeekMessagesOptions, QueueClientReceiveMessagesOptions, QueueMessage,
};
use azure_storage_queue::{QueueClient, QueueClientOptions};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cloudo_core::job::Job;
use cloudo_core::queue::{DeadLetter, JobQueue, Lease, QueueDepth, QueueError, QueueResult};
use cloudo_core::time;
use tokio::sync::Notify;

use crate::auth::{Account, Auth, Service, SharedKeyPolicy};

mod name;
mod wire;
pub use name::queue_name;
use wire::{Poisoned, decode, lease_lost, not_found, on_lease, secs, unavailable};

/// Queues of one deployment.
pub struct AzureQueue {
    account: Account,
    prefix: String,
    max_deliveries: u32,
    poll: Duration,
    clients: Mutex<HashMap<String, Arc<QueueClient>>>,
    /// Wakes local waiters on local enqueues (one process can be orchestrator and worker).
    wake: Mutex<HashMap<String, Arc<Notify>>>,
    /// Empty polls in a row per pool: idle waits grow from 25 ms to `poll`.
    idle: Mutex<HashMap<String, u32>>,
}

impl std::fmt::Debug for AzureQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureQueue")
            .field("account", &self.account)
            .field("prefix", &self.prefix)
            .field("max_deliveries", &self.max_deliveries)
            .finish_non_exhaustive()
    }
}

impl AzureQueue {
    /// `max_deliveries`: deliveries before a message goes to the poison queue.
    pub fn new(account: Account, prefix: &str, max_deliveries: u32) -> Self {
        Self {
            account,
            prefix: prefix.to_string(),
            max_deliveries: max_deliveries.max(1),
            poll: Duration::from_secs(1),
            clients: Mutex::new(HashMap::new()),
            wake: Mutex::new(HashMap::new()),
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// The longest an idle `wait` sleeps (default 1 s). Waits start at 25 ms after a
    /// message was seen and double with every empty poll, so a busy pool is polled often
    /// and an idle one about once a second.
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    fn client(&self, name: &str) -> QueueResult<Arc<QueueClient>> {
        let mut clients = self
            .clients
            .lock()
            .map_err(|_| unavailable("poisoned lock"))?;
        if let Some(c) = clients.get(name) {
            return Ok(c.clone());
        }
        let url = Url::parse(&format!(
            "{}/{name}",
            self.account.queue_endpoint.as_str().trim_end_matches('/')
        ))
        .map_err(unavailable)?;
        let mut options = QueueClientOptions {
            client_options: crate::tables::client_options(&self.account),
            ..QueueClientOptions::default()
        };
        let credential = match &self.account.auth {
            Auth::SharedKey(key) => {
                options
                    .client_options
                    .per_try_policies
                    .push(Arc::new(SharedKeyPolicy::new(
                        &self.account.name,
                        key.clone(),
                        Service::Queue,
                    )));
                None
            }
            Auth::Token(c) => Some(c.clone()),
        };
        let c = Arc::new(QueueClient::new(url, credential, Some(options)).map_err(unavailable)?);
        clients.insert(name.to_string(), c.clone());
        Ok(c)
    }

    fn notify(&self, pool: &str) -> Arc<Notify> {
        match self.wake.lock() {
            Ok(mut m) => m.entry(pool.to_string()).or_default().clone(),
            Err(_) => Arc::new(Notify::new()),
        }
    }

    async fn create(&self, name: &str) -> QueueResult<()> {
        self.client(name)?.create(None).await.map_err(unavailable)?;
        Ok(())
    }

    async fn send(&self, name: &str, text: String) -> QueueResult<String> {
        let client = self.client(name)?;
        let msg = || -> QueueResult<_> {
            QueueMessage {
                message_text: Some(text.clone()),
            }
            .try_into()
            .map_err(unavailable)
        };
        let sent = match client.send_message(msg()?, None).await {
            Err(e) if not_found(&e) => {
                self.create(name).await?;
                client.send_message(msg()?, None).await
            }
            other => other,
        }
        .map_err(unavailable)?;
        let sent = sent.into_model().map_err(unavailable)?;
        Ok(sent
            .items
            .and_then(|i| i.into_iter().next())
            .and_then(|m| m.message_id)
            .unwrap_or_default())
    }

    async fn poison(
        &self,
        pool: &str,
        id: &str,
        receipt: &str,
        count: u32,
        text: String,
    ) -> QueueResult<()> {
        let name = queue_name(&self.prefix, pool);
        let wrapped = Poisoned {
            dead_at: time::now(),
            dequeue_count: count,
            message_id: id.to_string(),
            body: text,
        };
        let wrapped = serde_json::to_vec(&wrapped).map_err(unavailable)?;
        self.send(&format!("{name}-poison"), B64.encode(wrapped))
            .await?;
        match self.client(&name)?.delete_message(id, receipt, None).await {
            Ok(_) => Ok(()),
            // Someone else got it meanwhile: they will poison it too; the copy is harmless.
            Err(e) if lease_lost(&e) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }
}

#[async_trait]
impl JobQueue for AzureQueue {
    async fn enqueue(&self, pool: &str, job: &Job) -> QueueResult<String> {
        let body = serde_json::to_vec(job).map_err(unavailable)?;
        let id = self
            .send(&queue_name(&self.prefix, pool), B64.encode(body))
            .await?;
        self.notify(pool).notify_waiters();
        Ok(id)
    }

    async fn lease(&self, pool: &str, visibility: Duration) -> QueueResult<Option<Lease>> {
        let name = queue_name(&self.prefix, pool);
        let client = self.client(&name)?;
        loop {
            let options = QueueClientReceiveMessagesOptions {
                number_of_messages: Some(1),
                visibility_timeout: Some(secs(visibility, 1)),
                ..Default::default()
            };
            let received = match client.receive_messages(Some(options)).await {
                Ok(r) => r.into_model().map_err(unavailable)?,
                Err(e) if not_found(&e) => {
                    self.create(&name).await?;
                    return Ok(None);
                }
                Err(e) => return Err(unavailable(e)),
            };
            let Some(m) = received.items.and_then(|i| i.into_iter().next()) else {
                return Ok(None);
            };
            if let Ok(mut idle) = self.idle.lock() {
                idle.remove(pool);
            }
            let (Some(id), Some(receipt)) = (m.message_id, m.pop_receipt) else {
                return Err(unavailable("received a message without id or pop receipt"));
            };
            let count = u32::try_from(m.dequeue_count.unwrap_or(1)).unwrap_or(u32::MAX);
            let text = m.message_text.unwrap_or_default();
            if count > self.max_deliveries {
                tracing::warn!(pool, message_id = %id, deliveries = count - 1, "dead-lettering a message");
                self.poison(pool, &id, &receipt, count - 1, text).await?;
                continue;
            }
            match decode(&text) {
                Ok(job) => {
                    return Ok(Some(Lease {
                        pool: pool.to_string(),
                        message_id: id,
                        pop_receipt: receipt,
                        dequeue_count: count,
                        job,
                    }));
                }
                Err(why) => {
                    tracing::warn!(pool, message_id = %id, %why, "dead-lettering a corrupt message");
                    self.poison(pool, &id, &receipt, count, text).await?;
                }
            }
        }
    }

    async fn renew(&self, lease: &Lease, visibility: Duration) -> QueueResult<Lease> {
        let client = self.client(&queue_name(&self.prefix, &lease.pool))?;
        let rsp = client
            .update_message(
                &lease.message_id,
                &lease.pop_receipt,
                secs(visibility, 1),
                None,
            )
            .await
            .map_err(on_lease(lease))?;
        let receipt = rsp
            .headers()
            .get_optional_string(&HeaderName::from_static("x-ms-popreceipt"))
            .ok_or_else(|| unavailable("update without a new pop receipt"))?;
        Ok(Lease {
            pop_receipt: receipt,
            ..lease.clone()
        })
    }

    async fn ack(&self, lease: &Lease) -> QueueResult<()> {
        let client = self.client(&queue_name(&self.prefix, &lease.pool))?;
        client
            .delete_message(&lease.message_id, &lease.pop_receipt, None)
            .await
            .map_err(on_lease(lease))?;
        Ok(())
    }

    async fn release(&self, lease: &Lease, delay: Duration) -> QueueResult<()> {
        let client = self.client(&queue_name(&self.prefix, &lease.pool))?;
        client
            .update_message(&lease.message_id, &lease.pop_receipt, secs(delay, 0), None)
            .await
            .map_err(on_lease(lease))?;
        self.notify(&lease.pool).notify_waiters();
        Ok(())
    }

    async fn dead_letters(&self, pool: &str, limit: usize) -> QueueResult<Vec<DeadLetter>> {
        let name = format!("{}-poison", queue_name(&self.prefix, pool));
        let options = QueueClientPeekMessagesOptions {
            number_of_messages: Some(i32::try_from(limit.clamp(1, 32)).unwrap_or(32)),
            ..Default::default()
        };
        let peeked = match self.client(&name)?.peek_messages(Some(options)).await {
            Ok(p) => p.into_model().map_err(unavailable)?,
            Err(e) if not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(unavailable(e)),
        };
        let mut out = Vec::new();
        for m in peeked.items.unwrap_or_default() {
            let text = m.message_text.unwrap_or_default();
            let p: Poisoned = B64
                .decode(text.trim())
                .ok()
                .and_then(|raw| serde_json::from_slice(&raw).ok())
                .ok_or_else(|| QueueError::Corrupt("poison message is not ours".into()))?;
            out.push(DeadLetter {
                pool: pool.to_string(),
                message_id: p.message_id,
                dequeue_count: p.dequeue_count,
                job: decode(&p.body).ok(),
                body: p.body,
                dead_at: p.dead_at,
            });
        }
        Ok(out)
    }

    async fn wait(&self, pool: &str, max: Duration) {
        let streak = match self.idle.lock() {
            Ok(mut idle) => {
                let n = idle.entry(pool.to_string()).or_default();
                *n = n.saturating_add(1);
                *n - 1
            }
            Err(_) => 6,
        };
        let step = Duration::from_millis(25) * (1u32 << streak.min(6));
        let notify = self.notify(pool);
        tokio::select! {
            () = notify.notified() => {}
            () = tokio::time::sleep(step.min(self.poll).min(max)) => {}
        }
    }

    async fn ping(&self) -> QueueResult<()> {
        let client = self.client(&queue_name(&self.prefix, "ping"))?;
        client.exists().await.map_err(unavailable)?;
        Ok(())
    }

    /// The queue's approximate message count, and the insertion time of the first visible
    /// message (a peek: it stays where it is).
    async fn depth(&self, pool: &str) -> QueueResult<QueueDepth> {
        use azure_storage_queue::models::QueueClientGetPropertiesResultHeaders as _;
        let client = self.client(&queue_name(&self.prefix, pool))?;
        let messages = match client.get_properties(None).await {
            Ok(r) => r.approximate_messages_count().map_err(unavailable)?,
            Err(e) if not_found(&e) => return Ok(QueueDepth::default()),
            Err(e) => return Err(unavailable(e)),
        };
        let options = QueueClientPeekMessagesOptions {
            number_of_messages: Some(1),
            ..Default::default()
        };
        let peeked = client
            .peek_messages(Some(options))
            .await
            .map_err(unavailable)?
            .into_model()
            .map_err(unavailable)?;
        let now = azure_core::time::OffsetDateTime::now_utc();
        let oldest_waiting = peeked
            .items
            .unwrap_or_default()
            .first()
            .and_then(|m| m.insertion_time)
            .map(|t| Duration::from_millis((now - t).whole_milliseconds().max(0) as u64));
        Ok(QueueDepth {
            messages: messages.unwrap_or(0).max(0) as u64,
            oldest_waiting,
        })
    }
}
