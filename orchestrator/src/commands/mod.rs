//! The commands of the `cloudo` and `cloudo-worker` binaries: their command line
//! (`cli.rs`), its resolution into a configuration (`config.rs`), and `serve` and `keys`
//! (`worker` is the worker crate's `command`).

pub mod backend;
pub mod cli;
pub mod client;
pub mod config;
pub mod keys;
pub mod serve;
