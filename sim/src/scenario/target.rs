//! Fault targets, named in the scenario and resolved to a host when the fault fires.

use std::fmt;

/// What a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// The client that believes it holds the lock when the fault fires.
    LockHolder,
    /// The established leader server when the fault fires.
    LeaderServer,
    /// Workload client `N` (1-based, across all workloads in file order).
    Client(usize),
    /// Server `N` (1-based, host `zkN`).
    Server(u8),
}

impl Target {
    /// Parses `lock-holder`, `leader-server`, `client:N` or `server:N`.
    pub fn parse(s: &str) -> Result<Target, String> {
        match s {
            "lock-holder" => return Ok(Target::LockHolder),
            "leader-server" => return Ok(Target::LeaderServer),
            _ => {}
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
        Err(format!("unknown target {s:?}"))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::LockHolder => f.write_str("lock-holder"),
            Target::LeaderServer => f.write_str("leader-server"),
            Target::Client(n) => write!(f, "client:{n}"),
            Target::Server(n) => write!(f, "server:{n}"),
        }
    }
}
