//! Coordination recipes built on the client, one per file: they run on the caller's tasks
//! (never on the session task), survive connection loss, and use protected names so a lost
//! reply never leaves an orphan node.

pub mod barrier;
pub mod children_watch;
pub mod counter;
pub mod data_watch;
pub mod double_barrier;
mod follow;
pub mod leader_latch;
pub mod leader_selector;
pub mod lease;
pub mod lock;
pub mod locking_queue;
pub mod multi_lock;
mod participant;
pub mod partitioner;
pub mod party;
mod policy;
mod protected;
pub mod queue;
pub mod rwlock;
pub mod semaphore;
pub mod tree_cache;

pub use barrier::Barrier;
pub use children_watch::ChildrenWatch;
pub use counter::{Counter, CounterEvent, CounterValue, CounterWatch};
pub use data_watch::{DataWatch, NodeValue};
pub use double_barrier::DoubleBarrier;
pub use leader_latch::{CloseMode, LeaderEvent, LeaderLatch};
pub use leader_selector::{LeaderSelector, LeadershipContext, Participant, SelectorBuilder};
pub use lease::{LeaseHolder, NonBlockingLease};
pub use lock::{ConnectionPolicy, Lock, LockGuard, LockNaming};
pub use locking_queue::{LockedEntry, LockingQueue};
pub use multi_lock::{MultiLock, MultiLockGuard};
pub use partitioner::{PartitionState, SetPartitioner};
pub use party::{Party, ShallowParty};
pub use queue::Queue;
pub use rwlock::{Access, ReadWriteLock, SideLock};
pub use semaphore::{Lease, Semaphore};
pub use tree_cache::{TreeCache, TreeEvent};
