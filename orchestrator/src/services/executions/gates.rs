//! The limits an accepted execution passes before its job is queued: the schema's hourly
//! rate (refused: `skipped`, reason `rate_limited`), its concurrency key and its pool's
//! capacity (busy: it waits in line, `accepted` without a job, or is `skipped` under the
//! `skip` policy). The records are in the store ([`cloudo_core::limits`]), so every
//! orchestrator and worker pool sees the same; a slot is freed when its execution ends,
//! however it ends, and the first in line is sent on ([`Executions::release_slots`]; the
//! reaper's [`Executions::sweep_limits`] repairs what a crash between the two left).

use cloudo_core::limits::{
    self, Acquired, Counted, Slots, Window, concurrency_key, key_value, pool_key, rate_key,
};
use cloudo_core::policy::ConcurrencyPolicy;
use cloudo_core::store::{Versioned, update_state};
use cloudo_core::{ExecId, Execution, Status, StatusChange, StoreError, time};

use super::{Executions, TriggerError};

/// What an accepted execution's limits say.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Gate {
    /// Queue it.
    Go,
    /// It waits in line (the reason says for what); it is queued when its turn comes.
    Wait(String),
    /// Over a limit: recorded `skipped` with the reason; `tell` for the first refusal of a
    /// rate window (the on-call routing hears of it once).
    Skip { reason: String, tell: bool },
    /// The limits could not be checked (the store failed): recorded `error`.
    Fail(String),
}

impl Executions {
    /// Whether `e` has limits to pass (most have none: they skip the store round trips).
    pub(super) fn gated(&self, e: &Execution) -> bool {
        !e.limits.is_empty() || self.pool_capacity.contains_key(&e.pool)
    }

    /// Whether `e` has limits (an accepted one without a job may be waiting in line).
    pub fn has_limits(&self, e: &Execution) -> bool {
        self.gated(e)
    }

    /// Takes `e` through its limits, in order: rate, concurrency key, pool. Asking again
    /// gives the same answer (a run is counted and holds a slot once).
    pub(super) async fn gate(&self, e: &Execution) -> Gate {
        match self.try_gate(e).await {
            Ok(g) => g,
            Err(err) => Gate::Fail(format!("could not check its limits: {err}")),
        }
    }

    async fn try_gate(&self, e: &Execution) -> Result<Gate, StoreError> {
        let now = time::now();
        let store = &*self.store;
        let l = &e.limits;
        let resource = e.env.get("RESOURCE_ID").filter(|r| !r.is_empty());
        let windows = [
            (l.max_runs_per_hour, None, "max_runs_per_hour"),
            (
                l.max_runs_per_hour_per_resource,
                resource.map(String::as_str),
                "max_runs_per_hour_per_resource",
            ),
        ];
        for (max, resource, field) in windows {
            let Some(max) = max else { continue };
            if field == "max_runs_per_hour_per_resource" && resource.is_none() {
                continue;
            }
            let key = rate_key(&e.schema_id, resource);
            let counted =
                update_state(store, &key, |w: &mut Window| w.count(&e.exec_id, max, now)).await?;
            if let Counted::Limited { first } = counted {
                let on = resource.map(|r| format!(" on {r}")).unwrap_or_default();
                return Ok(Gate::Skip {
                    reason: format!(
                        "rate_limited: {max} runs of schema {:?}{on} in the last hour \
                         ({field} {max}); runs are skipped until an hour after the oldest",
                        e.schema_id
                    ),
                    tell: first,
                });
            }
        }
        if let Some(max) = l.max_concurrency {
            let value = key_value(e);
            let wait = l.concurrency_policy == ConcurrencyPolicy::Queue;
            let key = concurrency_key(&e.schema_id, value);
            let what = format!("{}={value:?}", l.key_variable());
            let got = update_state(store, &key, |s: &mut Slots| {
                s.acquire(&e.exec_id, max, wait, now)
            })
            .await?;
            match got {
                Acquired::Holding => {}
                Acquired::Waiting(ahead) => {
                    return Ok(Gate::Wait(format!(
                        "waiting for a concurrency slot ({what}, max_concurrency {max}, \
                         {ahead} ahead)"
                    )));
                }
                Acquired::Busy => {
                    return Ok(Gate::Skip {
                        reason: format!(
                            "concurrency_limit: {max} run(s) with {what} already running \
                             (concurrency_policy skip)"
                        ),
                        tell: false,
                    });
                }
                Acquired::LineFull => {
                    return Ok(Gate::Skip {
                        reason: format!(
                            "concurrency_limit: {} runs with {what} are already waiting",
                            limits::MAX_WAITING
                        ),
                        tell: false,
                    });
                }
            }
        }
        if let Some(&cap) = self.pool_capacity.get(&e.pool) {
            let got = update_state(store, &pool_key(&e.pool), |s: &mut Slots| {
                s.acquire(&e.exec_id, cap, true, now)
            })
            .await?;
            match got {
                Acquired::Holding => {}
                Acquired::Waiting(ahead) => {
                    return Ok(Gate::Wait(format!(
                        "waiting for capacity of pool {:?} ({cap} running, {ahead} ahead)",
                        e.pool
                    )));
                }
                Acquired::Busy | Acquired::LineFull => {
                    return Ok(Gate::Skip {
                        reason: format!(
                            "pool_capacity: {} runs are already waiting for pool {:?}",
                            limits::MAX_WAITING,
                            e.pool
                        ),
                        tell: false,
                    });
                }
            }
        }
        Ok(Gate::Go)
    }

