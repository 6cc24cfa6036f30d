//! The scheduler: runs schemas on their cron schedules — the schedules document's entries
//! (a `--schedules` file, `PUT /api/schedules/{id}`) and the catalog's own (`schedule` on a
//! schema). Every orchestrator runs it; each tick is claimed in the store
//! ([`Ticks::claim`], compare-and-swap), so exactly one runs it, and its execution is
//! recorded under a dedup key of the schedule and tick, so a claim taken over from a
//! claimer that died cannot run twice. Ticks missed while nothing ran make one run at
//! start-up (`catch_up: run`) or none (`skip`); a new schedule starts from now.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use cloudo_core::schedule::{CatchUp, Schedule, ScheduleSet, Ticks, ticks_key};
use cloudo_core::store::{StoreResult, read_state_as, update_state};
use cloudo_core::{Store, time};
use tokio::sync::watch;

use super::documents::{Document, LiveCatalog};
use super::ingest::Ingest;

/// The key of the schedules document among the state records.
const DOCUMENT: &str = "document/schedules";

/// How often the scheduler looks at the clock (ticks are seconds).
const EVERY: Duration = Duration::from_millis(500);

/// A tick older than this at start-up was missed (not just due).
const MISSED_AFTER: chrono::Duration = chrono::Duration::seconds(2);

impl Document for ScheduleSet {
    const WHAT: &'static str = "schedules";

    fn parse(text: &str) -> Result<Self, String> {
        ScheduleSet::parse(text)
    }

    fn check(&self, catalog: &cloudo_core::Catalog) -> Result<(), String> {
        for s in &self.schedules {
            if catalog.get(&s.schema).is_none() {
                return Err(format!(
                    "schedule {:?} runs schema {:?}, which is not in the catalog",
                    s.id, s.schema
                ));
            }
            if catalog.get(&s.id).is_some_and(|x| x.schedule.is_some()) {
                return Err(format!(
                    "schedule id {:?} is taken by the schedule of that schema in the catalog",
                    s.id
                ));
            }
        }
        Ok(())
    }

    fn summary(&self) -> String {
        format!("{} schedules", self.schedules.len())
    }

    async fn read(store: &dyn Store) -> anyhow::Result<Option<(Self, String)>> {
        let Some(set) = read_state_as::<_, ScheduleSet>(store, DOCUMENT).await? else {
            return Ok(None);
        };
        let text = serde_json::to_string(&set)?;
        Ok(Some((set, text)))
    }

    async fn write(&self, store: &dyn Store) -> StoreResult<()> {
        update_state(store, DOCUMENT, |d: &mut ScheduleSet| *d = self.clone()).await
    }
}

/// Changes one entry of the stored schedules document (compare-and-swap, so replicas
/// changing different entries at once lose nothing); returns the document as it now is.
pub async fn edit_stored(
    store: &dyn Store,
    f: impl Fn(&mut ScheduleSet) + Send + Sync,
) -> StoreResult<ScheduleSet> {
    update_state(store, DOCUMENT, |d: &mut ScheduleSet| {
        f(d);
        d.clone()
    })
    .await
}

/// The schedules document in use; replaced as a whole.
#[derive(Debug, Clone, Default)]
pub struct LiveSchedules(Arc<RwLock<Arc<ScheduleSet>>>);

impl LiveSchedules {
    pub fn new(set: ScheduleSet) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(set))))
    }

    pub fn get(&self) -> Arc<ScheduleSet> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn set(&self, set: ScheduleSet) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
    }
}

/// Every schedule in use: the document's, then the catalog's own (checked ones only).
pub fn all(schedules: &LiveSchedules, catalog: &LiveCatalog) -> Vec<Schedule> {
    let mut out = schedules.get().compile().unwrap_or_else(|e| {
        tracing::error!(error = %e, "the schedules in use do not compile");
        Vec::new()
    });
    let catalog = catalog.get();
    out.extend(catalog.schemas().iter().filter_map(|s| s.own_schedule()));
    out
}

