//! Set partitioner: no item is owned by two members at once (partitioner clients on one
//! path share one set of items).
//!
//! A member's ownership runs from [`Event::PartitionAcquired`] (its partitioner reached
//! `Acquired` with those items) to [`Event::PartitionReleased`] or a crash or restart of its
//! host. An overlap in which a pause-tainted member takes part (see [`super`]) is a
//! [`Finding`], not a violation.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{groups, Finding, Taint, Verdicts, Violation};
use crate::history::{Event, Record};
use crate::scenario::{Role, Scenario};

fn ends(e: &Event) -> bool {
    matches!(e, Event::PartitionReleased { .. })
}

/// The partitioner violations and pause findings in `records`.
pub fn check(records: &[Record], scenario: &Scenario) -> (Vec<Violation>, Vec<Finding>) {
    let mut verdicts = Verdicts::new("partitioner");
    for (path, (_, clients)) in groups(scenario, &[Role::Partitioner]) {
        // item -> owner -> since
        let mut owners: BTreeMap<&str, BTreeMap<usize, Duration>> = BTreeMap::new();
        let mut taint = Taint::default();
        for r in records {
            taint.feed(r, ends);
            let Some(c) = r.event.client() else { continue };
            if !clients.contains(&c) {
                continue;
            }
            match &r.event {
                Event::PartitionAcquired { client, items } => {
                    for item in items {
                        let owned = owners.entry(item).or_default();
                        for (other, since) in owned.iter() {
                            if other == client {
                                continue;
                            }
                            let message = format!(
                                "c{client} took item {item} of {path} while c{other} has \
                                 owned it since {:.6} s",
                                since.as_secs_f64()
                            );
                            verdicts.overlap(r.at, message, [*other, *client], &taint);
                        }
                        owned.insert(*client, r.at);
                    }
                }
                Event::PartitionReleased { client }
                | Event::Crashed { client }
                | Event::Started { client, .. } => {
                    for owned in owners.values_mut() {
                        owned.remove(client);
                    }
                }
                _ => {}
            }
        }
    }
    verdicts.into_parts()
}

/// Adds the partitioners' coverage counts to `c`.
pub(crate) fn coverage(records: &[Record], c: &mut BTreeMap<&'static str, usize>) {
    for r in records {
        if let Event::PartitionAcquired { items, .. } = &r.event {
            *c.entry("partition shares").or_default() += 1;
            *c.entry("partition items owned").or_default() += items.len();
        }
    }
}
