//! The subcommands of the `zkit-sim` binary, one per file.

pub mod real;
pub mod replay;
pub mod report;
pub mod run;
pub mod serve;
pub mod shrink;

use std::path::Path;

use zkit_sim::scenario::{self, Scenario};

/// Loads a scenario, printing its located error on failure.
pub fn load(path: &Path) -> Option<Scenario> {
    match scenario::load(path) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("{e}");
            None
        }
    }
}
