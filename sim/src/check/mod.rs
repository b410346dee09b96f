//! Checkers: each reads the [`History`](crate::history::History) after a run and returns the
//! violations it finds.
//!
//! - [`mutex`]: no two clients believe they hold the lock at the same instant;
//! - [`fencing`]: the resource never accepts a token lower than one it already accepted.

pub mod fencing;
pub mod mutex;

use std::fmt;
use std::time::Duration;

use crate::history::Record;

/// A broken property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The checker that found it (`mutual-exclusion`, `fencing`, `ensemble`, `simulation`).
    pub checker: &'static str,
    /// When (simulated time).
    pub at: Duration,
    /// What.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {:.6} s: {}",
            self.checker,
            self.at.as_secs_f64(),
            self.message
        )
    }
}

/// Every checker over `records`.
pub fn all(records: &[Record]) -> Vec<Violation> {
    let mut v = mutex::check(records);
    v.extend(fencing::check(records));
    v
}
