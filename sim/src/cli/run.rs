//! `zkit-sim run`: every scenario for every seed of the range (or of this shard of it), on
//! `--jobs` worker processes, with a progress line and a summary table. A failing seed gets
//! its trace written to `--trace-dir` and a one-line replay command (and a shrink command
//! when a swarm drew its faults). `--junit` and `--json` also write the results for CI
//! (see `report`). Exits non-zero on any violation.
//!
//! Parallelism is by process, not by thread: tokio numbers tasks process-wide and the order
//! in which a crashed host's tasks are dropped follows those numbers, so simulations sharing
//! a process concurrently would not replay byte for byte. Each worker is this binary run
//! with `--worker` on its own shard; it prints one machine-readable line per seed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
// Wall time only for the progress line and seeds/s: read between runs, outside every
// simulation, and never reaching a trace (simulations use tokio's paused clock).
use std::time::Instant as WallClock;

use clap::Args;
use zkit_sim::runner;

use super::report::{RunReport, ScenarioReport, SeedFailure};
use zkit_sim::scenario::Scenario;

/// `run` options.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario files, or directories (every `*.toml` except `regressions.toml`).
    #[arg(required = true)]
    scenarios: Vec<PathBuf>,
    /// How many seeds (N: 0..N) or which (A..B).
    #[arg(long, default_value = "10", value_parser = parse_seeds)]
    seeds: Range<u64>,
    /// Worker processes (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Run only shard I of N (1-based): the seeds s with (s - start) % N == I - 1.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<Shard>,
    /// Where failing seeds' traces go.
    #[arg(long, default_value = "target/zkit-sim")]
    pub(super) trace_dir: PathBuf,
    /// Also write a JUnit XML report here (one test case per scenario and seed range).
    #[arg(long, value_name = "FILE")]
    pub(super) junit: Option<PathBuf>,
    /// Also write a JSON report here (the summary, coverage and violations).
    #[arg(long, value_name = "FILE")]
    pub(super) json: Option<PathBuf>,
    /// Run against a real ZooKeeper ensemble (started with `scripts/zk` on loopback, behind
    /// fault proxies) instead of the simulation; `--seeds` does not apply, see `--runs`.
    #[arg(long)]
    real: bool,
    /// Real mode: how many runs of each scenario (run i draws its faults and targets as
    /// seed i would).
    #[arg(long, default_value = "1", value_parser = clap::value_parser!(u64).range(1..), requires = "real")]
    pub(super) runs: u64,
    /// Real mode: also run each scenario for this many simulated seeds and print the real
    /// and simulated figures side by side.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), requires = "real")]
    pub(super) compare_seeds: Option<u64>,
    /// Real mode: write each run's HTML timeline into this directory
    /// (`<scenario>-run<N>.html`).
    #[arg(long, value_name = "DIR", requires = "real")]
    pub(super) timeline: Option<PathBuf>,
    /// Internal: run in this process and print one machine line per seed.
    #[arg(long, hide = true)]
    worker: bool,
}

/// A shard of a seed range: the seeds whose offset is `index` modulo `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

fn parse_seeds(v: &str) -> Result<Range<u64>, String> {
    let bad = || format!("{v:?}: expected N (> 0) or A..B (A < B)");
    match v.split_once("..") {
        Some((a, b)) => {
            let a: u64 = a.parse().map_err(|_| bad())?;
            let b: u64 = b.parse().map_err(|_| bad())?;
            if a >= b {
                return Err(bad());
            }
            Ok(a..b)
        }
        None => match v.parse::<u64>() {
            Ok(n) if n > 0 => Ok(0..n),
            _ => Err(bad()),
        },
    }
}

fn parse_shard(v: &str) -> Result<Shard, String> {
    let bad = || format!("{v:?}: expected I/N with 1 <= I <= N");
    let (i, n) = v.split_once('/').ok_or_else(bad)?;
    let i: u64 = i.parse().map_err(|_| bad())?;
    let n: u64 = n.parse().map_err(|_| bad())?;
    if n == 0 || i == 0 || i > n {
        return Err(bad());
    }
    Ok(Shard {
        index: i - 1,
        count: n,
    })
}

/// What one seed gave, as a worker reports it.
#[derive(Debug, Clone, Default)]
pub(super) struct SeedResult {
    scenario: usize,
    seed: u64,
    violations: Vec<String>,
    fired: usize,
    skipped: usize,
    counts: BTreeMap<String, usize>,
}

impl SeedResult {
    /// What `outcome` (of scenario number `scenario`) gave.
    pub(super) fn of(scenario: usize, outcome: &runner::Outcome) -> SeedResult {
        SeedResult {
            scenario,
            seed: outcome.seed,
            violations: outcome.violations.iter().map(|v| v.to_string()).collect(),
            fired: outcome.coverage.faults_fired,
            skipped: outcome.coverage.faults_skipped,
            counts: outcome
                .coverage
                .by_kind
                .iter()
                .map(|(k, n)| (format!("fault:{k}"), *n))
                .chain(
                    outcome
                        .coverage
                        .counts
                        .iter()
                        .map(|(k, n)| ((*k).to_owned(), *n)),
                )
                .collect(),
        }
    }

