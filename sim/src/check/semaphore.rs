//! Semaphore: at no instant do more clients of one semaphore (semaphore clients on one path)
//! believe they hold a lease than it has leases. A belief starts at
//! [`Event::LeaseAcquired`] and ends at [`Event::Released`], [`Event::Lost`] or a crash or
//! restart of the client's host. An excess that disappears without the pause-tainted holders
//! (see [`super`]) is a [`Finding`], not a violation.

use std::collections::BTreeMap;

use super::{groups, Finding, Taint, Violation};
use crate::history::{Event, Record};
use crate::scenario::{Role, Scenario};

fn ends(e: &Event) -> bool {
    matches!(e, Event::Released { .. } | Event::Lost { .. })
}

/// The semaphore violations and pause findings in `records`.
pub fn check(records: &[Record], scenario: &Scenario) -> (Vec<Violation>, Vec<Finding>) {
    let mut out = Vec::new();
    let mut found = Vec::new();
    for (path, (w, clients)) in groups(scenario, &[Role::Semaphore]) {
        let mut holders: BTreeMap<usize, i64> = BTreeMap::new();
        let mut taint = Taint::default();
        for r in records {
            taint.feed(r, ends);
            let Some(c) = r.event.client() else { continue };
            if !clients.contains(&c) {
                continue;
            }
            match r.event {
                Event::LeaseAcquired { client, token } => {
                    holders.insert(client, token);
                    if holders.len() <= w.leases {
                        continue;
                    }
                    let fresh = holders
                        .keys()
                        .filter(|h| taint.since(**h).is_none())
                        .count();
                    let list: Vec<String> = holders.keys().map(|h| format!("c{h}")).collect();
                    let message = format!(
                        "c{client} acquired a lease of {path} (token {token:#x}): {} holders \
                         ({}) for {} leases",
                        holders.len(),
                        list.join(", "),
                        w.leases
                    );
                    if fresh > w.leases {
                        out.push(Violation {
                            checker: "semaphore",
                            at: r.at,
                            message,
                        });
                    } else {
                        found.push(Finding {
                            checker: "semaphore",
                            at: r.at,
                            message: format!("{message}, counting paused holders"),
                        });
                    }
                }
                Event::Released { client }
                | Event::Lost { client }
                | Event::Crashed { client }
                | Event::Started { client, .. } => {
                    holders.remove(&client);
                }
                _ => {}
            }
        }
    }
    (out, found)
}
