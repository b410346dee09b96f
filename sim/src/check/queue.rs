//! Queues: what is taken was put, nothing acknowledged is lost, and nothing is taken twice
//! where the recipe promises once.
//!
//! Producers record each acknowledged put with the instant it was called
//! ([`Event::QueuePut`]) and each put without a verdict ([`Event::QueuePutUncertain`]);
//! consumers record each item taken (a plain queue's get returned it, a locking queue's
//! consume of it returned true) with the instant their get was called
//! ([`Event::QueueTaken`]), and each failed get or consume ([`Event::QueueTakeFailed`]).
//! Items are unique strings. Producers and consumers on one path share a queue.
//!
//! - **Nothing made up**: every item taken was put (acknowledged or uncertain, at any time:
//!   a consumer may take an item before its producer hears back), or is the put its producer
//!   had in flight when its record stopped.
//! - **At most once**: no item is taken twice, except where the recipe does not promise
//!   once: an entry may be enqueued twice when a put's reply was lost (both queues), and a
//!   plain queue counts a delete whose reply was lost as a take even if another consumer took
//!   the entry. A connection lost within the put's span (its producer left `Connected`
//!   between the call and the acknowledgement) or, for a plain queue, within either take's
//!   span, excuses a duplicate; any other is a violation.
//! - **Nothing acknowledged lost**: every put acknowledged at least `liveness` before the end
//!   of the run, and at least `liveness` before the end after the last fault was undone, has
//!   been taken. A plain queue loses the entry a consumer was deleting when its get fails or
//!   its host crashes (taking is destructive); a locking queue gives entries back, but a
//!   consume may apply and its consumer crash (or fail) before it records it. So each failed
//!   take and each consumer crash excuses one missing item.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{end_of, groups, last_healed, workload_of, Violation};
use crate::history::{Event, Record};
use crate::scenario::{Role, Scenario};

fn violation(at: Duration, message: String) -> Violation {
    Violation {
        checker: "queue",
        at,
        message,
    }
}

/// Each client's connection states over time: (when, connected).
fn connection_states(records: &[Record]) -> BTreeMap<usize, Vec<(Duration, bool)>> {
    let mut out: BTreeMap<usize, Vec<(Duration, bool)>> = BTreeMap::new();
    for r in records {
        if let Event::State { client, state } = &r.event {
            out.entry(*client)
                .or_default()
                .push((r.at, state == "Connected"));
        }
    }
    out
}

/// Whether client `c` left `Connected` at any instant in `[from, to]`.
fn disconnected(
    states: &BTreeMap<usize, Vec<(Duration, bool)>>,
    c: usize,
    from: Duration,
    to: Duration,
) -> bool {
    states
        .get(&c)
        .is_some_and(|s| s.iter().any(|(at, up)| !up && *at >= from && *at <= to))
}

/// `(producer incarnation, n)` of an item `c{client}.{incarnation}.{n}`.
fn parse(item: &str) -> Option<(&str, u64)> {
    let (producer, n) = item.strip_prefix('c')?.rsplit_once('.')?;
    Some((producer, n.parse().ok()?))
}

/// Whether `item` is the put its producer had in flight when its record stopped (at the end
/// of the run, or when its host crashed): the one after the last it recorded, or its first.
fn in_flight(tried: &BTreeSet<&str>, item: &str) -> bool {
    let Some((producer, n)) = parse(item) else {
        return false;
    };
    let last = tried
        .iter()
        .filter_map(|t| parse(t))
        .filter(|(p, _)| *p == producer)
        .map(|(_, n)| n)
        .max();
    match last {
        Some(last) => n == last + 1,
        None => n == 0,
    }
}