    fn to_line(&self) -> String {
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        let mut line = format!(
            "seed\t{}\t{}\t{}\t{}\t{}",
            self.scenario,
            self.seed,
            self.fired,
            self.skipped,
            counts.join(",")
        );
        for v in &self.violations {
            line.push('\t');
            line.push_str(&v.replace(['\t', '\n'], " "));
        }
        line
    }

    fn from_line(line: &str) -> Option<SeedResult> {
        let mut parts = line.split('\t');
        if parts.next()? != "seed" {
            return None;
        }
        let scenario = parts.next()?.parse().ok()?;
        let seed = parts.next()?.parse().ok()?;
        let fired = parts.next()?.parse().ok()?;
        let skipped = parts.next()?.parse().ok()?;
        let counts = parts
            .next()?
            .split(',')
            .filter(|c| !c.is_empty())
            .filter_map(|c| {
                let (k, n) = c.split_once('=')?;
                Some((k.to_owned(), n.parse().ok()?))
            })
            .collect();
        Some(SeedResult {
            scenario,
            seed,
            violations: parts.map(str::to_owned).collect(),
            fired,
            skipped,
            counts,
        })
    }
}

/// The scenario files named by `paths` (directories expanded, sorted).
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries =
                std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "toml")
                        && p.file_name().is_some_and(|n| n != "regressions.toml")
                })
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// The seeds of `range` in `shard`.
fn shard_seeds(range: &Range<u64>, shard: Shard) -> impl Iterator<Item = u64> + '_ {
    range
        .clone()
        .filter(move |s| (s - range.start) % shard.count == shard.index)
}

