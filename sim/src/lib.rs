//! zkit-sim: a simulated ZooKeeper ensemble and fault-injection harness for the zkit client.
//!
//! - [`server`]: an in-memory ZooKeeper server speaking the real wire protocol.
//! - [`ensemble`]: N of those servers replicated inside turmoil (election, quorum commit,
//!   sync on join, crash recovery from a durable in-memory log) with invariant checks.
//! - [`net`]: listeners (tokio TCP or turmoil) and the turmoil connector.
//!
//! - [`scenario`]: the TOML scenario format and its parser;
//! - [`workload`]: what each simulated client host runs (real `zkit` clients);
//! - [`resource`]: the fenced resource the lock holders write to;
//! - [`register`]: the register role's operations, results and sequential model;
//! - [`history`]: the global event log keyed by simulated time, rendered to a trace;
//! - [`check`](mod@check): checkers over the history (mutual exclusion, fencing);
//! - [`runner`]: seed -> simulation -> verdict + coverage + trace; and, in real mode, one
//!   run of the same scenario against a real ensemble ([`runner::real`]);
//! - [`fidelity`]: real runs and simulated seeds side by side;
//! - [`shrink`]: a failing seed's fault schedule cut down to the faults that matter;
//! - [`timeline`]: a run drawn as a self-contained HTML page;
//! - [`harness`]: [`check()`], running a downstream crate's own async code as roles of a
//!   scenario over a seed budget, from its tests;
//! - [`real`]: real mode: fault proxies and a real ZooKeeper ensemble behind them.
#![warn(missing_docs)]

pub mod check;
pub mod ensemble;
pub mod fidelity;
pub mod harness;
pub mod history;
pub mod net;
pub mod real;
pub mod register;
pub mod resource;
pub mod runner;
pub mod scenario;
pub mod server;
pub mod shrink;
pub mod timeline;
pub mod workload;

pub use harness::check;

/// The version of this crate, printed by the CLI.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
