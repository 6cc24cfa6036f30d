//! `cloudo serve`: the embedded engine in one process. Wires the store, queue, execution
//! service, worker pool, reaper and HTTP API together, and shuts them down in order.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cloudo_core::routing::RoutingRules;
use cloudo_core::{Catalog, Store, schema::DEFAULT_POOL, time};
use cloudo_sqlite::Durability;

use crate::commands::backend::{self, Backend};
use cloudo_worker::command::{
    lock_data_dir, refresh_loop, runbook_source, shutdown_signal, worker_id,
};
use cloudo_worker::{PoolConfig, PoolParts, Sandboxes};
use tokio::sync::watch;

use crate::api::{self, AppStateParts};
use crate::commands::cli::SqliteSync;
use crate::commands::config::ServeConfig;
use crate::services::documents;
use crate::services::executions::Executions;
use crate::services::ingest::Ingest;
use crate::services::reaper;
use cloudo_core::notify::NotifyRoutes;

/// How long a stopping engine waits for running runbooks before it exits anyway (they are
/// then marked `lost` at the next start).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// `cloudo serve`: the engine, on the listening address, until SIGTERM / Ctrl-C.
pub async fn run(cfg: ServeConfig) -> anyhow::Result<()> {
    let _lock = lock_data_dir(&cfg.worker.data_dir)?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    // The default public URL names the address actually bound (port 0 picks one).
    let engine = Engine::start(&cfg, &cfg.public_url_at(addr)).await?;
    tracing::info!(addr = %addr, "listening");
    let executions = engine.executions.clone();
    crate::api::server::serve(
        listener,
        engine.router.clone(),
        cfg.connections,
        async move {
            shutdown_signal().await;
            executions.close_followers();
        },
    )
    .await;
    engine.stop().await;
    Ok(())
}

