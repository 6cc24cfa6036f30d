//! The resilience suite (issue 21), through the real binaries: crashes and restarts under
//! load, a full disk, alert storms. Every scenario saves one row of the table `make chaos`
//! prints and keeps in docs/reliability.md, and fails when something was lost, duplicated,
//! stuck or left behind. `make test` runs the short version; `CHAOS=long` the long one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod azure;
#[path = "../common/mod.rs"]
mod common;
mod crash;
mod disk;
mod hostile;
mod http;
mod load;
mod report;
mod schema;
mod storms;
