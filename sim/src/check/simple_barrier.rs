//! Simple barrier: a waiter is never let through while the barrier is up.
//!
//! Keepers (`role = "barrier-keeper"`) record [`Event::BarrierRaised`] when a raise returns
//! (the node exists from then on, until a remove deletes it) and [`Event::BarrierRemoving`]
//! when they call remove; waiters (`role = "barrier-waiter"`) on the same path record
//! [`Event::BarrierWaiting`] before they `sync` and call wait, and [`Event::BarrierReleased`]
//! when wait returns. The barrier is surely up from a raise's return until the next remove
//! is called by any keeper.
//!
//! - **No early release**: a waiter's wait returns only if the barrier was not surely up
//!   over the whole of its wait (from its `BarrierWaiting` to its `BarrierReleased`).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{groups, Violation};
use crate::history::{Event, Record};
use crate::scenario::{Role, Scenario};

/// The simple-barrier violations in `records`.
pub fn check(records: &[Record], scenario: &Scenario) -> Vec<Violation> {
    let mut out = Vec::new();
    for (path, (_, clients)) in groups(scenario, &[Role::BarrierKeeper, Role::BarrierWaiter]) {
        // Surely up since (None: maybe down).
        let mut up: Option<Duration> = None;
        let mut waiting: BTreeMap<usize, Duration> = BTreeMap::new();
        for r in records {
            let Some(c) = r.event.client() else { continue };
            if !clients.contains(&c) {
                continue;
            }
            match r.event {
                Event::BarrierRaised { .. } => {
                    up.get_or_insert(r.at);
                }
                Event::BarrierRemoving { .. } => up = None,
                Event::BarrierWaiting { client } => {
                    waiting.insert(client, r.at);
                }
                Event::BarrierReleased { client } => {
                    let Some(from) = waiting.remove(&client) else {
                        continue;
                    };
                    if let Some(since) = up.filter(|since| *since <= from) {
                        out.push(Violation {
                            checker: "simple-barrier",
                            at: r.at,
                            message: format!(
                                "c{client} passed the barrier {path} (waiting since {:.6} s), \
                                 which has been up since {:.6} s and not removed",
                                from.as_secs_f64(),
                                since.as_secs_f64()
                            ),
                        });
                    }
                }
                Event::Crashed { client } | Event::Started { client, .. } => {
                    waiting.remove(&client);
                }
                _ => {}
            }
        }
    }
    out
}

/// Adds the simple barriers' coverage counts to `c`: releases, and releases of waiters
/// that started waiting while the barrier was up (held, then let through by a removal).
pub(crate) fn coverage(records: &[Record], c: &mut BTreeMap<&'static str, usize>) {
    let mut up = false;
    let mut held: BTreeMap<usize, bool> = BTreeMap::new();
    for r in records {
        match r.event {
            Event::BarrierRaised { .. } => up = true,
            Event::BarrierRemoving { .. } => up = false,
            Event::BarrierWaiting { client } => {
                held.insert(client, up);
            }
            Event::BarrierReleased { client } => {
                *c.entry("barrier releases").or_default() += 1;
                if held.remove(&client) == Some(true) {
                    *c.entry("barrier waiters held then released").or_default() += 1;
                }
            }
            _ => {}
        }
    }
}