/// Every part of the engine, running, with the router that serves its API (not bound to
/// any address: [`run`] serves it; the in-process tests call it directly).
pub struct Engine {
    pub router: axum::Router,
    /// Ends the live streams when the server stops (they would hold its connections open).
    pub executions: crate::services::executions::Executions,
    stop: watch::Sender<bool>,
    audit_writer: tokio::task::JoinHandle<()>,
    pool: tokio::task::JoinHandle<()>,
    others: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// Opens the backend, settles what a previous process left, and starts the worker
    /// pool, reaper, notifier, refreshers and the API's state.
    pub async fn start(cfg: &ServeConfig, public_url: &str) -> anyhow::Result<Self> {
        // This process among many (orchestrators and workers on one Azure store).
        let instance = format!("{}-{}", worker_id(), time::now().timestamp_millis());
        let Backend {
            store,
            queue,
            owned,
            intake,
        } = match &cfg.worker.azure {
            None => {
                let durability = match cfg.sqlite_sync {
                    SqliteSync::Normal => Durability::Process,
                    SqliteSync::Full => Durability::Power,
                };
                backend::embedded(&cfg.worker.data_dir, durability, cfg.worker.max_deliveries)?
            }
            Some(az) => backend::azure(az, cfg.worker.max_deliveries).await?,
        };
        // Every store call is timed, by operation (`/metrics`).
        cloudo_worker::metrics::install("orchestrator");
        let store: Arc<dyn cloudo_core::Store> =
            Arc::new(crate::services::metered::MeteredStore(store));
        // The catalog first: the other documents are checked against it.
        let (catalog, _) =
            documents::load::<Catalog>(cfg.catalog.as_deref(), &*store, &Catalog::default())
                .await?;
        if catalog.schemas().is_empty() {
            tracing::warn!("the catalog is empty: nothing can run until one is given");
        }

        let local_runs = cloudo_worker::pool::Running::default();
        let mut executions = Executions::new(store.clone(), queue.clone())
            .with_log_cap(cfg.worker.output_cap)
            .with_local_runs(local_runs.clone())
            .with_pool_capacity(cfg.pool_capacity.clone());
        if let Some(intake) = intake {
            executions = executions.with_intake(intake);
        }
        match &owned {
            // The embedded engine owns its database: settle what the previous process left.
            Some(q) => reaper::recover_embedded(&executions, &**q, cfg.queue_timeout).await?,
            // A shared store: other processes' runs are not ours to settle at start; the
            // reaper (one at a time, by lease) settles silent ones. Executions followed
            // here are re-read, since another orchestrator may change them.
            None => executions = executions.shared(Duration::from_millis(250)),
        }
        let (routes, _) =
            documents::load::<RoutingRules>(cfg.routes.as_deref(), &*store, &catalog).await?;
        let (schedules, _) = documents::load::<cloudo_core::schedule::ScheduleSet>(
            cfg.schedules.as_deref(),
            &*store,
            &catalog,
        )
        .await?;
        let schedules = crate::services::scheduler::LiveSchedules::new(schedules);
        let catalog = documents::LiveCatalog::new(catalog);
        let links = crate::services::links::LinkSigner::load(&*store, public_url).await?;
        let notifier = crate::services::notify::Notifier::new(
            store.clone(),
            cfg.notify.clone(),
            load_notify_routes(cfg, &*store, &catalog.get()).await?,
            catalog.clone(),
            (public_url, links.clone()),
        );
        executions = executions.with_notifier(notifier.clone());
        let unpaged = notifier.unpaged_oncall_schemas();
        if !unpaged.is_empty() {
            tracing::warn!(
                schemas = %unpaged.join(", "),
                "on-call schemas exist and no notification channel is configured: their failures \
                 page nobody (set an Opsgenie key, Slack, or teams in --notify-routes)"
            );
        }

        let runbooks = runbook_source(&cfg.worker).await;
        documents::runbooks::warn_missing(&catalog.get(), &*runbooks).await;

        let mut pools = match &cfg.worker_pools {
            Some(list) => list
                .iter()
                .filter(|p| !p.is_empty() && p.as_str() != "none")
                .cloned()
                .collect(),
            None => catalog.get().pools(),
        };
        if cfg.worker_pools.is_none() && !pools.iter().any(|p| p == DEFAULT_POOL) {
            pools.push(DEFAULT_POOL.to_string());
        }
        let sandboxes = Arc::new(
            Sandboxes::build(cfg.worker.sandbox.clone())
                .await
                .map_err(anyhow::Error::msg)?,
        );
        let (stop, stopped) = watch::channel(false);
        let stopped_for_refresh = stopped.clone();
        let pool = tokio::spawn(cloudo_worker::pool::run(
            PoolConfig::new(
                pools.clone(),
                cfg.worker.concurrency,
                worker_id(),
                cfg.worker.output_cap,
            ),
            PoolParts {
                queue: queue.clone(),
                runbooks: runbooks.clone(),
                sandboxes,
                secrets: Arc::new(cfg.worker.secrets.clone()),
                reporter: Arc::new(executions.clone()),
                running: local_runs,
                tokens: cloudo_worker::command::token_broker().await,
            },
            stopped.clone(),
        ));
        let reaper = tokio::spawn(reaper::run(
            executions.clone(),
            queue.clone(),
            pools,
            reaper::Bounds {
                lost_after: cfg.lost_after,
                queue_timeout: cfg.queue_timeout,
                dedup_window: cfg.dedup_window,
            },
            instance.clone(),
            stopped,
        ));

        let refresher = cfg.worker.git.as_ref().map(|git| {
            tokio::spawn(refresh_loop(
                runbooks.clone(),
                git.refresh,
                stopped_for_refresh.clone(),
            ))
        });

        let notifier_task = tokio::spawn(
            notifier
                .clone()
                .run(instance.clone(), stopped_for_refresh.clone()),
        );
        let ingest = Ingest::new(
            executions.clone(),
            catalog.clone(),
            routes,
            cfg.dedup_window,
            cfg.compat_lowercase_resource,
        )
        .with_runbooks(runbooks.clone())
        .with_guardrails(cfg.guardrails.clone());
        // On a shared store, other replicas' PUTs of routing rules and notification routes
        // arrive by re-reading them (the embedded engine is the only writer of its own).
        let documents = owned.is_none().then(|| {
            tokio::spawn(documents::follow(
                store.clone(),
                documents::Appliers {
                    catalog: catalog.clone(),
                    ingest: ingest.clone(),
                    notifier: notifier.clone(),
                    schedules: schedules.clone(),
                },
                documents::REREAD_EVERY,
                stopped_for_refresh.clone(),
            ))
        });
        let scheduler = tokio::spawn(crate::services::scheduler::run(
            store.clone(),
            ingest.clone(),
            schedules.clone(),
            stopped_for_refresh.clone(),
        ));
        let (audit, audit_writer) = crate::api::auth::AuditSink::start(store.clone());
        let state = AppStateParts {
            store: executions.view(),
            access: crate::services::access::Access::new(store.clone()),
            documents: documents::Documents::new(store.clone()),
            executions,
            ingest,
            routes_file: cfg.routes.as_ref().map(|p| p.display().to_string().into()),
            queue,
            runbooks,
            public_url: public_url.into(),
            auth_table: Arc::default(),
            keys: Arc::default(),
            dev_no_auth: cfg.dev_no_auth,
            ingest_limit: Arc::new(crate::api::auth::RateLimit::new(cfg.ingest_rate)),
            max_alerts: cfg.max_alerts,
            audit,
            entra: match &cfg.entra {
                None => None,
                Some(e) => Some(Arc::new(
                    crate::api::entra::EntraValidator::new(e.clone())
                        .map_err(anyhow::Error::msg)?,
                )),
            },
            notifier,
            links,
            schedules,
            schedules_file: cfg
                .schedules
                .as_ref()
                .map(|p| p.display().to_string().into()),
            catalog_file: cfg.catalog.as_ref().map(|p| p.display().to_string().into()),
            sessions: crate::services::sessions::Sessions::new(store.clone(), cfg.session_ttl),
            secure_cookies: public_url.starts_with("https://"),
            sign_in_limit: Arc::new(crate::api::auth::RateLimit::new(5)),
            oidc: match &cfg.oidc {
                None => None,
                Some(o) => Some(Arc::new(
                    crate::api::oidc::Provider::new(o.clone()).map_err(anyhow::Error::msg)?,
                )),
            },
        };
        if cfg.dev_no_auth {
            tracing::warn!(
                "AUTHENTICATION IS OFF (--dev-no-auth): anyone who can reach {} is an admin",
                cfg.listen
            );
        } else {
            crate::services::access::bootstrap_keys(&*store, &cfg.given_keys).await?;
        }
        let follower = state.executions.follow_store(stopped_for_refresh.clone());
        let mut others = vec![reaper, notifier_task, scheduler];
        others.extend(follower);
        others.extend(refresher);
        others.extend(documents);
        Ok(Self {
            executions: state.executions.clone(),
            router: api::router(state, cfg.body_limit),
            stop,
            audit_writer,
            pool,
            others,
        })
    }

