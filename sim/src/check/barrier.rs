//! Double barrier: nobody passes enter early, and nobody passes leave before everyone is in.
//!
//! Each participant's *attempt* runs from [`Event::BarrierEntering`] (it called enter) to
//! [`Event::BarrierLeft`] (its leave returned), with [`Event::BarrierEntered`] in between
//! when its enter returned. An attempt that ends otherwise (enter or leave failed, the host
//! crashed or restarted) leaves a *ghost*: the participant's ephemeral node may live on until
//! its session expires, and the recipe rightly counts it, so a ghost counts as present for
//! twice the session timeout (plus a second) after the attempt ended.
//!
//! - **No early release**: when a participant's enter returns, at least `count` attempts
//!   (the barrier workload's `count`; its own included) are present: started before that
//!   instant and not yet left (or ghosts).
//! - **Nobody leaves before all have entered**: when a participant's leave returns, no other
//!   participant that called enter before this one passed enter may pass enter later (in that
//!   same attempt): it would have been in the barrier while this one left it.
//! - **Nobody leaves before all have left**: when a participant's leave returns, every other
//!   participant that passed enter in the same round (their enter calls overlapped) has
//!   called leave ([`Event::BarrierLeaving`]) or ended its attempt otherwise. A leave that
//!   returns while someone of its round is still inside is what a `leave` that does not wait
//!   does.
//!
//! The simple barrier (`zkit::recipe::Barrier`, released when its node is removed) has no
//! role yet, so nothing checks that it never releases before the node is removed.

use std::time::Duration;

use super::{groups, Violation};
use crate::history::{Event, Record};
use crate::scenario::{Role, Scenario};

/// One participant's attempt (indices are record positions: the log's order).
#[derive(Debug, Clone)]
struct Attempt {
    client: usize,
    start: usize,
    entered: Option<(usize, Duration)>,
    /// Where it called leave.
    leaving: Option<usize>,
    /// Where it ended, when, and whether it left a ghost.
    close: Option<(usize, Duration, bool)>,
}

/// The double-barrier violations in `records`.
pub fn check(records: &[Record], scenario: &Scenario) -> Vec<Violation> {
    let ghost = scenario.session_timeout * 2 + Duration::from_secs(1);
    let mut out = Vec::new();
    for (path, (w, clients)) in groups(scenario, &[Role::DoubleBarrier]) {
        let mut attempts: Vec<Attempt> = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let Some(c) = r.event.client() else { continue };
            if !clients.contains(&c) {
                continue;
            }
            let open = attempts
                .iter()
                .rposition(|a| a.client == c && a.close.is_none());
            match (&r.event, open) {
                (Event::BarrierEntering { .. }, open) => {
                    if let Some(o) = open {
                        attempts[o].close = Some((i, r.at, true));
                    }
                    attempts.push(Attempt {
                        client: c,
                        start: i,
                        entered: None,
                        leaving: None,
                        close: None,
                    });
                }
                (Event::BarrierEntered { .. }, Some(o)) => attempts[o].entered = Some((i, r.at)),
                (Event::BarrierLeaving { .. }, Some(o)) => attempts[o].leaving = Some(i),
                (Event::BarrierLeft { .. }, Some(o)) => attempts[o].close = Some((i, r.at, false)),
                (
                    Event::BarrierFailed { .. } | Event::Crashed { .. } | Event::Started { .. },
                    Some(o),
                ) => attempts[o].close = Some((i, r.at, true)),
                _ => {}
            }
        }
        for a in &attempts {
            let Some((ei, et)) = a.entered else { continue };
            let present = attempts
                .iter()
                .filter(|b| {
                    b.start < ei
                        && match b.close {
                            None => true,
                            Some((ci, _, false)) => ci > ei,
                            Some((ci, ct, true)) => ci > ei || ct + ghost >= et,
                        }
                })
                .count();
            if present < w.count {
                out.push(Violation {
                    checker: "double-barrier",
                    at: et,
                    message: format!(
                        "c{} passed enter of {path} with {present} participants present, \
                         fewer than {}",
                        a.client, w.count
                    ),
                });
            }
            let Some((li, lt, false)) = a.close else {
                continue;
            };
            for b in &attempts {
                let Some((bi, _)) = b.entered else { continue };
                // Same round: each started entering before the other passed enter.
                if b.client == a.client || b.start > ei || a.start > bi || bi > li {
                    continue;
                }
                let gone = b.leaving.is_some_and(|x| x < li) || b.close.is_some_and(|c| c.0 < li);
                if !gone {
                    out.push(Violation {
                        checker: "double-barrier",
                        at: lt,
                        message: format!(
                            "c{}'s leave of {path} returned at {:.6} s while c{} (in since \
                             {:.6} s) had not called leave",
                            a.client,
                            lt.as_secs_f64(),
                            b.client,
                            records[bi].at.as_secs_f64()
                        ),
                    });
                }
            }
            for b in &attempts {
                if b.client == a.client || b.start >= ei {
                    continue;
                }
                if let Some((bi, bt)) = b.entered {
                    if bi > li {
                        out.push(Violation {
                            checker: "double-barrier",
                            at: lt,
                            message: format!(
                                "c{} left {path} at {:.6} s before c{} (entering since \
                                 {:.6} s) passed enter at {:.6} s",
                                a.client,
                                lt.as_secs_f64(),
                                b.client,
                                records[b.start].at.as_secs_f64(),
                                bt.as_secs_f64()
                            ),
                        });
                    }
                }
            }
        }
    }
    out
}