/// Runs `zkit-sim run`.
pub fn run(args: RunArgs) -> ExitCode {
    let files = match expand(&args.scenarios) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("zkit-sim run: {e}");
            return ExitCode::from(2);
        }
    };
    let mut scenarios = Vec::new();
    for f in &files {
        match super::load(f) {
            Some(s) => scenarios.push(s),
            None => return ExitCode::from(2),
        }
    }
    if args.real {
        return super::real::run(&args, &scenarios, &files);
    }
    let shard = args.shard.unwrap_or(Shard { index: 0, count: 1 });
    if args.worker {
        return worker(&scenarios, &args.seeds, shard, &args.trace_dir);
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let per_scenario = shard_seeds(&args.seeds, shard).count();
    let total = per_scenario * scenarios.len();
    let started = WallClock::now();
    let (tx, rx) = mpsc::channel();
    let children = match spawn_workers(&files, &args, shard, jobs, tx) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("zkit-sim run: cannot start workers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut results: Vec<Vec<SeedResult>> = vec![Vec::new(); scenarios.len()];
    let mut done = 0;
    let tty = std::io::stderr().is_terminal();
    for r in rx {
        done += 1;
        if tty {
            let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
            eprint!("\r{}", progress(done, total, rate));
        }
        if let Some(slot) = results.get_mut(r.scenario) {
            slot.push(r);
        }
    }
    if tty {
        eprintln!();
    }
    let mut worker_failed = false;
    for mut child in children {
        worker_failed |= !child
            .wait()
            .is_ok_and(|s| s.success() || s.code() == Some(1));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut seeds = format!("{}..{}", args.seeds.start, args.seeds.end);
    if shard.count > 1 {
        let _ = write!(seeds, " shard {}/{}", shard.index + 1, shard.count);
    }
    let report = RunReport {
        scenarios: reports(
            &scenarios,
            &files,
            &mut results,
            &seeds,
            &args.trace_dir,
            false,
        ),
        elapsed_s: elapsed,
    };
    let failed = summary(&report);
    for (path, text) in [(&args.junit, report.junit()), (&args.json, report.json())] {
        if let Some(path) = path {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("zkit-sim run: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    let missing = total - results.iter().map(Vec::len).sum::<usize>();
    if missing > 0 || worker_failed {
        println!("{missing} seeds never reported: a worker died");
        return ExitCode::FAILURE;
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn progress(done: usize, total: usize, rate: f64) -> String {
    let width = 30;
    let filled = done * width / total.max(1);
    format!(
        "[{}{}] {done}/{total} seeds, {rate:.1} seeds/s",
        "#".repeat(filled),
        " ".repeat(width - filled)
    )
}

/// Starts `jobs` workers on sub-shards of `shard`; their results arrive on `tx`.
fn spawn_workers(
    files: &[PathBuf],
    args: &RunArgs,
    shard: Shard,
    jobs: usize,
    tx: mpsc::Sender<SeedResult>,
) -> std::io::Result<Vec<std::process::Child>> {
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for j in 0..jobs as u64 {
        let sub = Shard {
            index: shard.index + shard.count * j,
            count: shard.count * jobs as u64,
        };
        let mut cmd = Command::new(&exe);
        cmd.arg("run")
            .args(files)
            .arg("--seeds")
            .arg(format!("{}..{}", args.seeds.start, args.seeds.end))
            .arg("--shard")
            .arg(format!("{}/{}", sub.index + 1, sub.count))
            .arg("--trace-dir")
            .arg(&args.trace_dir)
            .arg("--worker")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn()?;
        if let Some(out) = child.stdout.take() {
            let tx = tx.clone();
            // Reads a worker's pipe; runs in the CLI process, outside every simulation.
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(r) = SeedResult::from_line(&line) {
                        if tx.send(r).is_err() {
                            break;
                        }
                    }
                }
            });
        }
        children.push(child);
    }
    Ok(children)
}

/// A worker: runs its shard in this process, one line per seed on stdout; writes failing
/// seeds' traces. Exit 1 if any seed failed.
fn worker(scenarios: &[Scenario], seeds: &Range<u64>, shard: Shard, trace_dir: &Path) -> ExitCode {
    let mut failed = false;
    let stdout = std::io::stdout();
    for (i, scenario) in scenarios.iter().enumerate() {
        for seed in shard_seeds(seeds, shard) {
            let outcome = runner::run(scenario, seed);
            let result = SeedResult::of(i, &outcome);
            if !outcome.passed() {
                failed = true;
                let file = trace_dir.join(trace_name(&scenario.name, seed));
                let written = std::fs::create_dir_all(trace_dir)
                    .and_then(|()| std::fs::write(&file, &outcome.trace));
                if let Err(e) = written {
                    eprintln!("zkit-sim run: cannot write {}: {e}", file.display());
                }
            }
            let mut out = stdout.lock();
            if writeln!(out, "{}", result.to_line())
                .and_then(|()| out.flush())
                .is_err()
            {
                return ExitCode::FAILURE;
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn trace_name(scenario: &str, seed: u64) -> String {
    format!("trace-{scenario}-{seed}.txt")
}

/// Each scenario's results summed up, with every failing seed's replay (and shrink) command.
pub(super) fn reports(
    scenarios: &[Scenario],
    files: &[PathBuf],
    results: &mut [Vec<SeedResult>],
    seeds: &str,
    trace_dir: &Path,
    real: bool,
) -> Vec<ScenarioReport> {
    let mut out = Vec::new();
    for ((scenario, file), rs) in scenarios.iter().zip(files).zip(results.iter_mut()) {
        rs.sort_by_key(|r| r.seed);
        let mut coverage: BTreeMap<String, usize> = BTreeMap::new();
        for r in rs.iter() {
            for (k, n) in &r.counts {
                *coverage.entry(k.clone()).or_default() += n;
            }
        }
        let failures = rs
            .iter()
            .filter(|r| !r.violations.is_empty())
            .map(|r| SeedFailure {
                seed: r.seed,
                violations: r.violations.clone(),
                replay: if real {
                    format!(
                        "real runs do not replay; trace and members' logs in {}",
                        super::real::failure_dir(trace_dir, &scenario.name, r.seed).display()
                    )
                } else {
                    format!(
                        "cargo run --release -p zkit-sim -- replay {} --seed {} --trace {}",
                        file.display(),
                        r.seed,
                        trace_dir.join(trace_name(&scenario.name, r.seed)).display()
                    )
                },
                shrink: (scenario.swarm.is_some() && !real).then(|| {
                    format!(
                        "cargo run --release -p zkit-sim -- shrink {} --seed {}",
                        file.display(),
                        r.seed
                    )
                }),
            })
            .collect();
        out.push(ScenarioReport {
            name: scenario.name.clone(),
            file: file.display().to_string(),
            seeds: seeds.to_owned(),
            runs: rs.len(),
            faults: (
                rs.iter().map(|r| r.fired).sum(),
                rs.iter().map(|r| r.skipped).sum(),
            ),
            coverage,
            failures,
        });
    }
    out
}

/// Prints the summary table and each failure's replay command; true if any seed failed.
pub(super) fn summary(report: &RunReport) -> bool {
    let width = report
        .scenarios
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(8)
        .max(8);
    println!(
        "{:width$}  {:>6}  {:>6}  {:>6}  {:>7}",
        "scenario", "seeds", "failed", "faults", "skipped"
    );
    let mut any_failed = false;
    let mut seeds = 0;
    for s in &report.scenarios {
        seeds += s.runs;
        println!(
            "{:width$}  {:>6}  {:>6}  {:>6}  {:>7}",
            s.name,
            s.runs,
            s.failures.len(),
            s.faults.0,
            s.faults.1,
        );
        let counts: Vec<String> = s.coverage.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!("{:width$}  coverage: {}", "", counts.join(", "));
        for f in &s.failures {
            any_failed = true;
            for v in f.violations.iter().take(3) {
                println!("  seed {}: {v}", f.seed);
            }
            println!("  replay: {}", f.replay);
            if let Some(shrink) = &f.shrink {
                println!("  shrink: {shrink}");
            }
        }
    }
    println!(
        "{seeds} seeds in {:.1} s ({:.1} seeds/s)",
        report.elapsed_s,
        seeds as f64 / report.elapsed_s.max(1e-9)
    );
    any_failed
}
