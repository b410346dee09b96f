//! Leases: at no instant do two clients believe they hold one lease (lease clients on one
//! path).
//!
//! A holder's belief runs from each [`Event::LeaseHeld`] (a try that obtained or renewed the
//! lease) to the `until` it carries (the instant the try was called plus the lease's length),
//! and a renewal extends it. A lease lives on the server's clock, not on a session, so no
//! pause, lost connection or expired session ends it early, and none excuses an overlap:
//! every overlap is a violation. A crash or restart of the holder's host ends its belief.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{groups, Violation};
use crate::history::{Event, Record};
use crate::scenario::{Role, Scenario};

/// The lease violations in `records`.
pub fn check(records: &[Record], scenario: &Scenario) -> Vec<Violation> {
    let mut out = Vec::new();
    for (path, (_, clients)) in groups(scenario, &[Role::Lease]) {
        // client -> (believes since, until)
        let mut held: BTreeMap<usize, (Duration, Duration)> = BTreeMap::new();
        for r in records {
            let Some(c) = r.event.client() else { continue };
            if !clients.contains(&c) {
                continue;
            }
            match r.event {
                Event::LeaseHeld { client, until } => {
                    held.retain(|_, (_, u)| *u > r.at);
                    for (other, (since, u)) in &held {
                        if *other != client {
                            out.push(Violation {
                                checker: "lease",
                                at: r.at,
                                message: format!(
                                    "c{client} obtained the lease {path} while c{other} has \
                                     believed it holds it since {:.6} s, until {:.6} s",
                                    since.as_secs_f64(),
                                    u.as_secs_f64()
                                ),
                            });
                        }
                    }
                    let since = match held.get(&client) {
                        Some((since, _)) => *since,
                        None => r.at,
                    };
                    held.insert(client, (since, until));
                }
                Event::Crashed { client } | Event::Started { client, .. } => {
                    held.remove(&client);
                }
                _ => {}
            }
        }
    }
    out
}

/// Adds the leases' coverage counts to `c`: tries that obtained the lease, and handoffs (a
/// lease obtained by another client than the last holder).
pub(crate) fn coverage(records: &[Record], c: &mut BTreeMap<&'static str, usize>) {
    let mut last = None;
    for r in records {
        if let Event::LeaseHeld { client, .. } = r.event {
            *c.entry("lease holds").or_default() += 1;
            if last.is_some_and(|l| l != client) {
                *c.entry("lease handoffs").or_default() += 1;
            }
            last = Some(client);
        }
    }
}
