//! The `[[workload]]` entries: groups of identical clients, each running one recipe role.
//!
//! ```toml
//! [[workload]]
//! role = "lock"          # see Role (or a user role registered with the test harness)
//! count = 5
//! path = "/locks/a"
//! hold_ms = [50, 300]    # how long a holder holds (or a leader leads, a member stays)
//! leases = 2             # semaphore only: how many holders at once
//! allow_read_only = true # the clients accept read-only servers (default false)
//! ```

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{Ctx, ScenarioError};

/// What a group of clients does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Contend for an exclusive lock, hold it, write to the fenced resource, release.
    Lock,
    /// Take a read-write lock's read or write side at random.
    Rwlock,
    /// Take one of `leases` semaphore leases, hold it, release.
    Semaphore,
    /// Run for leadership with a leader latch, lead for a while, step down, run again.
    LeaderLatch,
    /// Run for leadership with a leader selector (leadership ends when the callback returns).
    LeaderSelector,
    /// Join a group (party), stay a while, leave.
    Party,
    /// Enter a double barrier of `count` members, work, leave.
    DoubleBarrier,
    /// Write numbered configuration values to `path`.
    ConfigWriter,
    /// Watch `path` and report every value seen.
    ConfigWatcher,
    /// Plain acknowledged writes (sequential creates) under `path`.
    Writer,
    /// Add 1 to a shared counter, again and again; read it now and then.
    Counter,
    /// Put unique items into a queue.
    QueueProducer,
    /// Take items from a queue.
    QueueConsumer,
    /// Put unique items into a locking queue.
    LockingQueueProducer,
    /// Take, work on and consume items of a locking queue.
    LockingQueueConsumer,
    /// Take a time-limited lease (`NonBlockingLease`), renew it for a while, let it run out.
    Lease,
    /// Join a set partitioner, own a share of its items for a while, leave.
    Partitioner,
    /// Take a few of the locks under `path` at once with a multi-lock, hold, release.
    MultiLock,
    /// Create, set and delete nodes of its own under `path`.
    TreeWriter,
    /// Mirror the tree under `path` with a tree cache.
    TreeCache,
    /// Raise a (simple) barrier, hold it up for a while, remove it.
    BarrierKeeper,
    /// Wait at a (simple) barrier until it is removed.
    BarrierWaiter,
    /// Read, write and compare-and-set one znode used as a register (checked for
    /// linearizability).
    Register,
    /// A role the scenario's user registered by this name (the test harness,
    /// [`crate::harness::Check::role`], runs the user's code for it). Any user role may
    /// record holding a lock or leading: `lock-holder` and `leader-candidate` can resolve.
    User(&'static str),
}

/// Every built-in role, in declaration order.
pub const BUILTIN_ROLES: [Role; 23] = [
    Role::Lock,
    Role::Rwlock,
    Role::Semaphore,
    Role::LeaderLatch,
    Role::LeaderSelector,
    Role::Party,
    Role::DoubleBarrier,
    Role::ConfigWriter,
    Role::ConfigWatcher,
    Role::Writer,
    Role::Counter,
    Role::QueueProducer,
    Role::QueueConsumer,
    Role::LockingQueueProducer,
    Role::LockingQueueConsumer,
    Role::Lease,
    Role::Partitioner,
    Role::MultiLock,
    Role::TreeWriter,
    Role::TreeCache,
    Role::BarrierKeeper,
    Role::BarrierWaiter,
    Role::Register,
];

/// The names user roles were made with, each stored once for the life of the process (a
/// [`Role`] stays `Copy`; the set is bounded by the distinct names a process registers).
static USER_ROLE_NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

impl Role {
    /// The role's name in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Role::Lock => "lock",
            Role::Rwlock => "rwlock",
            Role::Semaphore => "semaphore",
            Role::LeaderLatch => "leader-latch",
            Role::LeaderSelector => "leader-selector",
            Role::Party => "party",
            Role::DoubleBarrier => "double-barrier",
            Role::ConfigWriter => "config-writer",
            Role::ConfigWatcher => "config-watcher",
            Role::Writer => "writer",
            Role::Counter => "counter",
            Role::QueueProducer => "queue-producer",
            Role::QueueConsumer => "queue-consumer",
            Role::LockingQueueProducer => "locking-queue-producer",
            Role::LockingQueueConsumer => "locking-queue-consumer",
            Role::Lease => "lease",
            Role::Partitioner => "partitioner",
            Role::MultiLock => "multi-lock",
            Role::TreeWriter => "tree-writer",
            Role::TreeCache => "tree-cache",
            Role::BarrierKeeper => "barrier-keeper",
            Role::BarrierWaiter => "barrier-waiter",
            Role::Register => "register",
            Role::User(name) => name,
        }
    }

    /// The built-in role named `name` in scenario files, if any.
    pub fn builtin(name: &str) -> Option<Role> {
        BUILTIN_ROLES.into_iter().find(|r| r.name() == name)
    }

    /// The user role named `name` (see [`Role::User`]).
    pub fn user(name: &str) -> Role {
        let mut names = USER_ROLE_NAMES
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(&stored) = names.get(name) {
            return Role::User(stored);
        }
        let stored: &'static str = Box::leak(name.to_owned().into_boxed_str());
        names.insert(stored);
        Role::User(stored)
    }

    /// The role named `name`: a built-in one, else a user role among `user_roles`.
    pub fn named(name: &str, user_roles: &[&str]) -> Option<Role> {
        Role::builtin(name).or_else(|| user_roles.contains(&name).then(|| Role::user(name)))
    }

    /// Whether this is a user role.
    pub fn is_user(self) -> bool {
        matches!(self, Role::User(_))
    }

    /// Whether clients of this role hold something exclusive or limited (a lock, a side of
    /// a read-write lock, a semaphore lease, a multi-lock, a partition share): `lock-holder`
    /// can resolve.
    pub fn holds_lock(self) -> bool {
        matches!(
            self,
            Role::Lock
                | Role::Rwlock
                | Role::Semaphore
                | Role::MultiLock
                | Role::Partitioner
                | Role::User(_)
        )
    }

    /// Whether clients of this role run for leadership (`leader-candidate` can resolve).
    pub fn leads(self) -> bool {
        matches!(
            self,
            Role::LeaderLatch | Role::LeaderSelector | Role::User(_)
        )
    }
}

