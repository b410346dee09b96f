//! Lingering session: nobody acquires a lock while an earlier holder's node may still live in
//! a session that is still alive.
//!
//! A holder whose session the client gave up on (its own timer ran out, or a renewal took
//! over) may still have its lock node in that old session: ZooKeeper removes it only when the
//! session expires or is closed. A recipe that deletes such a node *from the new session*
//! hands the lock on while every other ephemeral of the old session (a "this holder is alive"
//! marker, say) still stands, which is what `Builder::delete_stale_recipe_nodes` opts into
//! and zkit does not do by default. This checker holds the harness's roles (none opts in) to
//! the safe default.
//!
//! A belief in session `S` (from [`Event::HeldIn`]) that ends by [`Event::Released`] while
//! the client is still in `S` is clean: the node went in `S`. One that ends (released or
//! lost) after the client moved on to another session, or by a crash, leaves `S`
//! *lingering* until the ensemble expires or closes it
//! ([`Event::SessionExpired`], [`Event::SessionClosed`]). A new exclusive acquisition on the
//! same lock path, in another session, while some `S` lingers is a violation. A belief that
//! ends while the client is still in `S` by `lost()` is not judged: whether its node went in
//! `S` is not in the history.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{workload_of, Violation};
use crate::history::{Event, Record};
use crate::scenario::Scenario;

const CHECKER: &str = "lingering-session";

/// A belief in progress: the session it holds in (once [`Event::HeldIn`] says).
#[derive(Debug, Clone, Copy)]
struct Hold {
    since: Duration,
    session: Option<i64>,
}

/// A session a holder left behind with, perhaps, its node.
#[derive(Debug, Clone, Copy)]
struct Left {
    client: usize,
    held_since: Duration,
    ended: Duration,
}

/// The lingering-session violations in `records`: exclusive acquisitions (lock, write lock)
/// while an earlier holder's session on the same path, left behind, is alive.
pub fn check(records: &[Record], scenario: &Scenario) -> Vec<Violation> {
    let paths = workload_of(scenario);
    let path_of = |c: usize| paths.get(&c).map_or("", |w| w.path.as_str());
    let mut current: BTreeMap<usize, i64> = BTreeMap::new();
    let mut holds: BTreeMap<usize, Hold> = BTreeMap::new();
    // Per lock path: sessions left behind, alive as far as the history says.
    let mut lingering: BTreeMap<&str, BTreeMap<i64, Left>> = BTreeMap::new();
    // Sessions the ensemble expired or closed (a renewing client closes the old one before
    // its belief learns of the renewal).
    let mut gone: BTreeSet<i64> = BTreeSet::new();
    let mut out = Vec::new();
    for r in records {
        match r.event {
            Event::Session { client, session } => {
                current.insert(client, session);
            }
            Event::SessionExpired { session } | Event::SessionClosed { session } => {
                gone.insert(session);
                for left in lingering.values_mut() {
                    left.remove(&session);
                }
            }
            Event::Acquired { client, .. } | Event::WriteAcquired { client, .. } => {
                holds.insert(
                    client,
                    Hold {
                        since: r.at,
                        session: None,
                    },
                );
            }
            Event::HeldIn { client, session } => {
                let Some(hold) = holds.get_mut(&client) else {
                    continue;
                };
                hold.session = Some(session);
                let path = path_of(client);
                if let Some((old, left)) = lingering
                    .get(path)
                    .and_then(|l| l.iter().find(|(s, _)| **s != session))
                {
                    out.push(Violation {
                        checker: CHECKER,
                        at: r.at,
                        message: format!(
                            "c{client} acquired in session {session:#x} while session {old:#x}, \
                             in which c{} held from {:.6} s until {:.6} s, is still alive: its \
                             node was deleted from another session, not expired with its own",
                            left.client,
                            left.held_since.as_secs_f64(),
                            left.ended.as_secs_f64()
                        ),
                    });
                }
            }
            Event::Released { client }
            | Event::Lost { client }
            | Event::Crashed { client }
            | Event::Started { client, .. } => {
                let Some(Hold {
                    since,
                    session: Some(session),
                }) = holds.remove(&client)
                else {
                    continue;
                };
                // Released in its own session: the node went with the release. A crashed
                // host deletes nothing: its node lingers whatever session it was in.
                let clean = matches!(r.event, Event::Released { .. } | Event::Lost { .. })
                    && current.get(&client) == Some(&session);
                if !clean && !gone.contains(&session) {
                    lingering.entry(path_of(client)).or_default().insert(
                        session,
                        Left {
                            client,
                            held_since: since,
                            ended: r.at,
                        },
                    );
                }
            }
            Event::ReadAcquired { client, .. } => {
                holds.remove(&client);
            }
            _ => {}
        }
    }
    out
}
