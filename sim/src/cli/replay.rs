//! `zkit-sim replay`: one seed of one scenario, exactly as `run` ran it. Prints (or writes)
//! the trace, optionally the client library's tracing log stamped with simulated time, and
//! an HTML timeline; exits non-zero if the seed fails.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use zkit_sim::{runner, timeline};

/// Stamps log lines with simulated time (the host's clock), never the wall clock.
struct SimTime;

impl FormatTime for SimTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        match turmoil::sim_elapsed() {
            Some(d) => write!(w, "{:>4}.{:06} s", d.as_secs(), d.subsec_micros()),
            None => write!(w, "{:>13}", "-"),
        }
    }
}

fn write(path: &Path, text: &str) -> bool {
    match std::fs::write(path, text) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("zkit-sim replay: cannot write {}: {e}", path.display());
            false
        }
    }
}

/// Runs `zkit-sim replay`.
pub fn replay(
    path: &Path,
    seed: u64,
    trace: Option<PathBuf>,
    log: Option<PathBuf>,
    page: Option<PathBuf>,
) -> ExitCode {
    let Some(scenario) = super::load(path) else {
        return ExitCode::from(2);
    };
    if let Some(log) = &log {
        let file = match File::create(log) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("zkit-sim replay: cannot create {}: {e}", log.display());
                return ExitCode::FAILURE;
            }
        };
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug")),
            )
            .with_timer(SimTime)
            .with_ansi(false)
            .with_writer(Mutex::new(file))
            .try_init();
    }
    let outcome = runner::run(&scenario, seed);
    let mut ok = true;
    match &trace {
        Some(file) => ok &= write(file, &outcome.trace),
        None => print!("{}", outcome.trace),
    }
    if let Some(file) = &page {
        ok &= write(file, &timeline::render(&scenario, &outcome));
    }
    for f in &outcome.findings {
        println!("finding: {f}");
    }
    for v in &outcome.violations {
        println!("violation: {v}");
    }
    println!(
        "{} seed {seed}: {}; {}",
        scenario.name,
        if outcome.passed() { "passed" } else { "FAILED" },
        outcome.coverage
    );
    if outcome.passed() && ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
