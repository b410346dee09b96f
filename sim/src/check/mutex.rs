//! Mutual exclusion: no two clients believe they hold the same lock at the same instant (for
//! a read-write lock: no writer alongside anyone, readers together only). A belief starts when
//! `acquire` returns ([`Event::Acquired`], [`Event::ReadAcquired`], [`Event::WriteAcquired`])
//! and ends when the client starts to release, when `lost()` fires, or when its host crashes
//! (or restarts). Clients on one path share a lock; a client no workload names counts as a
//! plain lock contender on an unnamed path.
//!
//! An overlap in which a pause-tainted client takes part (see [`super`]) is a [`Finding`],
//! not a violation.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{workload_of, Finding, Taint, Verdicts, Violation};
use crate::history::{Event, Record};
use crate::scenario::Scenario;

/// How a client holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Exclusive,
    Read,
    Write,
}

impl Mode {
    fn conflicts(self, other: Mode) -> bool {
        !(self == Mode::Read && other == Mode::Read)
    }

    fn name(self) -> &'static str {
        match self {
            Mode::Exclusive => "the lock",
            Mode::Read => "the read lock",
            Mode::Write => "the write lock",
        }
    }
}

fn ends(e: &Event) -> bool {
    matches!(e, Event::Released { .. } | Event::Lost { .. })
}

/// The mutual-exclusion violations and pause findings in `records` (in log order, which is
/// the order events happened in the single-threaded simulation).
pub fn check(records: &[Record], scenario: &Scenario) -> (Vec<Violation>, Vec<Finding>) {
    let paths = workload_of(scenario);
    let path_of = |c: usize| paths.get(&c).map_or("", |w| w.path.as_str());
    let mut holding: BTreeMap<&str, BTreeMap<usize, (Duration, i64, Mode)>> = BTreeMap::new();
    let mut taint = Taint::default();
    let mut verdicts = Verdicts::new("mutual-exclusion");
    for r in records {
        taint.feed(r, ends);
        let (client, token, mode) = match r.event {
            Event::Acquired { client, token } => (client, token, Mode::Exclusive),
            Event::ReadAcquired { client, token } => (client, token, Mode::Read),
            Event::WriteAcquired { client, token } => (client, token, Mode::Write),
            Event::Released { client }
            | Event::Lost { client }
            | Event::Crashed { client }
            | Event::Started { client, .. } => {
                for h in holding.values_mut() {
                    h.remove(&client);
                }
                continue;
            }
            _ => continue,
        };
        let group = holding.entry(path_of(client)).or_default();
        for (other, (since, other_token, other_mode)) in group.iter() {
            if *other == client || !mode.conflicts(*other_mode) {
                continue;
            }
            let message = format!(
                "c{client} acquired {} (token {token:#x}) while c{other} has believed it holds \
                 {} since {:.6} s (token {other_token:#x})",
                mode.name(),
                other_mode.name(),
                since.as_secs_f64()
            );
            verdicts.overlap(r.at, message, [*other, client], &taint);
        }
        group.insert(client, (r.at, token, mode));
    }
    verdicts.into_parts()
}
