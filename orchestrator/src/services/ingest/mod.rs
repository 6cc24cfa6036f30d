//! Ingestion: from a trigger (manual or an alert) to the executions it causes.
//!
//! Which runbooks an alert runs, in order: the schema named by `?id=`; else the routing
//! rules; else ClouDO's fallback (the last path segment of the alert rule, then of the
//! alert id, equal to a schema id). Each chosen schema may still decline the alert by its
//! `monitor_condition` / `severity` filters or because it is disabled: that execution is
//! recorded as `skipped` with the reason. An alert that chooses nothing is recorded as one
//! `routed` execution with the reason. Nothing is dropped silently.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cloudo_core::alert::Alert;
use cloudo_core::routing::RoutingRules;
use cloudo_core::store::{Batch, DedupKey, NewExecution};
use cloudo_core::{Execution, Schema, Status};

use crate::services::documents::LiveCatalog;

mod record;
pub use record::declines;
pub(in crate::services) use record::recorded;
use record::waiting;

use crate::services::executions::{Executions, Submitted, TriggerError};
use cloudo_core::policy::Guardrails;
use cloudo_worker::RunbookSource;

/// Who asked, with what.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `manual`, `alert`, ...
    pub initiator: String,
    pub team: Option<String>,
    /// The raw body, already checked to be JSON.
    pub body: Option<String>,
    /// `Idempotency-Key` of a manual trigger.
    pub idempotency_key: Option<String>,
    /// Who asked, for an approval request: the key's name, or `alert` when an alert did.
    pub requested_by: String,
    /// The schemas the asking key may run; others an alert chooses are `skipped`.
    pub scope: cloudo_core::scope::Scope,
    /// `?dry_run=`: overrides the schema's `dry_run` default.
    pub dry_run: Option<bool>,
}

/// The executions one trigger caused (or had caused, for a duplicate).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub executions: Vec<Execution>,
    pub duplicate: bool,
}

#[derive(Clone)]
pub struct Ingest {
    pub executions: Executions,
    pub catalog: LiveCatalog,
    routes: Arc<RwLock<Arc<RoutingRules>>>,
    pub dedup_window: Duration,
    pub lowercase_resource: bool,
    /// Where runbooks come from: a pending request is pinned to the current commit.
    runbooks: Option<Arc<dyn RunbookSource>>,
    /// The orchestrator's own guardrails, for every schema.
    guardrails: Guardrails,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest").finish_non_exhaustive()
    }
}

impl Ingest {
    pub fn new(
        executions: Executions,
        catalog: LiveCatalog,
        routes: RoutingRules,
        dedup_window: Duration,
        lowercase_resource: bool,
    ) -> Self {
        Self {
            executions,
            catalog,
            routes: Arc::new(RwLock::new(Arc::new(routes))),
            dedup_window,
            lowercase_resource,
            runbooks: None,
            guardrails: Guardrails::default(),
        }
    }

    /// Guardrails every schema's runs are held to, besides the schema's own.
    pub fn with_guardrails(mut self, g: Guardrails) -> Self {
        self.guardrails = g;
        self
    }

    /// Why the runs of `schema` with these variables fall outside a guardrail, if they do.
    fn outside(&self, schema: &Schema, env: &BTreeMap<String, String>) -> Option<String> {
        schema
            .policy
            .guardrails
            .refuses(env, "the schema's")
            .or_else(|| self.guardrails.refuses(env, "the orchestrator's"))
    }

    /// Pins pending requests to the runbook commit of their time (git sources).
    pub fn with_runbooks(mut self, runbooks: Arc<dyn RunbookSource>) -> Self {
        self.runbooks = Some(runbooks);
        self
    }

    /// What runs is what was asked for: a pending execution's runbook is pinned to the
    /// commit its ref (or the source's current version) has now, so a later push does not
    /// change what an approver approved. Local folders have no commits: nothing to pin.
    async fn pin_pending(&self, batches: &mut [(Batch, BTreeMap<String, String>)]) {
        for (batch, _) in batches.iter_mut() {
            for n in &mut batch.executions {
                let e = &mut n.execution;
                if e.status != Status::Pending {
                    continue;
                }
                n.reason = waiting(e);
                let Some(source) = &self.runbooks else {
                    continue;
                };
                match source.resolve(&e.runbook, e.runbook_ref.as_deref()).await {
                    Ok(r) => {
                        if let Some(commit) = r.commit {
                            e.runbook_ref = Some(commit);
                        }
                    }
                    // It fails again when it runs, with the reason on the execution.
                    Err(err) => tracing::warn!(exec_id = %e.exec_id, error = %err,
                        "cannot pin the runbook of a pending request"),
                }
            }
        }
    }

