//! Multi-lock: mutual exclusion per lock path. A multi-lock contender's belief that it holds
//! every lock it named runs from [`Event::MultiLockAcquired`] to [`Event::Released`],
//! [`Event::Lost`] or a crash or restart of its host; no two contenders may believe they hold
//! one lock path at the same instant. An overlap in which a pause-tainted contender takes
//! part (see [`super`]) is a [`Finding`], not a violation.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{groups, Finding, Taint, Verdicts, Violation};
use crate::history::{Event, Record};
use crate::scenario::{Role, Scenario};

fn ends(e: &Event) -> bool {
    matches!(e, Event::Released { .. } | Event::Lost { .. })
}

/// The multi-lock violations and pause findings in `records`.
pub fn check(records: &[Record], scenario: &Scenario) -> (Vec<Violation>, Vec<Finding>) {
    let mut verdicts = Verdicts::new("multi-lock");
    let clients: Vec<usize> = groups(scenario, &[Role::MultiLock])
        .into_values()
        .flat_map(|(_, c)| c)
        .collect();
    // lock path -> holder -> since
    let mut holders: BTreeMap<&str, BTreeMap<usize, Duration>> = BTreeMap::new();
    let mut taint = Taint::default();
    for r in records {
        taint.feed(r, ends);
        let Some(c) = r.event.client() else { continue };
        if !clients.contains(&c) {
            continue;
        }
        match &r.event {
            Event::MultiLockAcquired { client, locks } => {
                for lock in locks {
                    let held = holders.entry(lock).or_default();
                    for (other, since) in held.iter() {
                        if other == client {
                            continue;
                        }
                        let message = format!(
                            "c{client} multi-locked {lock} while c{other} has believed it \
                             holds it since {:.6} s",
                            since.as_secs_f64()
                        );
                        verdicts.overlap(r.at, message, [*other, *client], &taint);
                    }
                    held.insert(*client, r.at);
                }
            }
            Event::Released { client }
            | Event::Lost { client }
            | Event::Crashed { client }
            | Event::Started { client, .. } => {
                for held in holders.values_mut() {
                    held.remove(client);
                }
            }
            _ => {}
        }
    }
    verdicts.into_parts()
}

/// Adds the multi-locks' coverage counts to `c`.
pub(crate) fn coverage(records: &[Record], c: &mut BTreeMap<&'static str, usize>) {
    for r in records {
        if let Event::MultiLockAcquired { .. } = r.event {
            *c.entry("multi-lock acquisitions").or_default() += 1;
        }
    }
}
