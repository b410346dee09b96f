//! Real versus simulated: the figures that say whether the simulated ensemble behaves like
//! the real one under a scenario's faults. For a set of outcomes (real runs, or simulated
//! seeds) it gathers the checkers' verdicts and the distributions that matter to a user of
//! locks and leader election:
//!
//! - **lock handoff gap**: from a holder's belief ending by a fault (crashed, killed,
//!   lost, paused) to the next acquisition by another client;
//! - **time to a new leader**: from a leader's belief ending the same way to the next
//!   leadership of another client;
//! - **sessions expired** per run (the ensemble's expiries);
//! - **stale writes rejected** per run (fenced writes refused).
//!
//! [`Comparison`] renders both sides in one table; `zkit-sim run --real --compare-seeds N`
//! prints it per scenario.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use crate::history::{Event, Record};
use crate::runner::Outcome;

/// One side's figures (real runs or simulated seeds).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// How many runs or seeds.
    pub runs: usize,
    /// How many passed every checker.
    pub passed: usize,
    /// Violations by checker, summed.
    pub violations: BTreeMap<String, usize>,
    /// Lock handoff gaps after a fault ended a holder's belief, in seconds.
    pub handoff_gaps: Vec<f64>,
    /// Times to a new leader after a fault ended a leader's belief, in seconds.
    pub leader_gaps: Vec<f64>,
    /// Sessions the ensemble expired, per run.
    pub expired: Vec<f64>,
    /// Stale writes rejected, per run.
    pub rejected: Vec<f64>,
    /// Faults fired, per run.
    pub faults: Vec<f64>,
}

impl Figures {
    /// The figures of `outcomes`.
    pub fn of(outcomes: &[Outcome]) -> Figures {
        let mut f = Figures {
            runs: outcomes.len(),
            ..Figures::default()
        };
        for o in outcomes {
            if o.passed() {
                f.passed += 1;
            }
            for v in &o.violations {
                *f.violations.entry(v.checker.to_owned()).or_default() += 1;
            }
            f.handoff_gaps.extend(gaps(&o.records, Belief::Lock));
            f.leader_gaps.extend(gaps(&o.records, Belief::Leader));
            let count = |p: fn(&Event) -> bool| o.records.iter().filter(|r| p(&r.event)).count();
            f.expired
                .push(count(|e| matches!(e, Event::SessionExpired { .. })) as f64);
            f.rejected.push(count(|e| {
                matches!(
                    e,
                    Event::Write {
                        accepted: false,
                        ..
                    }
                )
            }) as f64);
            f.faults.push(o.coverage.faults_fired as f64);
        }
        f
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Belief {
    Lock,
    Leader,
}

/// The gaps from a fault ending a holder's (or leader's) belief to the next holder (or
/// leader) that is another client, in seconds.
fn gaps(records: &[Record], belief: Belief) -> Vec<f64> {
    let mut holders: BTreeSet<usize> = BTreeSet::new();
    // Clients whose belief a fault ended, and when.
    let mut pending: Vec<(usize, Duration)> = Vec::new();
    let mut out = Vec::new();
    for r in records {
        let gained = match (&r.event, belief) {
            (Event::Acquired { client, .. }, Belief::Lock)
            | (Event::Leader { client, .. }, Belief::Leader) => Some(*client),
            _ => None,
        };
        if let Some(c) = gained {
            for (old, at) in pending.drain(..) {
                if old != c {
                    out.push(r.at.saturating_sub(at).as_secs_f64());
                }
            }
            holders.insert(c);
            continue;
        }
        let ended_by_fault = match &r.event {
            Event::Crashed { client } | Event::Killed { client } | Event::Paused { client } => {
                Some(*client)
            }
            Event::Lost { client } if belief == Belief::Lock => Some(*client),
            Event::LeaderLost { client } if belief == Belief::Leader => Some(*client),
            _ => None,
        };
        let ended_normally = match (&r.event, belief) {
            (Event::Released { client }, Belief::Lock)
            | (Event::SteppedDown { client }, Belief::Leader) => Some(*client),
            _ => None,
        };
        if let Some(c) = ended_by_fault {
            if holders.remove(&c) {
                pending.push((c, r.at));
            }
        } else if let Some(c) = ended_normally {
            holders.remove(&c);
        }
    }
    out
}

/// A distribution's summary: `n`, median, 90th percentile and maximum.
fn summary(values: &[f64]) -> String {
    if values.is_empty() {
        return "-".to_owned();
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!(
        "n={} med {:.2} p90 {:.2} max {:.2}",
        v.len(),
        at(0.5),
        at(0.9),
        v[v.len() - 1]
    )
}

/// One scenario's real and simulated figures side by side.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The scenario.
    pub scenario: String,
    /// Real runs.
    pub real: Figures,
    /// Simulated seeds.
    pub sim: Figures,
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (r, s) = (&self.real, &self.sim);
        let verdicts = |x: &Figures| {
            let mut v = format!("{}/{} passed", x.passed, x.runs);
            for (c, n) in &x.violations {
                v.push_str(&format!(", {c} {n}"));
            }
            v
        };
        writeln!(f, "{}", self.scenario)?;
        let rows = [
            ("verdicts", verdicts(r), verdicts(s)),
            ("faults fired/run", summary(&r.faults), summary(&s.faults)),
            (
                "lock handoff gap s",
                summary(&r.handoff_gaps),
                summary(&s.handoff_gaps),
            ),
            (
                "time to new leader s",
                summary(&r.leader_gaps),
                summary(&s.leader_gaps),
            ),
            (
                "sessions expired/run",
                summary(&r.expired),
                summary(&s.expired),
            ),
            (
                "stale writes rejected/run",
                summary(&r.rejected),
                summary(&s.rejected),
            ),
        ];
        writeln!(f, "  {:26} | {:36} | {:36}", "", "real", "simulated")?;
        for (name, real, sim) in rows {
            writeln!(f, "  {name:26} | {real:36} | {sim:36}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64, event: Event) -> Record {
        Record {
            at: Duration::from_millis(ms),
            event,
        }
    }

    #[test]
    fn a_handoff_gap_runs_from_the_holders_crash_to_the_next_holder() {
        let records = vec![
            at(
                1000,
                Event::Acquired {
                    client: 1,
                    token: 1,
                },
            ),
            at(2000, Event::Crashed { client: 1 }),
            at(
                6500,
                Event::Acquired {
                    client: 2,
                    token: 2,
                },
            ),
            at(7000, Event::Released { client: 2 }),
            at(
                7100,
                Event::Acquired {
                    client: 3,
                    token: 3,
                },
            ),
        ];
        assert_eq!(gaps(&records, Belief::Lock), vec![4.5]);
        assert_eq!(summary(&[4.5, 1.0, 2.0]), "n=3 med 2.00 p90 4.50 max 4.50");
        assert_eq!(summary(&[]), "-");
    }
}
