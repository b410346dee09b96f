//! Single leader: at most one client of an election (clients on one path) believes it leads
//! at any instant, and leadership epochs (the latch's node zxid, the selector's fencing
//! token) increase from one leader to the next: a new belief carries an epoch higher than any
//! seen before in that election, or the same epoch held by the same client (a latch re-checks
//! its node after a reconnect and leads again with it).
//!
//! A belief starts at [`Event::Leader`] and ends at [`Event::SteppedDown`],
//! [`Event::LeaderLost`], or a crash or restart of the client's host. A second leader while
//! the first is pause-tainted (see [`super`]) is a [`Finding`], not a violation.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{workload_of, Finding, Taint, Verdicts, Violation};
use crate::history::{Event, Record};
use crate::scenario::Scenario;

fn ends(e: &Event) -> bool {
    matches!(e, Event::SteppedDown { .. } | Event::LeaderLost { .. })
}

/// The single-leader violations and pause findings in `records`.
pub fn check(records: &[Record], scenario: &Scenario) -> (Vec<Violation>, Vec<Finding>) {
    let paths = workload_of(scenario);
    let path_of = |c: usize| paths.get(&c).map_or("", |w| w.path.as_str());
    let mut leading: BTreeMap<&str, BTreeMap<usize, (Duration, i64)>> = BTreeMap::new();
    // Per election: the highest epoch seen and who led with it.
    let mut highest: BTreeMap<&str, (i64, usize)> = BTreeMap::new();
    let mut taint = Taint::default();
    let mut verdicts = Verdicts::new("single-leader");
    for r in records {
        taint.feed(r, ends);
        let (client, epoch) = match r.event {
            Event::Leader { client, epoch } => (client, epoch),
            Event::SteppedDown { client }
            | Event::LeaderLost { client }
            | Event::Crashed { client }
            | Event::Started { client, .. } => {
                for l in leading.values_mut() {
                    l.remove(&client);
                }
                continue;
            }
            _ => continue,
        };
        let path = path_of(client);
        match highest.get(path) {
            Some(&(h, by)) if epoch < h || (epoch == h && by != client) => {
                verdicts.violations.push(Violation {
                    checker: "single-leader",
                    at: r.at,
                    message: format!(
                    "c{client} leads with epoch {epoch:#x}, not above c{by}'s earlier epoch {h:#x}"
                ),
                })
            }
            _ => {
                highest.insert(path, (epoch, client));
            }
        }
        let group = leading.entry(path).or_default();
        for (other, (since, other_epoch)) in group.iter() {
            if *other == client {
                continue;
            }
            let message = format!(
                "c{client} leads (epoch {epoch:#x}) while c{other} has believed it leads since \
                 {:.6} s (epoch {other_epoch:#x})",
                since.as_secs_f64()
            );
            verdicts.overlap(r.at, message, [*other, client], &taint);
        }
        group.insert(client, (r.at, epoch));
    }
    verdicts.into_parts()
}
