//! Fault targets, named in the scenario and resolved to hosts when the fault fires.

use std::fmt;

use super::Role;

/// What a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// The client that believes it holds a lock when the fault fires (an exclusive lock, a
    /// side of a read-write lock, a semaphore lease, a multi-lock or a partition share).
    LockHolder,
    /// The client that believes it leads (leader latch or selector) when the fault fires.
    LeaderCandidate,
    /// The established leader server when the fault fires.
    LeaderServer,
    /// A follower server drawn from the run's fault stream.
    RandomFollower,
    /// Any server drawn from the run's fault stream.
    RandomServer,
    /// Any running client drawn from the run's fault stream.
    RandomClient,
    /// A lock contender queued behind the holder when the fault fires (a running client of
    /// a lock-holding role that does not hold), drawn from the run's fault stream.
    Waiter,
    /// Every server.
    Servers,
    /// A minority of the servers (the largest one), drawn from the run's fault stream.
    Minority,
    /// Workload client `N` (1-based, across all workloads in file order).
    Client(usize),
    /// Server `N` (1-based, host `zkN`).
    Server(u8),
    /// The server workload client `N` is connected to when the fault fires (a follower or
    /// the leader; `follower-of:N`), e.g. to push a client off the server it has read from
    /// and onto another, possibly lagging, one.
    FollowerOf(usize),
    /// A running client of a workload with this role (`role:NAME`, a built-in or a user
    /// role), drawn from the run's fault stream.
    Role(Role),
}

/// Every target name the parser accepts, for hints.
pub const TARGET_NAMES: &str = "\"lock-holder\", \"leader-candidate\", \"leader-server\", \
     \"random-follower\", \"random-server\", \"random-client\", \"waiter\", \"servers\", \
     \"minority\", \"client:N\", \"server:N\", \"follower-of:N\" (client N's server) or \
     \"role:NAME\" (a workload's role)";

impl Target {
    /// Parses one of [`TARGET_NAMES`].
    pub fn parse(s: &str) -> Result<Target, String> {
        let named = match s {
            "lock-holder" => Some(Target::LockHolder),
            "leader-candidate" => Some(Target::LeaderCandidate),
            "leader-server" => Some(Target::LeaderServer),
            "random-follower" => Some(Target::RandomFollower),
            "random-server" => Some(Target::RandomServer),
            "random-client" => Some(Target::RandomClient),
            "waiter" => Some(Target::Waiter),
            "servers" => Some(Target::Servers),
            "minority" => Some(Target::Minority),
            _ => None,
        };
        if let Some(t) = named {
            return Ok(t);
        }
        let number = |n: &str| n.parse::<usize>().ok().filter(|&n| n >= 1);
        if let Some(n) = s.strip_prefix("client:") {
            return number(n)
                .map(Target::Client)
                .ok_or_else(|| format!("bad client number in target {s:?}"));
        }
        if let Some(n) = s.strip_prefix("server:") {
            return number(n)
                .and_then(|n| u8::try_from(n).ok())
                .map(Target::Server)
                .ok_or_else(|| format!("bad server number in target {s:?}"));
        }
        if let Some(n) = s.strip_prefix("follower-of:") {
            return number(n)
                .map(Target::FollowerOf)
                .ok_or_else(|| format!("bad client number in target {s:?}"));
        }
        if let Some(name) = s.strip_prefix("role:").filter(|n| !n.is_empty()) {
            // A user role's name is checked against the scenario's workloads by the parser.
            return Ok(Target::Role(
                Role::builtin(name).unwrap_or_else(|| Role::user(name)),
            ));
        }
        Err(format!("unknown target {s:?}"))
    }

    /// Whether the target names client hosts (rather than servers).
    pub fn is_client(self) -> bool {
        matches!(
            self,
            Target::LockHolder
                | Target::LeaderCandidate
                | Target::RandomClient
                | Target::Waiter
                | Target::Client(_)
                | Target::Role(_)
        )
    }

    /// Whether the target names one server.
    pub fn is_server(self) -> bool {
        matches!(
            self,
            Target::LeaderServer
                | Target::RandomFollower
                | Target::RandomServer
                | Target::Server(_)
                | Target::FollowerOf(_)
        )
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::LockHolder => f.write_str("lock-holder"),
            Target::LeaderCandidate => f.write_str("leader-candidate"),
            Target::LeaderServer => f.write_str("leader-server"),
            Target::RandomFollower => f.write_str("random-follower"),
            Target::RandomServer => f.write_str("random-server"),
            Target::RandomClient => f.write_str("random-client"),
            Target::Waiter => f.write_str("waiter"),
            Target::Servers => f.write_str("servers"),
            Target::Minority => f.write_str("minority"),
            Target::Client(n) => write!(f, "client:{n}"),
            Target::Server(n) => write!(f, "server:{n}"),
            Target::FollowerOf(n) => write!(f, "follower-of:{n}"),
            Target::Role(r) => write!(f, "role:{}", r.name()),
        }
    }
}
