//! Watch completeness and order for registers: a one-shot data watch fires for the first
//! change after the read that set it, and the client sees that notification before it sees
//! the data after the change.
//!
//! ZooKeeper's promise: a watch event for a change reaches the client before the client can
//! see the data after that change (the server queues the notification on the connection
//! before any later reply); a one-shot data watch set by a read fires once, for the first
//! change after it; across a reconnect within the session it is restored (SetWatches with the
//! last zxid the client saw: a server whose node changed since fires it at once), so a change
//! made while the client was disconnected is still notified. Only the session's end voids it.
//!
//! ZooKeeper 3.8 notifications carry no zxid, so the judgement is made from what the
//! client's own reads prove. Every read of a [`register`](crate::workload::register) client
//! leaves a watch ([`Event::RegisterWatchSet`], after the read's [`Event::RegisterReturn`]),
//! and the client records each watch that fired ([`Event::RegisterWatchFired`]) before it
//! records its next return. Per client, for each watch set by a read that returned state
//! `s1` (value and version) in session `S`:
//!
//! - if a later read of the same client returns, in session `S`, a state other than `s1`
//!   (another version or value, or no node), the register changed after the watch was set,
//!   on every server the client read from since; so the watch must have fired before that
//!   read's return was recorded. If it had not, the notification was missed (lost, not
//!   restored after a reconnect, or delivered after the data): a [`Violation`].
//! - a watch that fired with a session event (`EventType::None`), or whose client is seen in
//!   another session, is void: nothing is judged for it.
//!
//! What is not judged, because the history cannot prove it: a watch firing with no change
//! seen (the client may have moved to a server ahead of the one it read from; notifications
//! carry no zxid), and changes seen only through the client's own writes. A one-shot watch
//! cannot fire twice by construction (the client resolves it once).

use std::collections::BTreeMap;
use std::time::Duration;

use zkit::EventType;

use super::{groups, Violation};
use crate::history::{Event, Record};
use crate::register::RegisterResult;
use crate::scenario::{Role, Scenario};

const CHECKER: &str = "watches";

/// A watch held, as the checker tracks it.
#[derive(Debug)]
struct Armed<'r> {
    session: i64,
    /// The state the read that set it returned.
    state: &'r (String, i32),
    /// When that read returned.
    at: Duration,
    /// When it fired (with a node event), if it has.
    fired: Option<(Duration, EventType)>,
}

/// What the history says about one group's watches.
#[derive(Debug, Default)]
struct Judged {
    violations: Vec<Violation>,
    /// Watches that fired before a read that saw the change: notifications judged in time.
    confirmed: usize,
}

fn show(state: Option<&(String, i32)>) -> String {
    match state {
        Some((value, version)) => format!("{value:?} version {version}"),
        None => "no node".to_owned(),
    }
}

/// A read's result awaiting the watch it set: (session, the state it saw, when).
type SeenRead<'a> = (i64, &'a (String, i32), Duration);

/// Judges the watches of `clients` (on register `path`) in `records`.
fn judge(records: &[Record], path: &str, clients: &[usize]) -> Judged {
    let mut out = Judged::default();
    // The last read results, by (client, op id), until a watch set by them is recorded.
    let mut reads: BTreeMap<(usize, u64), SeenRead<'_>> = BTreeMap::new();
    let mut armed: BTreeMap<(usize, u64), Armed<'_>> = BTreeMap::new();
    for r in records {
        match &r.event {
            Event::RegisterReturn {
                client,
                op_id,
                session,
                result,
            } if clients.contains(client) => {
                let seen = match result {
                    RegisterResult::Read(s) => Some(s.as_ref()),
                    _ => None,
                };
                let mine: Vec<u64> = armed
                    .range((*client, 0)..=(*client, u64::MAX))
                    .map(|(&(_, read), _)| read)
                    .collect();
                for read in mine {
                    let Some(w) = armed.get(&(*client, read)) else {
                        continue;
                    };
                    if w.session != *session || *session == 0 {
                        // Another session (or none): the watch is void.
                        armed.remove(&(*client, read));
                        continue;
                    }
                    let Some(now) = seen else { continue };
                    if now == Some(w.state) {
                        continue;
                    }
                    match w.fired {
                        Some(_) => out.confirmed += 1,
                        None => out.violations.push(Violation {
                            checker: CHECKER,
                            at: r.at,
                            message: format!(
                                "c{client}'s data watch on register {path}, set by its read \
                                 {read:#x} that returned {} at {:.6} s, had not fired when its \
                                 read {op_id:#x} returned {} at {:.6} s in the same session \
                                 {session:#x}: the change was not notified before its data \
                                 was seen",
                                show(Some(w.state)),
                                w.at.as_secs_f64(),
                                show(now),
                                r.at.as_secs_f64()
                            ),
                        }),
                    }
                    armed.remove(&(*client, read));
                }
                if let RegisterResult::Read(Some(state)) = result {
                    reads.insert((*client, *op_id), (*session, state, r.at));
                }
            }
            Event::RegisterWatchSet { client, read, .. } if clients.contains(client) => {
                if let Some((session, state, at)) = reads.remove(&(*client, *read)) {
                    if session != 0 {
                        armed.insert(
                            (*client, *read),
                            Armed {
                                session,
                                state,
                                at,
                                fired: None,
                            },
                        );
                    }
                }
            }
            Event::RegisterWatchFired {
                client,
                read,
                event,
                ..
            } if clients.contains(client) => {
                if *event == EventType::None {
                    armed.remove(&(*client, *read));
                } else if let Some(w) = armed.get_mut(&(*client, *read)) {
                    w.fired.get_or_insert((r.at, *event));
                }
            }
            _ => {}
        }
    }
    out
}

/// The watch violations in `records`: a change a client's read saw that its data watch,
/// set by an earlier read in the same session, had not announced first.
pub fn check(records: &[Record], scenario: &Scenario) -> Vec<Violation> {
    let mut out = Vec::new();
    for (path, (_, clients)) in groups(scenario, &[Role::Register]) {
        out.extend(judge(records, path, &clients).violations);
    }
    out
}

/// Adds the register watches' coverage counts to `c`: watches set, notifications (node
/// events) seen, and notifications judged in time (a later read of the session saw the
/// change they announced).
pub(crate) fn coverage(records: &[Record], c: &mut BTreeMap<&'static str, usize>) {
    // Every client that set a watch (the judgement is per client; the path only names it).
    let mut clients: Vec<usize> = Vec::new();
    for r in records {
        match &r.event {
            Event::RegisterWatchSet { client, .. } => {
                *c.entry("register watches set").or_default() += 1;
                if !clients.contains(client) {
                    clients.push(*client);
                }
            }
            Event::RegisterWatchFired { event, .. } if *event != EventType::None => {
                *c.entry("register watch notifications").or_default() += 1;
            }
            _ => {}
        }
    }
    let confirmed = judge(records, "", &clients).confirmed;
    if confirmed > 0 {
        *c.entry("register watch notifications judged").or_default() += confirmed;
    }
}
