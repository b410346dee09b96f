//! Shared counter: the counter counts every acknowledged add, and nothing twice.
//!
//! Adders (`role = "counter"`, one counter per path, seeded with 0) add 1 at a time and record
//! each add as it is called ([`Event::CounterAdding`]), then as acknowledged with the value it
//! returned ([`Event::CounterAdded`]) or as uncertain ([`Event::CounterUncertain`]). An add
//! with no outcome (its host crashed, or the run ended) is uncertain too. Every couple of
//! seconds an adder sends `sync`, reads the counter, and records the value with the instant it
//! sent the `sync` ([`Event::CounterRead`]).
//!
//! - **No acknowledged add lost**: a read is at least the number of adds acknowledged before
//!   its `sync` was sent, and at least every value those adds returned.
//! - **Never doubled**: a read is at most the number of adds called before it returned
//!   (acknowledged, uncertain or still running): an add applied twice would exceed it.
//! - **One value per add**: no two acknowledged adds returned the same value (two
//!   compare-and-sets that both won one version would: one increment lost).
//!
//! Like [`writes`](super::writes), adds acknowledged after the last read are not checked.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{groups, Violation};
use crate::history::{Event, Record};
use crate::scenario::{Role, Scenario};

fn violation(at: Duration, message: String) -> Violation {
    Violation {
        checker: "counter",
        at,
        message,
    }
}

/// The counter violations in `records`.
pub fn check(records: &[Record], scenario: &Scenario) -> Vec<Violation> {
    let mut out = Vec::new();
    for (path, (_, clients)) in groups(scenario, &[Role::Counter]) {
        // Acknowledged adds: (when, by whom, the value returned).
        let mut acked: Vec<(Duration, usize, i32)> = Vec::new();
        let mut called = 0usize;
        let mut returned: BTreeMap<i32, (usize, Duration)> = BTreeMap::new();
        for r in records {
            let Some(c) = r.event.client() else { continue };
            if !clients.contains(&c) {
                continue;
            }
            match r.event {
                Event::CounterAdding { .. } => called += 1,
                Event::CounterAdded { client, value } => {
                    acked.push((r.at, client, value));
                    if let Some((other, at)) = returned.insert(value, (client, r.at)) {
                        out.push(violation(
                            r.at,
                            format!(
                                "c{client}'s add to {path} returned {value}, as c{other}'s did \
                                 at {:.6} s: one increment was lost",
                                at.as_secs_f64()
                            ),
                        ));
                    }
                }
                Event::CounterRead {
                    client,
                    asked_at,
                    value,
                } => {
                    let before: Vec<&(Duration, usize, i32)> =
                        acked.iter().filter(|(at, ..)| *at < asked_at).collect();
                    let floor = before
                        .iter()
                        .map(|(.., v)| *v)
                        .max()
                        .unwrap_or(0)
                        .max(i32::try_from(before.len()).unwrap_or(i32::MAX));
                    if value < floor {
                        out.push(violation(
                            r.at,
                            format!(
                                "c{client} read {path} = {value} after a sync at {:.6} s, but \
                                 {} adds were acknowledged before it (up to {floor}): an \
                                 acknowledged add was lost",
                                asked_at.as_secs_f64(),
                                before.len()
                            ),
                        ));
                    }
                    let ceiling = i32::try_from(called).unwrap_or(i32::MAX);
                    if value > ceiling {
                        out.push(violation(
                            r.at,
                            format!(
                                "c{client} read {path} = {value}, but only {called} adds had \
                                 been called: an add was applied twice"
                            ),
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// Adds the counter's coverage counts to `c`.
pub(crate) fn coverage(records: &[Record], c: &mut BTreeMap<&'static str, usize>) {
    for r in records {
        match r.event {
            Event::CounterAdded { .. } => *c.entry("counter adds").or_default() += 1,
            Event::CounterUncertain { .. } => {
                *c.entry("counter adds uncertain").or_default() += 1;
            }
            Event::CounterRead { .. } => *c.entry("counter reads").or_default() += 1,
            _ => {}
        }
    }
}
