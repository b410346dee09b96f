//! `zkit-sim run --real`: each scenario's runs against a real ZooKeeper ensemble, one after
//! another in this process (a real ensemble needs the machine's ports and cores, so runs
//! are not spread over workers), with the same summary table and reports as a simulated
//! run. A scenario real mode cannot run is refused with the reason and fails the command.
//! With `--compare-seeds N`, each scenario also runs N simulated seeds and the real and
//! simulated figures are printed side by side ([`zkit_sim::fidelity`]); with `--timeline
//! DIR`, each run's HTML timeline is written there.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
// Wall time only for the summary's elapsed seconds, outside every simulation.
use std::time::Instant as WallClock;

use zkit_sim::fidelity::{Comparison, Figures};
use zkit_sim::real::support::check_supported;
use zkit_sim::runner::real::{run_real, RealOptions};
use zkit_sim::runner::{self, Outcome};
use zkit_sim::scenario::Scenario;
use zkit_sim::timeline;

use super::report::RunReport;
use super::run::{reports, summary, RunArgs, SeedResult};

/// Where a failing real run's trace and members' logs go.
pub fn failure_dir(trace_dir: &Path, scenario: &str, run: u64) -> PathBuf {
    trace_dir.join("real").join(format!("{scenario}-run{run}"))
}

/// Runs `zkit-sim run --real`.
pub fn run(args: &RunArgs, scenarios: &[Scenario], files: &[PathBuf]) -> ExitCode {
    let started = WallClock::now();
    let mut refused = 0;
    let mut results: Vec<Vec<SeedResult>> = vec![Vec::new(); scenarios.len()];
    let mut comparisons = Vec::new();
    for (i, scenario) in scenarios.iter().enumerate() {
        if let Err(e) = check_supported(scenario) {
            println!("refused: {e}");
            refused += 1;
            continue;
        }
        let mut outcomes: Vec<Outcome> = Vec::new();
        for run in 0..args.runs {
            eprintln!("zkit-sim run --real: {} run {run}", scenario.name);
            let options = RealOptions {
                failure_dir: Some(failure_dir(&args.trace_dir, &scenario.name, run)),
                ..RealOptions::default()
            };
            match run_real(scenario, run, &options) {
                Ok(outcome) => {
                    if let Some(dir) = &args.timeline {
                        let file = dir.join(format!("{}-run{run}.html", scenario.name));
                        let page = timeline::render(scenario, &outcome);
                        if let Err(e) =
                            std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&file, page))
                        {
                            eprintln!("zkit-sim run: cannot write {}: {e}", file.display());
                            return ExitCode::FAILURE;
                        }
                    }
                    results[i].push(SeedResult::of(i, &outcome));
                    outcomes.push(outcome);
                }
                Err(e) => {
                    eprintln!("zkit-sim run --real: {}: {e}", scenario.name);
                    return ExitCode::FAILURE;
                }
            }
        }
        if let Some(n) = args.compare_seeds {
            let simulated: Vec<Outcome> = (0..n).map(|s| runner::run(scenario, s)).collect();
            comparisons.push(Comparison {
                scenario: scenario.name.clone(),
                real: Figures::of(&outcomes),
                sim: Figures::of(&simulated),
            });
        }
    }
    let report = RunReport {
        scenarios: reports(
            scenarios,
            files,
            &mut results,
            &format!("real runs 0..{}", args.runs),
            &args.trace_dir,
            true,
        ),
        elapsed_s: started.elapsed().as_secs_f64(),
    };
    let failed = summary(&report);
    if !comparisons.is_empty() {
        println!(
            "\nreal versus simulated ({} seeds)",
            args.compare_seeds.unwrap_or(0)
        );
        for c in &comparisons {
            print!("{c}");
        }
    }
    for (path, text) in [(&args.junit, report.junit()), (&args.json, report.json())] {
        if let Some(path) = path {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("zkit-sim run: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    if refused > 0 {
        println!("{refused} scenario(s) refused by real mode");
    }
    if failed || refused > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
