//! Fencing, judged on the history (the fenced resource's own bookkeeping is not the oracle:
//! it enforces "never a lower token" by construction, so re-checking that rule could never
//! fail). What a user of a fenced lock relies on:
//!
//! - **A stale write is rejected**: a write by a holder after someone else acquired the same
//!   lock later than it did (and wrote, which the lock contender does in the same instant as
//!   it acquires) is rejected. An acquisition in a session the ensemble had already expired
//!   does not count: ZooKeeper lets a client on a lagging follower see its node come first
//!   after its session is gone (the follower has not applied the close yet), and such an
//!   acquisition supersedes nobody (its own writes are what fencing must reject). That holder is normally tainted (see [`super`]: paused, or
//!   killed, since its belief began); an untainted one is also a mutual-exclusion violation.
//!   A lock that hands every holder the same token breaks this: the stale holder's equal
//!   token is accepted.
//! - **A legitimate write is accepted**: a write by a holder that is not tainted and not
//!   stale is accepted by the resource. (A higher token accepted from a holder of *another*
//!   lock path excuses a rejection: the simulation has one resource for every path.)
//! - **Tokens increase**: the token of each new acquisition of a lock (clients on one path,
//!   [`Event::Acquired`]) is strictly greater than every earlier holder's. A tainted
//!   acquirer (a paused application recording an acquisition it made before its pause) is a
//!   [`Finding`] instead.
//!
//! A holder's belief runs from [`Event::Acquired`] to [`Event::Released`], [`Event::Lost`],
//! a crash or a restart of its host.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{workload_of, Finding, Taint, Violation};
use crate::history::{Event, Record};
use crate::scenario::Scenario;

const CHECKER: &str = "fencing";

fn ends(e: &Event) -> bool {
    matches!(e, Event::Released { .. } | Event::Lost { .. })
}

/// One holder's open belief.
#[derive(Debug, Clone, Copy)]
struct Hold {
    /// Its position in the log (acquisitions are ordered by it).
    index: usize,
    at: Duration,
}

/// The fencing violations and findings in `records` of a run of `scenario`.
pub fn check(records: &[Record], scenario: &Scenario) -> (Vec<Violation>, Vec<Finding>) {
    let paths = workload_of(scenario);
    let path_of = |c: usize| paths.get(&c).map_or("", |w| w.path.as_str());
    let mut taint = Taint::default();
    // Open beliefs per client.
    let mut holding: BTreeMap<usize, Hold> = BTreeMap::new();
    // Per path: every acquisition so far (log index, client, token, whether made in a
    // session the ensemble had expired), in log order.
    let mut acquisitions: BTreeMap<&str, Vec<(usize, usize, i64, bool)>> = BTreeMap::new();
    // Per path: the last index at which each client wrote.
    let mut last_write: BTreeMap<&str, BTreeMap<usize, usize>> = BTreeMap::new();
    // Per path: the highest token accepted.
    let mut accepted: BTreeMap<&str, i64> = BTreeMap::new();
    let mut out = Vec::new();
    let mut found = Vec::new();
    for (i, r) in records.iter().enumerate() {
        taint.feed(r, ends);
        match r.event {
            Event::Acquired { client, token } => {
                let path = path_of(client);
                let earlier = acquisitions.entry(path).or_default();
                if let Some(&(_, by, high, _)) = earlier
                    .iter()
                    .filter(|(_, _, t, _)| *t >= token)
                    .max_by_key(|(_, _, t, _)| *t)
                {
                    let message = format!(
                        "c{client} acquired {path} with token {token:#x}, not above c{by}'s \
                         earlier token {high:#x}"
                    );
                    match taint.since(client) {
                        Some(t) => found.push(Finding {
                            checker: CHECKER,
                            at: r.at,
                            message: format!(
                                "{message}; c{client} was stale (paused, or its session killed or expired) from {:.6} s",
                                t.as_secs_f64()
                            ),
                        }),
                        None => out.push(Violation {
                            checker: CHECKER,
                            at: r.at,
                            message,
                        }),
                    }
                }
                earlier.push((i, client, token, taint.session_expired(client)));
                holding.insert(client, Hold { index: i, at: r.at });
            }
            Event::Released { client }
            | Event::Lost { client }
            | Event::Crashed { client }
            | Event::Started { client, .. } => {
                holding.remove(&client);
            }
            Event::Write {
                client,
                token,
                accepted: ok,
            } => {
                let path = path_of(client);
                let hold = holding.get(&client).copied();
                let tainted = taint.since(client);
                if ok {
                    let high = accepted.entry(path).or_insert(token);
                    *high = (*high).max(token);
                }
                let writes = last_write.entry(path).or_default();
                // Stale: someone else acquired after this holder did, and wrote since.
                let mine = hold.map_or(0, |h| h.index);
                let later = acquisitions.get(path).and_then(|a| {
                    a.iter().copied().find(|&(j, other, _, dead)| {
                        j > mine
                            && other != client
                            && !dead
                            && writes.get(&other).is_some_and(|&w| w >= j)
                    })
                });
                match (ok, later) {
                    (true, Some((j, other, other_token, _))) => {
                        let why = tainted.map_or(String::new(), |t| {
                            format!(" (paused or killed at {:.6} s)", t.as_secs_f64())
                        });
                        out.push(Violation {
                            checker: CHECKER,
                            at: r.at,
                            message: format!(
                                "the resource accepted c{client}'s stale write with token \
                                 {token:#x}{why}, after c{other} acquired {path} at {:.6} s \
                                 with token {other_token:#x} and wrote",
                                records[j].at.as_secs_f64()
                            ),
                        });
                    }
                    (false, None) if tainted.is_none() && hold.is_some() => {
                        // Excused only by a higher token accepted on another path.
                        let elsewhere =
                            accepted.iter().any(|(p, high)| *p != path && *high > token);
                        if !elsewhere {
                            out.push(Violation {
                                checker: CHECKER,
                                at: r.at,
                                message: format!(
                                    "the resource rejected c{client}'s write with token \
                                     {token:#x}, but c{client} has held {path} since {:.6} s, \
                                     nobody acquired it since, and c{client} was neither \
                                     paused nor killed",
                                    hold.map_or(0.0, |h| h.at.as_secs_f64())
                                ),
                            });
                        }
                    }
                    _ => {}
                }
                writes.insert(client, i);
            }
            _ => {}
        }
    }
    (out, found)
}