    /// Takes an accepted execution through its limits and queues it when they let it go;
    /// `skipped` or `error` otherwise. What start-up recovery, duplicates, approvals and
    /// promotions use; new executions go through the batch path of `submit`.
    pub async fn dispatch(&self, e: Execution) -> Result<Execution, TriggerError> {
        let gate = if self.gated(&e) {
            self.gate(&e).await
        } else {
            Gate::Go
        };
        let enqueued = match gate {
            Gate::Go => Some(self.enqueue(&e, e.request_body.as_deref()).await),
            _ => None,
        };
        let (e, err) = self.after_gate(e, gate, enqueued).await?;
        match err {
            Some(err) => Err(TriggerError::Queue(err)),
            None => Ok(e),
        }
    }

    /// Records what the gate and the queue said of an accepted execution: `skipped` or
    /// `error` with the reason (the error text is returned too). Waiting ones stay.
    pub(super) async fn after_gate(
        &self,
        e: Execution,
        gate: Gate,
        enqueued: Option<cloudo_core::queue::QueueResult<String>>,
    ) -> Result<(Execution, Option<String>), StoreError> {
        let (to, reason, tell) = match (gate, enqueued) {
            (Gate::Go, Some(Err(err))) => {
                tracing::error!(exec_id = %e.exec_id, error = %err, "enqueue failed");
                let reason = format!("could not queue the job: {err}");
                (Status::Error, reason, false)
            }
            (Gate::Go, _) => return Ok((e, None)),
            (Gate::Wait(why), _) => {
                tracing::info!(exec_id = %e.exec_id, schema_id = %e.schema_id, reason = %why,
                    "execution waits for a slot");
                return Ok((e, None));
            }
            (Gate::Skip { reason, tell }, _) => (Status::Skipped, reason, tell),
            (Gate::Fail(reason), _) => (Status::Error, reason, false),
        };
        let change = StatusChange::to(to)
            .reason(reason.clone())
            .only_from(Status::Accepted);
        let e = match self.change(&e.exec_id, change).await {
            Ok(moved) => moved,
            // Cancelled or started meanwhile.
            Err(StoreError::Illegal(_)) => return Ok((e, None)),
            Err(other) => return Err(other),
        };
        if tell && let Some(n) = &self.notifier {
            n.on_rate_limited(&e).await;
        }
        Ok((e, (to == Status::Error).then_some(reason)))
    }

