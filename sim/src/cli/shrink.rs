//! `zkit-sim shrink`: a failing seed's fault schedule shrunk to the faults that matter,
//! printed (or written) as a scenario file that fails the same way with the same seed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use zkit_sim::shrink;

/// At most this many runs while shrinking.
const BUDGET: usize = 200;

/// Runs `zkit-sim shrink`.
pub fn shrink(path: &Path, seed: u64, out: Option<PathBuf>) -> ExitCode {
    let Some(scenario) = super::load(path) else {
        return ExitCode::from(2);
    };
    let Some(shrunk) = shrink::shrink(&scenario, seed, BUDGET, None) else {
        eprintln!(
            "zkit-sim shrink: {} seed {seed} passes; nothing to shrink",
            scenario.name
        );
        return ExitCode::from(2);
    };
    let text = shrunk.scenario_file(&scenario);
    eprintln!(
        "shrunk {} faults to {} in {} runs",
        shrunk.original.len(),
        shrunk.faults.len(),
        shrunk.runs
    );
    match out {
        Some(file) => {
            if let Err(e) = std::fs::write(&file, text) {
                eprintln!("zkit-sim shrink: cannot write {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
            eprintln!(
                "replay: cargo run --release -p zkit-sim -- replay {} --seed {seed}",
                file.display()
            );
        }
        None => print!("{text}"),
    }
    ExitCode::SUCCESS
}