/// A group of identical clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// What they do.
    pub role: Role,
    /// How many clients.
    pub count: usize,
    /// The recipe's ZooKeeper path.
    pub path: String,
    /// How long a holder holds (a leader leads, a member stays), drawn uniformly from this
    /// range (inclusive).
    pub hold: (Duration, Duration),
    /// Semaphore leases (1 for every other role).
    pub leases: usize,
    /// Whether the clients accept read-only servers (`Builder::allow_read_only`, the Java
    /// client's `canBeReadOnly`): a member without quorum serves them read-only when the
    /// ensemble runs with `read_only = true`.
    pub allow_read_only: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkload {
    role: Spanned<String>,
    count: Spanned<u64>,
    path: Spanned<String>,
    // Signed, so a negative bound gets its own error rather than serde's.
    hold_ms: Option<Spanned<[i64; 2]>>,
    leases: Option<Spanned<u64>>,
    allow_read_only: Option<Spanned<bool>>,
}

/// Checks one raw workload.
pub(super) fn workload(ctx: &Ctx<'_>, w: RawWorkload) -> Result<Workload, ScenarioError> {
    let name = w.role.get_ref();
    let Some(role) = Role::named(name, ctx.user_roles) else {
        let builtin: Vec<&str> = BUILTIN_ROLES.iter().map(|r| r.name()).collect();
        let user = if ctx.user_roles.is_empty() {
            "none registered".to_owned()
        } else {
            ctx.user_roles.join(", ")
        };
        return Err(ctx.err(
            w.role.span(),
            format!("unknown role {name:?}"),
            &format!(
                "use a built-in role ({}) or a user role registered with the test harness \
                 ({user})",
                builtin.join(", ")
            ),
        ));
    };
    let count = *w.count.get_ref();
    if !(1..=50).contains(&count) {
        return Err(ctx.err(
            w.count.span(),
            format!("count = {count} is out of range"),
            "use 1 to 50 clients",
        ));
    }
    let path = w.path.get_ref();
    if zkit::path::validate_path(path).is_err() || path == "/" {
        return Err(ctx.err(
            w.path.span(),
            format!("path {path:?} is not a ZooKeeper path a recipe can use"),
            "an absolute path like \"/locks/a\"",
        ));
    }
    let hold = match &w.hold_ms {
        Some(h) => {
            let [lo, hi] = *h.get_ref();
            if lo < 0 || hi < 0 {
                return Err(ctx.err(
                    h.span(),
                    format!("hold_ms = [{lo}, {hi}] has a negative duration"),
                    "write [min, max] milliseconds, both 0 or more",
                ));
            }
            if lo > hi {
                return Err(ctx.err(
                    h.span(),
                    format!("hold_ms = [{lo}, {hi}] is an empty range"),
                    "write [min, max] with min <= max",
                ));
            }
            if hi > 3_600_000 {
                return Err(ctx.err(
                    h.span(),
                    format!("hold_ms = [{lo}, {hi}] is longer than an hour"),
                    "use at most 3600000 milliseconds",
                ));
            }
            (
                Duration::from_millis(lo.unsigned_abs()),
                Duration::from_millis(hi.unsigned_abs()),
            )
        }
        None => (Duration::from_millis(50), Duration::from_millis(300)),
    };
    let leases = match &w.leases {
        Some(l) if role != Role::Semaphore => {
            return Err(ctx.err(
                l.span(),
                "leases only applies to a semaphore".to_owned(),
                "remove the key",
            ))
        }
        Some(l) if !(1..=50).contains(l.get_ref()) => {
            return Err(ctx.err(
                l.span(),
                format!("leases = {} is out of range", l.get_ref()),
                "use 1 to 50 leases",
            ))
        }
        Some(l) => *l.get_ref() as usize,
        None => 1,
    };
    Ok(Workload {
        role,
        count: count as usize,
        path: path.clone(),
        hold,
        leases,
        allow_read_only: w.allow_read_only.is_some_and(|r| *r.get_ref()),
    })
}
