//! The commands of the `cloudo` and `cloudo-worker` binaries: their command line
//! (`cli.rs`), its resolution into a configuration (`config.rs`), and `serve`, `worker`,
//! `keys`.

pub mod backend;
pub mod cli;
pub mod config;
pub mod keys;
pub mod serve;
pub mod worker;