/// The queue violations in `records`.
pub fn check(records: &[Record], scenario: &Scenario) -> Vec<Violation> {
    let mut out = Vec::new();
    let states = connection_states(records);
    let roles = workload_of(scenario);
    let end = end_of(records);
    let healed = last_healed(records).unwrap_or_default();
    for kind in [Role::QueueConsumer, Role::LockingQueueConsumer] {
        let producer = if kind == Role::QueueConsumer {
            Role::QueueProducer
        } else {
            Role::LockingQueueProducer
        };
        let locking = kind == Role::LockingQueueConsumer;
        for (path, (_, clients)) in groups(scenario, &[producer, kind]) {
            let consumers: Vec<usize> = clients
                .iter()
                .copied()
                .filter(|c| roles.get(c).is_some_and(|w| w.role == kind))
                .collect();
            // item -> (producer, put called, acknowledged at; None: uncertain)
            let mut put: BTreeMap<&str, (usize, Duration, Option<Duration>)> = BTreeMap::new();
            // item -> (consumer, take called, taken at)
            let mut taken: BTreeMap<&str, (usize, Duration, Duration)> = BTreeMap::new();
            let mut excuses = 0usize;
            // Every put first: a consumer may take an item before its producer hears the
            // put acknowledged.
            for r in records {
                match &r.event {
                    Event::QueuePut {
                        client,
                        item,
                        started,
                    } if clients.contains(client) => {
                        put.insert(item, (*client, *started, Some(r.at)));
                    }
                    Event::QueuePutUncertain { client, item } if clients.contains(client) => {
                        put.insert(item, (*client, r.at, None));
                    }
                    _ => {}
                }
            }
            let tried: BTreeSet<&str> = put.keys().copied().collect();
            for r in records {
                let Some(c) = r.event.client() else { continue };
                if !clients.contains(&c) {
                    continue;
                }
                match &r.event {
                    Event::QueueTakeFailed { .. } => excuses += 1,
                    Event::Crashed { client } if consumers.contains(client) => {
                        excuses += 1;
                    }
                    Event::QueueTaken {
                        client,
                        item,
                        started,
                    } => {
                        let Some(&(p, p_from, p_acked)) = put.get(item.as_str()) else {
                            if in_flight(&tried, item) {
                                // The put its producer had in flight when its record stopped.
                                taken.insert(item, (*client, *started, r.at));
                                continue;
                            }
                            out.push(violation(
                                r.at,
                                format!("c{client} took {item:?} from {path}, which nobody put"),
                            ));
                            continue;
                        };
                        if let Some((other, o_from, o_at)) =
                            taken.insert(item, (*client, *started, r.at))
                        {
                            let put_lost =
                                p_acked.is_none_or(|at| disconnected(&states, p, p_from, at));
                            let take_lost = !locking
                                && (disconnected(&states, *client, *started, r.at)
                                    || disconnected(&states, other, o_from, o_at));
                            if !put_lost && !take_lost {
                                out.push(violation(
                                    r.at,
                                    format!(
                                        "c{client} took {item} from {path}, which c{other} \
                                         took already at {:.6} s (no lost reply excuses it)",
                                        o_at.as_secs_f64()
                                    ),
                                ));
                            }
                        }
                    }
                    _ => {}
                }
            }
            let missing: Vec<(&str, Duration)> = put
                .iter()
                .filter_map(|(item, (_, _, acked))| acked.map(|at| (*item, at)))
                .filter(|(item, at)| {
                    at.max(&healed).saturating_add(scenario.liveness) <= end
                        && !taken.contains_key(item)
                })
                .collect();
            if missing.len() > excuses {
                let (item, at) = missing[0];
                out.push(violation(
                    end,
                    format!(
                        "{} acknowledged puts to {path} were never taken ({excuses} excused by \
                         failed takes and consumer crashes), the first {item} put at {:.6} s",
                        missing.len(),
                        at.as_secs_f64()
                    ),
                ));
            }
        }
    }
    out
}

/// Adds the queues' coverage counts to `c`.
pub(crate) fn coverage(records: &[Record], c: &mut BTreeMap<&'static str, usize>) {
    for r in records {
        match r.event {
            Event::QueuePut { .. } => *c.entry("queue puts").or_default() += 1,
            Event::QueuePutUncertain { .. } => {
                *c.entry("queue puts uncertain").or_default() += 1;
            }
            Event::QueueTaken { .. } => *c.entry("queue items taken").or_default() += 1,
            _ => {}
        }
    }
}
