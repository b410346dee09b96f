//! zkit-sim: a simulated ZooKeeper ensemble and fault-injection harness for the zkit client.
//!
//! - [`server`]: an in-memory ZooKeeper server speaking the real wire protocol.
//! - [`net`]: listeners (tokio TCP or turmoil) and the turmoil connector.
//!
//! The ensemble, the scenario runner and the checkers land here next; see `ARCHITECTURE` in
//! the repository's docs and the README for what exists today.
#![warn(missing_docs)]

pub mod net;
pub mod ensemble;
pub mod server;

/// The version of this crate, printed by the CLI.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
