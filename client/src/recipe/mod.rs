//! Coordination recipes built on the client, one per file: they run on the caller's tasks
//! (never on the session task), survive connection loss, and use protected names so a lost
//! reply never leaves an orphan node.

pub mod barrier;
pub mod children_watch;
pub mod data_watch;
pub mod double_barrier;
pub mod leader_latch;
pub mod lock;
pub mod party;
mod protected;

pub use barrier::Barrier;
pub use children_watch::ChildrenWatch;
pub use data_watch::{DataWatch, NodeValue};
pub use double_barrier::DoubleBarrier;
pub use leader_latch::{LeaderEvent, LeaderLatch};
pub use lock::{ConnectionPolicy, Lock, LockGuard, LockNaming};
pub use party::{Party, ShallowParty};
