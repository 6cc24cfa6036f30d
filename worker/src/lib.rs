//! The worker side of the engine: lease jobs, resolve runbooks, run them in a sandbox,
//! report outcomes. Used in process by `cloudo serve` and by the standalone `cloudo-worker`
//! (`command`), which builds without the HTTP server.

pub mod access;
pub mod command;
pub mod http;
pub mod lazy_client;
pub mod logging;
pub mod metrics;
pub mod output;
pub mod pool;
pub mod protocol;
pub mod reporter;
pub mod runbooks;
pub mod sandbox;
pub mod secrets;
mod small_http;

pub use pool::{PoolConfig, PoolParts};
pub use reporter::{ReportError, Reporter, RunRef, Start};
pub use runbooks::{
    GitConfig, GitRunbooks, LocalRunbooks, ResolvedRunbook, RunbookError, RunbookFile,
    RunbookSource, SourceStatus,
};
pub use sandbox::{
    Choice, ResolvedLimits, RunOutcome, RunSpec, Sandbox, SandboxError, SandboxOptions, Sandboxes,
};
