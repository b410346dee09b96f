//! What a run exercised: faults fired and skipped (by kind), plus the role-level counts the
//! checkers read off the history (lock handoffs, leader changes, sessions expired, stale
//! writes rejected, ...). A scenario whose faults never fire fails the run rather than
//! passing silently.

use std::collections::BTreeMap;
use std::fmt;

use super::faults::Faults;
use crate::check;
use crate::history::{Event, Record};

/// Counts of what one run (or, added up, many runs) exercised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Faults that fired.
    pub faults_fired: usize,
    /// Faults skipped because their target did not exist when they were due.
    pub faults_skipped: usize,
    /// Faults fired, by kind name.
    pub by_kind: BTreeMap<&'static str, usize>,
    /// Role-level counts from the history, by name.
    pub counts: BTreeMap<&'static str, usize>,
}

impl Coverage {
    pub(super) fn of(records: &[Record], faults: &Faults) -> Coverage {
        Coverage {
            faults_fired: faults.fired.values().sum(),
            faults_skipped: faults.skipped,
            by_kind: faults.fired.iter().map(|(k, n)| (k.name(), *n)).collect(),
            counts: {
                let mut counts = check::coverage(records);
                cancellations(records, &mut counts);
                counts
            },
        }
    }

    /// Adds `other` to this one (for a summary over seeds).
    pub fn add(&mut self, other: &Coverage) {
        self.faults_fired += other.faults_fired;
        self.faults_skipped += other.faults_skipped;
        for (k, n) in &other.by_kind {
            *self.by_kind.entry(k).or_default() += n;
        }
        for (k, n) in &other.counts {
            *self.counts.entry(k).or_default() += n;
        }
    }
}

/// Counts the recipe calls a `cancel` fault's timeout cut short, by call: `cancelled
/// acquires` and `cancelled enters` (the recipe must leave no node behind), `cancelled
/// releases`, `cancelled leaves` and `cancelled closes` (the recipe must still remove its
/// node, in the background).
fn cancellations(records: &[Record], counts: &mut BTreeMap<&'static str, usize>) {
    for r in records {
        if let Event::Cancelled { call, .. } = r.event {
            let key = match call {
                "acquire" => "cancelled acquires",
                "enter" => "cancelled enters",
                "release" => "cancelled releases",
                "leave" => "cancelled leaves",
                "close" => "cancelled closes",
                _ => "cancelled calls",
            };
            *counts.entry(key).or_default() += 1;
        }
    }
}

impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "faults fired {} (skipped {})",
            self.faults_fired, self.faults_skipped
        )?;
        if !self.by_kind.is_empty() {
            let kinds: Vec<String> = self
                .by_kind
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            write!(f, " [{}]", kinds.join(", "))?;
        }
        for (k, n) in &self.counts {
            write!(f, "; {k} {n}")?;
        }
        Ok(())
    }
}
