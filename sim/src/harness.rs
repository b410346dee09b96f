//! The harness for a downstream crate's tests: run your own async code as client roles in
//! a scenario, against the simulated ensemble and its faults, over a seed budget, with the
//! built-in checkers and your own invariants.
//!
//! ```no_run
//! use zkit_sim::history::{Event, Record};
//! use zkit_sim::check::Violation;
//!
//! fn no_double_run(records: &[Record]) -> Vec<Violation> {
//!     Vec::new() // look at the `Event::User` records your role made
//! }
//!
//! zkit_sim::check("tests/my_scenario.toml") // or the scenario's TOML text
//!     .role("my-scheduler", |zk, _rng, rec| async move {
//!         rec.record("job-start", 1);
//!         let _ = zk.exists("/").await;
//!         Ok(())
//!     })
//!     .invariant(no_double_run)
//!     .seeds(20)
//!     .run();
//! ```
//!
//! A scenario's `[[workload]]` names a registered role with `role = "my-scheduler"`, and a
//! fault may target its clients with `target = "role:my-scheduler"`; a role the scenario
//! names that is neither built in nor registered is an error at its position in the file.
//!
//! Seeds: `0..n` from [`Check::seeds`] (default [`DEFAULT_SEEDS`]), unless `ZKIT_SEEDS` says
//! `N` (seeds `0..N`) or `A..B`; `ZKIT_SHARD=I/N` runs shard I of N of them (the seeds whose
//! offset from the start is I-1 modulo N), as `zkit-sim run --shard` does. The first failing
//! seed stops the run: [`Check::run`] panics with the violations and the command that
//! replays that seed, and the seed's trace, scenario and timeline page are written under
//! `target/zkit-sim/` (`$CARGO_TARGET_DIR/zkit-sim/`).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Mutex, PoisonError};

use rand_chacha::ChaCha8Rng;
use zkit::Client;

use crate::check::Violation;
use crate::history::Record;
use crate::runner::{self, ClientBody, Coverage, Options, Outcome};
use crate::scenario::{self, Role, Scenario, ScenarioError};
use crate::timeline;
use crate::workload::user::{self, Recorder, UserRole};
use crate::workload::{self, ClientSpec};

/// Seeds run when neither [`Check::seeds`] nor `ZKIT_SEEDS` says how many.
pub const DEFAULT_SEEDS: u64 = 20;

/// Held while a seed runs (see `Check::seed`: parallel tests).
static ONE_SEED_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A user invariant: the run's history in, its violations out (reported like the built-in
/// checkers', failing the seed).
pub type Invariant = Rc<dyn Fn(&[Record]) -> Vec<Violation>>;

/// Starts a check of a scenario: `scenario` is a path to a TOML file (a single line ending
/// in `.toml`, relative to the test's working directory, the crate's root under `cargo
/// test`) or the scenario's TOML text itself.
pub fn check(scenario: &str) -> Check {
    Check {
        source: scenario.to_owned(),
        roles: BTreeMap::new(),
        invariants: Vec::new(),
        seeds: None,
        trace_dir: None,
    }
}

/// A check being set up; [`Check::run`] (or [`Check::try_run`]) runs it.
#[must_use = "a check does nothing until it is run"]
pub struct Check {
    source: String,
    roles: BTreeMap<&'static str, UserRole>,
    invariants: Vec<Invariant>,
    seeds: Option<u64>,
    trace_dir: Option<PathBuf>,
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Check")
            .field("source", &self.source)
            .field("roles", &self.roles.keys().collect::<Vec<_>>())
            .field("invariants", &self.invariants.len())
            .field("seeds", &self.seeds)
            .field("trace_dir", &self.trace_dir)
            .finish()
    }
}

/// Why a check did not pass.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The scenario could not be read or is invalid (an unknown role, say), with where.
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    /// `ZKIT_SEEDS` or `ZKIT_SHARD` could not be understood.
    #[error("{0}")]
    Env(String),
    /// A seed failed.
    #[error("{0}")]
    Failed(Box<Caught>),
}