    /// Frees the slots (and places in line) of an execution that ended, and sends on the
    /// runs that got them.
    pub(super) async fn release_slots(&self, e: &Execution) {
        let mut keys = Vec::new();
        if e.limits.max_concurrency.is_some() {
            keys.push(concurrency_key(&e.schema_id, key_value(e)));
        }
        if self.pool_capacity.contains_key(&e.pool) {
            keys.push(pool_key(&e.pool));
        }
        for key in keys {
            let now = time::now();
            match update_state(&*self.store, &key, |s: &mut Slots| {
                s.release(&e.exec_id, now)
            })
            .await
            {
                Ok(promoted) => self.send_on(promoted),
                // The reaper's sweep frees it later.
                Err(err) => tracing::error!(exec_id = %e.exec_id, key, error = %err,
                    "cannot free a slot"),
            }
        }
    }

    /// Dispatches executions that got a slot, each on its own task (a finishing run's
    /// report must not wait for them, and a slot handed on must not recurse here).
    fn send_on(&self, promoted: Vec<ExecId>) {
        for id in promoted {
            let ex = self.clone();
            tokio::spawn(async move {
                match ex.store.get_execution(&id).await {
                    Ok(Some(e)) if e.status == Status::Accepted => {
                        if let Err(err) = ex.dispatch(e).await {
                            tracing::error!(exec_id = %id, error = %err, "cannot queue a run that got its slot");
                        }
                    }
                    // It ended while in line: its slot goes on.
                    Ok(Some(e)) if e.status.is_terminal() => ex.release_slots(&e).await,
                    Ok(_) => {}
                    Err(err) => {
                        tracing::error!(exec_id = %id, error = %err, "cannot read a run that got its slot")
                    }
                }
            });
        }
    }

    /// The reaper's repair of limit records: slots held by (or lines with) executions that
    /// ended are freed and handed on (a crash between the end and the release), free slots
    /// go to the first in line, records with nothing in them are deleted.
    pub async fn sweep_limits(&self) -> Result<(), StoreError> {
        let now = time::now();
        for (key, v) in self.store.list_state("limit/").await? {
            if key.starts_with("limit/r/") {
                self.drop_idle::<Window>(&key, &v, |w| w.is_idle(now))
                    .await?;
                continue;
            }
            let Ok(slots) = serde_json::from_str::<Slots>(&v.value) else {
                tracing::error!(key, "unreadable limit record");
                continue;
            };
            let mut ended = Vec::new();
            for id in slots
                .holders
                .iter()
                .map(|h| &h.exec_id)
                .chain(&slots.waiting)
            {
                match self.store.get_execution(id).await? {
                    Some(e) if !e.status.is_terminal() => {}
                    _ => ended.push(id.clone()),
                }
            }
            let promoted = update_state(&*self.store, &key, |s: &mut Slots| {
                let mut out = Vec::new();
                for id in &ended {
                    out.extend(s.release(id, now));
                }
                out.extend(s.promote(now));
                out
            })
            .await?;
            if !ended.is_empty() || !promoted.is_empty() {
                tracing::warn!(
                    key,
                    freed = ended.len(),
                    sent_on = promoted.len(),
                    "limit slots repaired"
                );
            }
            self.send_on(promoted);
            if let Some(v) = self.store.read_state(&key).await? {
                self.drop_idle::<Slots>(&key, &v, Slots::is_idle).await?;
            }
        }
        Ok(())
    }

    async fn drop_idle<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        v: &Versioned,
        idle: impl Fn(&T) -> bool,
    ) -> Result<(), StoreError> {
        if serde_json::from_str::<T>(&v.value).is_ok_and(|x| idle(&x)) {
            // Changed meanwhile: then it is not idle, and stays.
            self.store.delete_state(key, &v.version).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
