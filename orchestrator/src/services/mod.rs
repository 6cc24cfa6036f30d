//! What the orchestrator does, behind the API: the execution hub (the one writer of
//! execution state, with its event stream), ingestion of alerts, the reaper, on-call
//! notifications, operator documents (routing rules, notification routes, schedules), the
//! scheduler and key access.

pub mod access;
pub mod documents;
pub mod executions;
pub mod ingest;
pub mod links;
pub mod metered;
pub mod notify;
pub mod reaper;
pub mod scheduler;
pub mod sessions;
pub mod telemetry;
pub mod view;