/// A failing seed.
#[derive(Debug)]
pub struct Caught {
    /// The scenario's name.
    pub scenario: String,
    /// Where the scenario came from (its path, or `<inline>`).
    pub source: String,
    /// The seed's whole outcome (violations first).
    pub outcome: Outcome,
    /// Where its trace was written, if it could be.
    pub trace: Option<PathBuf>,
    /// Where its timeline page was written, if it could be.
    pub timeline: Option<PathBuf>,
    /// Where the scenario with this seed's fault schedule as its timeline (no swarm) was
    /// written, if it could be.
    pub schedule: Option<PathBuf>,
    /// How to replay it.
    pub replay: String,
}

impl fmt::Display for Caught {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "zkit-sim: seed {} of scenario {} ({}) failed:",
            self.outcome.seed, self.scenario, self.source
        )?;
        for v in self.outcome.violations.iter().take(10) {
            writeln!(f, "  {v}")?;
        }
        if self.outcome.violations.len() > 10 {
            writeln!(f, "  ... {} more", self.outcome.violations.len() - 10)?;
        }
        if let Some(t) = &self.trace {
            writeln!(f, "trace: {}", t.display())?;
        }
        if let Some(t) = &self.timeline {
            writeln!(f, "timeline: {}", t.display())?;
        }
        if let Some(t) = &self.schedule {
            writeln!(f, "this seed's faults as a scenario: {}", t.display())?;
        }
        write!(f, "replay: {}", self.replay)
    }
}

/// What a passing check ran.
#[derive(Debug, Clone)]
pub struct Passed {
    /// The scenario's name.
    pub scenario: String,
    /// The seeds run.
    pub seeds: Vec<u64>,
    /// What they exercised, added up.
    pub coverage: Coverage,
}

impl Check {
    /// Registers the user role `name` (what `role = "name"` in the scenario runs): an async
    /// function of a connected client, the incarnation's seeded random stream and a
    /// [`Recorder`]. It runs once per start of each of the role's client hosts. The client
    /// is connected through the simulated network to the scenario's ensemble, renews an
    /// expired session by itself, and its state changes and sessions are in the history
    /// (what the connection-policy and session checkers read). When the function returns
    /// `Ok` the harness closes the session; an `Err` fails the seed.
    ///
    /// # Panics
    /// If `name` is a built-in role's, or empty.
    pub fn role<F, Fut>(mut self, name: &str, f: F) -> Check
    where
        F: Fn(Client, ChaCha8Rng, Recorder) -> Fut + 'static,
        Fut: Future<Output = workload::Result> + 'static,
    {
        assert!(
            !name.is_empty() && Role::builtin(name).is_none(),
            "user role {name:?}: the name is empty or a built-in role's"
        );
        let Role::User(name) = Role::user(name) else {
            unreachable!("Role::user makes user roles")
        };
        self.roles.insert(name, user::user_role(f));
        self
    }

    /// Adds an invariant over each seed's history (its violations fail the seed).
    pub fn invariant(mut self, f: impl Fn(&[Record]) -> Vec<Violation> + 'static) -> Check {
        self.invariants.push(Rc::new(f));
        self
    }

    /// Runs seeds `0..n` (unless `ZKIT_SEEDS` says otherwise).
    pub fn seeds(mut self, n: u64) -> Check {
        self.seeds = Some(n);
        self
    }

    /// Writes failing seeds' traces under `dir` instead of `target/zkit-sim/`.
    pub fn trace_dir(mut self, dir: impl Into<PathBuf>) -> Check {
        self.trace_dir = Some(dir.into());
        self
    }

    /// The scenario, parsed with the registered roles.
    pub fn scenario(&self) -> Result<Scenario, ScenarioError> {
        let names: Vec<&str> = self.roles.keys().copied().collect();
        let source = self.source.trim();
        if !source.contains('\n') && source.ends_with(".toml") {
            scenario::load_with(Path::new(source), &names)
        } else {
            scenario::parse_with("<inline>", "inline", &self.source, &names)
        }
    }