/// Runs schedules until `stop`.
pub async fn run(
    store: Arc<dyn Store>,
    ingest: Ingest,
    schedules: LiveSchedules,
    mut stop: watch::Receiver<bool>,
) {
    let mut starting = true;
    loop {
        let now = time::now();
        for s in all(&schedules, &ingest.catalog) {
            if let Err(e) = tick(&*store, &ingest, &s, now, starting).await {
                tracing::error!(schedule = %s.entry.id, error = %e, "schedule tick failed");
            }
        }
        starting = false;
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Runs `s`'s due tick, if it has one and this replica claims it.
async fn tick(
    store: &dyn Store,
    ingest: &Ingest,
    s: &Schedule,
    now: time::Timestamp,
    starting: bool,
) -> StoreResult<()> {
    let key = ticks_key(&s.entry.id);
    let ticks: Ticks = read_state_as(store, &key).await?.unwrap_or_default();
    let Some(last) = ticks.last_tick else {
        // New: it starts from now; nothing was missed.
        return update_state(store, &key, |t: &mut Ticks| t.pass(now)).await;
    };
    // A claim whose claimer died before recording its run: taken over (same dedup key).
    let due = if ticks.recorded || ticks.claimed_at.is_none() {
        s.latest_due(last, now)
    } else {
        Some(last).filter(|_| {
            ticks
                .claimed_at
                .is_some_and(|at| now - at >= cloudo_core::schedule::CLAIM_TIMEOUT)
        })
    };
    let Some(due) = due else { return Ok(()) };
    let missed = starting && due < now - MISSED_AFTER;
    // A disabled schema's ticks pass without a run (not a skipped execution per tick).
    let schema_enabled = ingest
        .catalog
        .get()
        .get(&s.entry.schema)
        .is_none_or(|x| x.enabled);
    if !s.entry.enabled || !schema_enabled || (missed && s.entry.catch_up == CatchUp::Skip) {
        if missed {
            tracing::info!(schedule = %s.entry.id, tick = %time::rfc3339(due),
                "ticks missed while nothing ran: skipped (catch_up: skip)");
        }
        return update_state(store, &key, |t: &mut Ticks| t.pass(due)).await;
    }
    if !update_state(store, &key, |t: &mut Ticks| t.claim(due, now)).await? {
        return Ok(()); // Another replica's.
    }
    let catalog = ingest.catalog.get();
    let Some(schema) = catalog.get(&s.entry.schema) else {
        tracing::warn!(schedule = %s.entry.id, schema = %s.entry.schema,
            "schedule runs a schema that is not in the catalog; tick passed");
        return update_state(store, &key, |t: &mut Ticks| t.record(due, None)).await;
    };
    if missed {
        tracing::info!(schedule = %s.entry.id, tick = %time::rfc3339(due),
            "ticks missed while nothing ran: one catch-up run");
    }
    let exec = match ingest.scheduled(schema, &s.entry, due).await {
        Ok(o) => o.executions.first().map(|e| e.exec_id.clone()),
        Err(e) => {
            // Left unrecorded: taken over after the claim timeout.
            tracing::error!(schedule = %s.entry.id, error = %e, "cannot record a scheduled run");
            return Ok(());
        }
    };
    update_state(store, &key, |t: &mut Ticks| t.record(due, exec.clone())).await
}

impl Ingest {
    /// The run of `schema` for `schedule`'s `tick`: initiator `schedule:<id>`, the
    /// schedule's arguments, `CLOUDO_SCHEDULED_AT` in its variables, through every gate of a
    /// manual run; recorded once per schedule and tick (a dedup key of both).
    pub async fn scheduled(
        &self,
        schema: &cloudo_core::Schema,
        schedule: &cloudo_core::schedule::ScheduleEntry,
        tick: time::Timestamp,
    ) -> Result<super::ingest::Outcome, super::executions::TriggerError> {
        use cloudo_core::Status;
        use cloudo_core::store::{Batch, DedupKey, NewExecution};
        let who = format!("schedule:{}", schedule.id);
        let req = super::ingest::Request {
            initiator: who.clone(),
            requested_by: who,
            ..Default::default()
        };
        let (status, reason) = if schema.enabled {
            (Status::Accepted, None)
        } else {
            (Status::Skipped, Some("schema is disabled".to_string()))
        };
        let mut e = super::ingest::recorded(schema, status, reason.clone(), &req);
        if let Some(args) = &schedule.run_args {
            e.run_args.clone_from(args);
        }
        let at = time::rfc3339(tick);
        let batch = Batch {
            executions: vec![NewExecution {
                execution: e,
                reason: reason.or_else(|| Some(format!("scheduled for {at}"))),
            }],
            dedup: Some(DedupKey {
                key: format!("schedule:{}:{at}", schedule.id),
                window: Duration::from_secs(86_400),
            }),
        };
        let env = [("CLOUDO_SCHEDULED_AT".to_string(), at)].into();
        self.submit_one(batch, env, None).await
    }
}