    /// Stops in order: the API's audit records are written, running runbooks get
    /// [`DRAIN_TIMEOUT`] to end, then the background tasks stop.
    pub async fn stop(self) {
        // The router (and every audit sink) is gone: the writer stores what is queued and ends.
        drop(self.router);
        if tokio::time::timeout(Duration::from_secs(10), self.audit_writer)
            .await
            .is_err()
        {
            tracing::warn!("audit records still queued after 10 s");
        }
        tracing::info!("stopping: waiting for running runbooks");
        let _ = self.stop.send(true);
        if tokio::time::timeout(DRAIN_TIMEOUT, self.pool)
            .await
            .is_err()
        {
            tracing::warn!(
                "runbooks still running after {} s; they will be marked lost at the next start",
                DRAIN_TIMEOUT.as_secs()
            );
        }
        // Undelivered notifications stay in the outbox for the next start (or another
        // orchestrator).
        for task in self.others {
            let _ = task.await;
        }
        tracing::info!("stopped");
    }
}

/// The notification routing: the `--notify-routes` file when given (stored, replacing API
/// changes), else what the API stored last, else none (the default team only).
async fn load_notify_routes(
    cfg: &ServeConfig,
    store: &dyn Store,
    catalog: &Catalog,
) -> anyhow::Result<NotifyRoutes> {
    let (routes, _) =
        documents::load::<NotifyRoutes>(cfg.notify.routes_file.as_deref(), store, catalog).await?;
    for (name, team) in &routes.teams {
        // Say at start which referenced secrets are missing (delivery would fail).
        let refs = team.opsgenie.iter().filter_map(|o| o.key.as_ref()).chain(
            team.slack
                .iter()
                .flat_map(|s| s.token.iter().chain(s.webhook.iter())),
        );
        for r in refs {
            if let Err(e) = r.resolve() {
                tracing::warn!(team = %name, error = %e, "a notification secret is not available");
            }
        }
    }
    Ok(routes)
}