    /// Runs the seed budget; stops at the first failing seed.
    pub fn try_run(&self) -> Result<Passed, CheckError> {
        let scenario = self.scenario()?;
        let range = seed_range(std::env::var("ZKIT_SEEDS").ok().as_deref(), self.seeds)
            .map_err(CheckError::Env)?;
        let (index, count) =
            shard(std::env::var("ZKIT_SHARD").ok().as_deref()).map_err(CheckError::Env)?;
        let options = Options {
            faults: None,
            body: Some(self.body()),
        };
        let mut passed = Passed {
            scenario: scenario.name.clone(),
            seeds: Vec::new(),
            coverage: Coverage::default(),
        };
        for seed in range.clone().filter(|s| (s - range.start) % count == index) {
            let outcome = self.seed(&scenario, seed, &options);
            if !outcome.passed() {
                return Err(CheckError::Failed(Box::new(
                    self.caught(&scenario, outcome),
                )));
            }
            tracing::debug!(scenario = %scenario.name, seed, "seed passed");
            passed.coverage.add(&outcome.coverage);
            passed.seeds.push(seed);
        }
        Ok(passed)
    }

    /// Runs one seed (whatever the seed budget and the environment say) and returns its
    /// whole outcome, the invariants' violations included: for looking at a seed's trace
    /// from a test.
    pub fn run_seed(&self, seed: u64) -> Result<Outcome, ScenarioError> {
        let scenario = self.scenario()?;
        let options = Options {
            faults: None,
            body: Some(self.body()),
        };
        Ok(self.seed(&scenario, seed, &options))
    }

    /// Runs `seed` of `scenario`, then the invariants over its history. One seed at a time
    /// in the process: tokio numbers tasks process-wide and the runner aligns the numbers
    /// at the start of a run, so two checks running in parallel test threads would make
    /// each other's traces depend on timing.
    fn seed(&self, scenario: &Scenario, seed: u64, options: &Options) -> Outcome {
        let _one_at_a_time = ONE_SEED_AT_A_TIME
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut outcome = runner::run_with(scenario, seed, options);
        for invariant in &self.invariants {
            outcome.violations.extend(invariant(&outcome.records));
        }
        outcome
    }

    /// Runs the seed budget like [`Check::try_run`].
    ///
    /// # Panics
    /// On an invalid scenario or environment, and on the first failing seed (with its
    /// violations, where its trace was written and how to replay it).
    pub fn run(&self) -> Passed {
        match self.try_run() {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    /// Every client host's body: the registered code for a user role, the built-in role
    /// otherwise.
    fn body(&self) -> ClientBody {
        let roles = self.roles.clone();
        Rc::new(move |spec: ClientSpec, incarnation: u32| {
            let role = match spec.workload.role {
                Role::User(name) => roles.get(name).cloned(),
                _ => None,
            };
            Box::pin(async move {
                match role {
                    Some(role) => user::run(spec, incarnation, role).await,
                    None => workload::run(spec, incarnation).await,
                }
            })
        })
    }

    /// The failure report of `outcome`, its files written.
    fn caught(&self, scenario: &Scenario, outcome: Outcome) -> Caught {
        let dir = self.trace_dir.clone().unwrap_or_else(default_trace_dir);
        let stem = format!("{}-seed{}", file_safe(&scenario.name), outcome.seed);
        let mut trace_text = outcome.trace.clone();
        for v in &outcome.violations {
            trace_text.push_str(&format!("violation: {v}\n"));
        }
        let write = |name: String, text: &str| {
            let path = dir.join(name);
            std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(&path, text))
                .map(|()| path)
                .map_err(|e| tracing::warn!(dir = %dir.display(), "cannot write: {e}"))
                .ok()
        };
        let trace = write(format!("{stem}.trace"), &trace_text);
        let timeline = write(
            format!("{stem}.html"),
            &timeline::render(scenario, &outcome),
        );
        let schedule = write(
            format!("{stem}.toml"),
            &scenario.to_toml_with(&outcome.schedule),
        );
        let test = std::thread::current()
            .name()
            .filter(|n| *n != "main")
            .map(|n| format!(" -- --exact {n}"))
            .unwrap_or_default();
        let package = std::env::var("CARGO_PKG_NAME").ok();
        let target = test_target(package.as_deref());
        let package = package.map(|p| format!(" -p {p}")).unwrap_or_default();
        let replay = format!(
            "ZKIT_SEEDS={}..{} cargo test{package}{target}{test} (scenario {})",
            outcome.seed,
            outcome.seed + 1,
            self.source_name(),
        );
        Caught {
            scenario: scenario.name.clone(),
            source: self.source_name(),
            outcome,
            trace,
            timeline,
            schedule,
            replay,
        }
    }

    fn source_name(&self) -> String {
        let source = self.source.trim();
        if !source.contains('\n') && source.ends_with(".toml") {
            source.to_owned()
        } else {
            "<inline>".to_owned()
        }
    }
}

/// `target/zkit-sim`: under `CARGO_TARGET_DIR` if set, else the `target` directory the
/// running test binary is in (`target/debug/deps/...`), else `./target`.
fn default_trace_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("zkit-sim");
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|a| a.file_name().is_some_and(|n| n == "deps"))
                .and_then(|deps| deps.parent()?.parent().map(Path::to_path_buf))
        })
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("zkit-sim")
}

