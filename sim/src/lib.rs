//! zkit-sim: a simulated ZooKeeper ensemble and fault-injection harness for the zkit client.
//!
//! The simulated server, the ensemble, the scenario runner and the checkers land here; see
//! `ARCHITECTURE` in the repository's docs and the README for what exists today.
#![warn(missing_docs)]

/// The version of this crate, printed by the CLI.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
