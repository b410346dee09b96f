//! Liveness: after the last fault is undone ([`Event::Healed`], recorded by the runner at the
//! instant the network is whole and every crashed host is back), within the scenario's
//! `liveness` window `[healed, healed + liveness]`:
//!
//! - every lock (clients of `role = "lock"` on one path) is acquired by some client in the
//!   window; or, if a client held it across the window's start and released (or lost) it
//!   within the window, someone acquires it within `liveness` of that release;
//! - every election (leader-latch or leader-selector clients on one path) has a leader: a
//!   leadership begins within the window, or one that began before is still held at its end.
//!   (Not "a leader at the exact end instant": candidates step down and run again by design,
//!   and the gap between two terms would make that a coin toss.)
//!
//! The clients of a user role on one path count as a lock if any of them recorded holding
//! it ([`Event::Acquired`]), and as an election if any recorded leading ([`Event::Leader`]).
//!
//! Beliefs of pause-tainted clients (see [`super`]) do not count as progress. If the window
//! does not fit in the run, the scenario leaves no room for liveness: a violation. Without
//! any `Healed` event there is nothing to check here (a run whose faults never all ended is
//! the runner's to report).

use std::time::Duration;

use super::{end_of, groups, last_healed, Taint, Violation};
use crate::history::{Event, Record};
use crate::scenario::{Role, Scenario};

/// One client's belief (holding a lock, leading).
#[derive(Debug, Clone, Copy)]
struct Belief {
    from: Duration,
    to: Option<Duration>,
    /// Whether the client was pause-tainted when it started, or paused while it lasted.
    stale_at_start: bool,
    paused_during: bool,
}

/// The beliefs of `clients` started by `starts` and ended by `ends` (or a crash/restart).
fn beliefs(
    records: &[Record],
    clients: &[usize],
    starts: impl Fn(&Event) -> bool,
    ends: impl Fn(&Event) -> bool + Copy,
) -> Vec<Belief> {
    let mut taint = Taint::default();
    let mut open: Vec<(usize, usize)> = Vec::new(); // (client, index into out)
    let mut out: Vec<Belief> = Vec::new();
    for r in records {
        taint.feed(r, ends);
        let Some(c) = r.event.client() else { continue };
        if !clients.contains(&c) {
            continue;
        }
        let ended = ends(&r.event)
            || matches!(r.event, Event::Crashed { .. } | Event::Started { .. })
            || starts(&r.event);
        if ended {
            if let Some(i) = open.iter().position(|(oc, _)| *oc == c) {
                let (_, b) = open.remove(i);
                out[b].to = Some(r.at);
            }
        }
        if matches!(r.event, Event::Paused { .. }) {
            for (oc, b) in &open {
                if *oc == c {
                    out[*b].paused_during = true;
                }
            }
        }
        if starts(&r.event) {
            open.push((c, out.len()));
            out.push(Belief {
                from: r.at,
                to: None,
                stale_at_start: taint.since(c).is_some(),
                paused_during: false,
            });
        }
    }
    out
}

/// The liveness violations in `records` of a run of `scenario`.
pub fn check(records: &[Record], scenario: &Scenario) -> Vec<Violation> {
    let Some(healed) = last_healed(records) else {
        return Vec::new();
    };
    let mut locks = groups(scenario, &[Role::Lock]);
    let mut elections = groups(scenario, &[Role::LeaderLatch, Role::LeaderSelector]);
    let user_roles: Vec<Role> = scenario
        .workloads
        .iter()
        .map(|w| w.role)
        .filter(|r| r.is_user())
        .collect();
    for (path, (w, clients)) in groups(scenario, &user_roles) {
        let recorded = |what: fn(&Event) -> bool| {
            records
                .iter()
                .any(|r| what(&r.event) && r.event.client().is_some_and(|c| clients.contains(&c)))
        };
        if recorded(|e| matches!(e, Event::Acquired { .. })) {
            locks.entry(path).or_insert_with(|| (w, clients.clone()));
        }
        if recorded(|e| matches!(e, Event::Leader { .. })) {
            elections
                .entry(path)
                .or_insert_with(|| (w, clients.clone()));
        }
    }
    if locks.is_empty() && elections.is_empty() {
        return Vec::new();
    }
    let window = scenario.liveness;
    let deadline = healed + window;
    let end = end_of(records);
    if deadline > end {
        return vec![Violation {
            checker: "liveness",
            at: healed,
            message: format!(
                "the scenario leaves no room for liveness: the last fault ended at {:.6} s, \
                 the {} s window would end at {:.6} s, after the run's end at {:.6} s",
                healed.as_secs_f64(),
                window.as_secs_f64(),
                deadline.as_secs_f64(),
                end.as_secs_f64()
            ),
        }];
    }
    let mut out = Vec::new();
    let within = |t: Duration, from: Duration, to: Duration| t >= from && t <= to;
    for (path, (_, clients)) in &locks {
        let held = beliefs(
            records,
            clients,
            |e| matches!(e, Event::Acquired { .. }),
            |e| matches!(e, Event::Released { .. } | Event::Lost { .. }),
        );
        let acquired_in = |from, to| {
            held.iter()
                .any(|b| !b.stale_at_start && within(b.from, from, to))
        };
        let ok = acquired_in(healed, deadline)
            || held.iter().any(|b| {
                b.from < healed
                    && b.to
                        .is_some_and(|t| within(t, healed, deadline) && acquired_in(t, t + window))
            });
        if !ok {
            out.push(Violation {
                checker: "liveness",
                at: deadline,
                message: format!(
                    "nobody acquired the lock {path} within {} s of the last fault ending at \
                     {:.6} s",
                    window.as_secs_f64(),
                    healed.as_secs_f64()
                ),
            });
        }
    }
    for (path, (_, clients)) in &elections {
        let led = beliefs(
            records,
            clients,
            |e| matches!(e, Event::Leader { .. }),
            |e| matches!(e, Event::SteppedDown { .. } | Event::LeaderLost { .. }),
        );
        let ok = led.iter().any(|b| {
            !b.stale_at_start
                && (within(b.from, healed, deadline)
                    || (b.from < healed && !b.paused_during && b.to.is_none_or(|t| t > deadline)))
        });
        if !ok {
            out.push(Violation {
                checker: "liveness",
                at: deadline,
                message: format!(
                    "no leader of {path} within {} s of the last fault ending at {:.6} s",
                    window.as_secs_f64(),
                    healed.as_secs_f64()
                ),
            });
        }
    }
    out
}
