//! Per-session order of register reads: within one session, a client never sees the
//! register go back.
//!
//! ZooKeeper serves reads from whichever server the client is connected to, so a read
//! without a `sync` may be stale; but a session never sees an older state than it has seen
//! already, even when it moves to another server (the server refuses a client whose last
//! seen zxid is ahead of its own tree), and it sees its own writes (requests of a session
//! are handled in order). So, per client and session, in the order the results came back
//! ([`Event::RegisterReturn`], which names the session):
//!
//! - **Monotonic reads**: a read (synced or local) never returns a lower version than an
//!   earlier read of the session returned;
//! - **Read your writes**: nor a lower version than a write or compare-and-set of the
//!   session was acknowledged with.
//!
//! Across sessions (a crash, an expiry) nothing is promised, and nothing is checked.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{groups, Violation};
use crate::history::{Event, Record};
use crate::register::RegisterResult;
use crate::scenario::{Role, Scenario};

/// The monotonic-read violations in `records`.
pub fn check(records: &[Record], scenario: &Scenario) -> Vec<Violation> {
    let mut out = Vec::new();
    for (path, (_, clients)) in groups(scenario, &[Role::Register]) {
        // Per (client, session): the highest version seen, when, and how (read or write).
        let mut seen: BTreeMap<(usize, i64), (i32, Duration, &'static str)> = BTreeMap::new();
        for r in records {
            let Event::RegisterReturn {
                client,
                session,
                result,
                ..
            } = &r.event
            else {
                continue;
            };
            if !clients.contains(client) || *session == 0 {
                continue;
            }
            let (version, how) = match result {
                RegisterResult::Read(Some((_, v))) => (*v, "read"),
                RegisterResult::Written { version } => (*version, "wrote"),
                _ => continue,
            };
            let key = (*client, *session);
            match seen.get(&key) {
                Some(&(high, at, high_how)) if how == "read" && version < high => {
                    out.push(Violation {
                        checker: "monotonic-reads",
                        at: r.at,
                        message: format!(
                            "c{client} read register {path} at version {version} in session \
                             {session:#x}, after it {high_how} version {high} in that session \
                             at {:.6} s",
                            at.as_secs_f64()
                        ),
                    });
                }
                Some(&(high, ..)) if version <= high => {}
                _ => {
                    seen.insert(key, (version, r.at, how));
                }
            }
        }
    }
    out
}