/// The running test binary as a `cargo test` target option: ` --test NAME` for an
/// integration test (its executable is `NAME-HASH`), ` --lib` for the package's own unit
/// tests, nothing if unknown.
fn test_target(package: Option<&str>) -> String {
    let Some(stem) = std::env::current_exe().ok().and_then(|exe| {
        let stem = exe.file_stem()?.to_str()?.to_owned();
        Some(
            stem.rsplit_once('-')
                .map_or(stem.clone(), |(s, _)| s.to_owned()),
        )
    }) else {
        return String::new();
    };
    match package {
        Some(p) if p.replace('-', "_") == stem => " --lib".to_owned(),
        _ => format!(" --test {stem}"),
    }
}

/// A name safe in a file name.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The seeds: `ZKIT_SEEDS` (`N` or `A..B`) if set, else `0..default` ([`DEFAULT_SEEDS`]).
pub fn seed_range(env: Option<&str>, default: Option<u64>) -> Result<Range<u64>, String> {
    let Some(v) = env.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(0..default.unwrap_or(DEFAULT_SEEDS));
    };
    let bad = || format!("ZKIT_SEEDS={v:?}: write N (seeds 0..N) or A..B");
    match v.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (
                a.parse::<u64>().map_err(|_| bad())?,
                b.parse::<u64>().map_err(|_| bad())?,
            );
            if a >= b {
                return Err(bad());
            }
            Ok(a..b)
        }
        None => v.parse::<u64>().map(|n| 0..n).map_err(|_| bad()),
    }
}

/// `ZKIT_SHARD=I/N` (1-based I) as (I-1, N); (0, 1) when unset.
pub fn shard(env: Option<&str>) -> Result<(u64, u64), String> {
    let Some(v) = env.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok((0, 1));
    };
    let bad = || format!("ZKIT_SHARD={v:?}: write I/N with 1 <= I <= N");
    let (i, n) = v.split_once('/').ok_or_else(bad)?;
    let (i, n) = (
        i.parse::<u64>().map_err(|_| bad())?,
        n.parse::<u64>().map_err(|_| bad())?,
    );
    if i == 0 || n == 0 || i > n {
        return Err(bad());
    }
    Ok((i - 1, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_and_shards_from_the_environment() {
        assert_eq!(seed_range(None, Some(5)), Ok(0..5));
        assert_eq!(seed_range(None, None), Ok(0..DEFAULT_SEEDS));
        assert_eq!(seed_range(Some("7"), Some(5)), Ok(0..7));
        assert_eq!(seed_range(Some("3..9"), None), Ok(3..9));
        assert!(seed_range(Some("9..3"), None).is_err());
        assert!(seed_range(Some("x"), None).is_err());
        assert_eq!(shard(None), Ok((0, 1)));
        assert_eq!(shard(Some("2/4")), Ok((1, 4)));
        assert!(shard(Some("0/4")).is_err());
        assert!(shard(Some("5/4")).is_err());
    }
}
