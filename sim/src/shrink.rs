//! Shrinking: a failing seed's fault schedule (its timeline plus its swarm draw) cut down to
//! a minimal list of faults that still makes the same checker fail with the same seed, ready
//! to print as a scenario file and commit as a regression.
//!
//! Removal only, in halving chunks then one by one (a simple delta debugging): every
//! candidate is replayed with [`runner::Options::faults`], so the result is a schedule that
//! was seen to fail, not a guess.

use crate::runner::{self, ClientBody, Options, Outcome};
use crate::scenario::{Fault, Scenario};

/// A shrunk failure.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The smallest failing schedule found.
    pub faults: Vec<Fault>,
    /// The schedule the seed started with.
    pub original: Vec<Fault>,
    /// The run of `faults` (it fails).
    pub outcome: Outcome,
    /// How many runs shrinking took.
    pub runs: usize,
}

impl Shrunk {
    /// The shrunk failure as a scenario file that replays it with the same seed.
    pub fn scenario_file(&self, scenario: &Scenario) -> String {
        let mut s = format!(
            "# Shrunk by `zkit-sim shrink` from {} to {} faults; replay with --seed {}.\n# It failed: {}\n",
            self.original.len(),
            self.faults.len(),
            self.outcome.seed,
            self.outcome
                .violations
                .first()
                .map(|v| v.to_string().replace('\n', " "))
                .unwrap_or_default()
        );
        s.push_str(&scenario.to_toml_with(&self.faults));
        s
    }
}

/// Shrinks seed `seed` of `scenario`, trying at most `budget` runs, with the clients running
/// `body` (the scenario's roles when `None`). `None` if the seed passes.
pub fn shrink(
    scenario: &Scenario,
    seed: u64,
    budget: usize,
    body: Option<ClientBody>,
) -> Option<Shrunk> {
    let original = runner::schedule(scenario, seed);
    let run = |faults: &[Fault]| {
        runner::run_with(
            scenario,
            seed,
            &Options {
                faults: Some(faults.to_vec()),
                body: body.clone(),
            },
        )
    };
    let first = run(&original);
    let checker = first.violations.first()?.checker;
    let fails = |o: &Outcome| o.violations.iter().any(|v| v.checker == checker);
    let mut best = (original.clone(), first);
    let mut runs = 1;
    let mut chunk = best.0.len().div_ceil(2).max(1);
    loop {
        let mut removed_any = false;
        let mut start = 0;
        while start < best.0.len() && runs < budget {
            let mut candidate = best.0.clone();
            let end = (start + chunk).min(candidate.len());
            candidate.drain(start..end);
            let outcome = run(&candidate);
            runs += 1;
            if fails(&outcome) {
                best = (candidate, outcome);
                removed_any = true;
            } else {
                start += chunk;
            }
        }
        if runs >= budget || (chunk == 1 && !removed_any) {
            break;
        }
        if !removed_any {
            chunk = chunk.div_ceil(2);
        }
    }
    Some(Shrunk {
        faults: best.0,
        original,
        outcome: best.1,
        runs,
    })
}