    pub fn routes(&self) -> Arc<RoutingRules> {
        self.routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_routes(&self, routes: RoutingRules) {
        *self.routes.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(routes);
    }

    fn dedup(&self, key: Option<String>) -> Option<DedupKey> {
        key.filter(|_| !self.dedup_window.is_zero())
            .map(|key| DedupKey {
                key,
                window: self.dedup_window,
            })
    }

    /// A manual run of `schema`, with an optional opaque body.
    pub async fn manual(&self, schema: &Schema, req: Request) -> Result<Outcome, TriggerError> {
        let (status, reason) = if schema.enabled {
            (Status::Accepted, None)
        } else {
            (Status::Skipped, Some("schema is disabled".to_string()))
        };
        let e = recorded(schema, status, reason.clone(), &req);
        let dedup = self.dedup(
            req.idempotency_key
                .as_ref()
                .map(|k| format!("manual:{}:{k}", schema.id)),
        );
        let batch = Batch {
            executions: vec![NewExecution {
                execution: e,
                reason,
            }],
            dedup,
        };
        let body = req.body.clone();
        self.submit_one(batch, BTreeMap::new(), body.as_deref())
            .await
    }

    /// Which schemas an alert chooses, and how (for answers and `routes/test`).
    pub fn choose(&self, alert: &Alert, explicit: Option<&Schema>) -> (Vec<Schema>, String) {
        if let Some(s) = explicit {
            return (vec![s.clone()], "named by ?id".into());
        }
        let routes = self.routes();
        let catalog = self.catalog.get();
        let matched = routes.matching(alert);
        if !matched.is_empty() {
            let mut chosen: Vec<Schema> = Vec::new();
            for (_, rule) in &matched {
                for id in &rule.run {
                    match catalog.get(id) {
                        Some(s) if !chosen.iter().any(|c| c.id == s.id) => chosen.push(s.clone()),
                        Some(_) => {}
                        None => {
                            tracing::warn!(schema_id = %id, "routing rule names an unknown schema")
                        }
                    }
                }
            }
            let names: Vec<String> = matched
                .iter()
                .map(|(i, r)| r.name.clone().unwrap_or_else(|| format!("#{i}")))
                .collect();
            return (chosen, format!("routing rule {}", names.join(", ")));
        }
        for id in alert.fallback_schema_ids() {
            if let Some(s) = catalog.get(&id) {
                return (
                    vec![s.clone()],
                    format!("schema id equals the alert rule/id segment {id:?}"),
                );
            }
        }
        (Vec::new(), String::new())
    }

    /// The executions for one alert.
    pub async fn alert(
        &self,
        alert: &Alert,
        explicit: Option<&Schema>,
        req: Request,
    ) -> Result<Outcome, TriggerError> {
        let (batch, env) = self.batch_for(alert, explicit, &req);
        let out = self.submit_one(batch, env, req.body.as_deref()).await?;
        crate::services::telemetry::count_alert(alert, out.duplicate, &out.executions);
        Ok(out)
    }

    /// The executions for every alert of one delivery (an Alertmanager group): one batch
    /// per alert (each deduplicated on its own), recorded together, the body stored once.
    pub async fn alerts(
        &self,
        alerts: &[Alert],
        explicit: Option<&Schema>,
        req: Request,
    ) -> Result<Vec<Outcome>, TriggerError> {
        let mut batches: Vec<_> = alerts
            .iter()
            .map(|a| self.batch_for(a, explicit, &req))
            .collect();
        self.pin_pending(&mut batches).await;
        let out: Vec<Outcome> = self
            .executions
            .submit(batches, req.body.as_deref())
            .await?
            .into_iter()
            .map(Outcome::from)
            .collect();
        for (alert, o) in alerts.iter().zip(&out) {
            crate::services::telemetry::count_alert(alert, o.duplicate, &o.executions);
        }
        Ok(out)
    }

    /// What one alert records: an execution per chosen schema (accepted, or skipped with
    /// the reason), or one `routed` execution; and the runbook variables.
    fn batch_for(
        &self,
        alert: &Alert,
        explicit: Option<&Schema>,
        req: &Request,
    ) -> (Batch, BTreeMap<String, String>) {
        let (chosen, how) = self.choose(alert, explicit);
        let env = alert.env(self.lowercase_resource);
        let mut executions = Vec::new();
        for schema in &chosen {
            let declined = declines(schema, alert)
                .or_else(|| {
                    (!req.scope.allows_schema(schema)).then(|| {
                        format!(
                            "outside the scope of the key that delivered the alert ({})",
                            req.scope
                        )
                    })
                })
                .or_else(|| self.outside(schema, &env));
            let status = if declined.is_some() {
                Status::Skipped
            } else {
                Status::Accepted
            };
            let e = recorded(schema, status, declined.clone(), req);
            executions.push(NewExecution {
                execution: e,
                reason: declined.or_else(|| Some(format!("chosen by {how}"))),
            });
        }
        if executions.is_empty() {
            let name = if alert.rule.is_empty() {
                "alert"
            } else {
                &alert.rule
            };
            let reason = format!(
                "no runbook for alert rule {:?}: no ?id, no matching routing rule, no schema with that id",
                alert.rule
            );
            let e = recorded(
                &Schema::placeholder(name),
                Status::Routed,
                Some(reason.clone()),
                req,
            );
            executions.push(NewExecution {
                execution: e,
                reason: Some(reason),
            });
        }
        let batch = Batch {
            executions,
            dedup: self.dedup(alert.dedup_key.clone()),
        };
        (batch, env)
    }

    pub(super) async fn submit_one(
        &self,
        batch: Batch,
        env: BTreeMap<String, String>,
        body: Option<&str>,
    ) -> Result<Outcome, TriggerError> {
        let mut batches = vec![(batch, env)];
        self.pin_pending(&mut batches).await;
        let mut out = self.executions.submit(batches, body).await?;
        out.pop()
            .map(Outcome::from)
            .ok_or_else(|| TriggerError::Queue("nothing was recorded".into()))
    }
}

impl From<Submitted> for Outcome {
    fn from(s: Submitted) -> Self {
        match s {
            Submitted::New(executions) => Outcome {
                executions,
                duplicate: false,
            },
            Submitted::Duplicate(executions) => Outcome {
                executions,
                duplicate: true,
            },
        }
    }
}
