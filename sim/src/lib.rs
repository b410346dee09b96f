//! zkit-sim: a simulated ZooKeeper ensemble and fault-injection harness for the zkit client.
//!
//! - [`server`]: an in-memory ZooKeeper server speaking the real wire protocol.
//! - [`ensemble`]: N of those servers replicated inside turmoil (election, quorum commit,
//!   sync on join, crash recovery from a durable in-memory log) with invariant checks.
//! - [`net`]: listeners (tokio TCP or turmoil) and the turmoil connector.
//!
//! The scenario runner and the recipe checkers land here next; see `ARCHITECTURE` in the
//! repository's docs and the README for what exists today.
#![warn(missing_docs)]

pub mod ensemble;
pub mod net;
pub mod server;

/// The version of this crate, printed by the CLI.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
