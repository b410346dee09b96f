//! The runner: a seed -> a turmoil `Sim` (fixed epoch, `rng_seed` from the seed) with the
//! scenario's ensemble and client hosts -> the fault schedule (the timeline plus the seed's
//! swarm draw) applied between steps -> the checkers over the history -> an [`Outcome`]:
//! violations, coverage and a deterministic trace. The same scenario and seed give the same
//! trace, byte for byte.
//!
//! - `faults`: resolving targets and applying (and undoing) each fault kind;
//! - `coverage`: what a run exercised ([`Coverage`]).

mod coverage;
mod faults;
pub mod real;
mod world;

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use self::coverage::Coverage;
use self::faults::Faults;
use self::world::{SimWorld, World};
use crate::check::{self, Finding, Violation};
use crate::ensemble::{Ensemble, EnsembleConfig};
use crate::history::{Event, History, Record};
use crate::scenario::{Fault, Scenario};
use crate::server::ServerConfig;
use crate::workload::{self, ClientSpec};

/// The fixed start of simulated time (2024-01-01T00:00:00Z).
pub const EPOCH_SECS: u64 = 1_704_067_200;

/// How long the runner waits for a leader before the workload starts, and for a fault's
/// target to exist (a lock holder, a leader) before skipping the fault.
const WAIT: Duration = Duration::from_secs(10);

/// The rand_chacha stream (of the seed) that draws swarm schedules and random targets.
const FAULT_STREAM: u64 = 1 << 62;

/// What a client host runs: the scenario's role (the default), or a replacement, e.g. a
/// deliberately broken recipe in a sensitivity test.
pub type ClientBody =
    Rc<dyn Fn(ClientSpec, u32) -> Pin<Box<dyn Future<Output = workload::Result>>>>;

/// How to run a seed, beyond the scenario.
#[derive(Clone, Default)]
pub struct Options {
    /// Use this fault schedule instead of the scenario's timeline and swarm draw (what
    /// `shrink` does).
    pub faults: Option<Vec<Fault>>,
    /// Run this instead of the scenario's roles on every client host.
    pub body: Option<ClientBody>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("faults", &self.faults)
            .field("body", &self.body.as_ref().map(|_| "custom"))
            .finish()
    }
}

/// What one seed of one scenario gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// Every violation found (empty: the run passed).
    pub violations: Vec<Violation>,
    /// Anomalies a fault made expected (a paused or killed holder's overlap, covered by
    /// fencing): reported, never failing the run.
    pub findings: Vec<Finding>,
    /// The trace: the history, then the servers' event log.
    pub trace: String,
    /// The history's records (what the trace renders).
    pub records: Vec<Record>,
    /// The servers' event log lines (the trace's second part).
    pub server_events: Vec<String>,
    /// The fault schedule the seed ran (timeline plus swarm draw).
    pub schedule: Vec<Fault>,
    /// What the run exercised.
    pub coverage: Coverage,
    /// How many times a client acquired the lock.
    pub acquisitions: usize,
    /// Fenced writes accepted and rejected.
    pub writes: (u64, u64),
}

impl Outcome {
    /// Whether no checker found a violation.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// The fault schedule seed `seed` of `scenario` runs: its timeline merged with the seed's
/// swarm draw, sorted by time (timeline first among equal times).
pub fn schedule(scenario: &Scenario, seed: u64) -> Vec<Fault> {
    let mut faults = scenario.faults.clone();
    if let Some(swarm) = &scenario.swarm {
        let mut rng = fault_rng(seed);
        faults.extend(swarm.schedule(scenario.targets(), &mut rng));
        faults.sort_by_key(|f| f.at);
    }
    faults
}

/// The seed's fault stream. The schedule draws first, then target resolution continues the
/// stream on a second, independent stream.
fn fault_rng(seed: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(FAULT_STREAM);
    rng
}

/// Runs `scenario` with `seed`.
pub fn run(scenario: &Scenario, seed: u64) -> Outcome {
    run_with(scenario, seed, &Options::default())
}

/// Runs `scenario` with `seed` and `options`.
pub fn run_with(scenario: &Scenario, seed: u64, options: &Options) -> Outcome {
    let schedule = options
        .faults
        .clone()
        .unwrap_or_else(|| schedule(scenario, seed));
    let ens = Ensemble::new(EnsembleConfig {
        servers: scenario.servers,
        seed,
        sync_limit: scenario.sync_limit,
        init_limit: scenario.init_limit,
        read_only: scenario.read_only,
        server: ServerConfig {
            tick_time: scenario.tick,
            ..EnsembleConfig::default().server
        },
        ..EnsembleConfig::default()
    });
    let sim = turmoil::Builder::new()
        .epoch(UNIX_EPOCH + Duration::from_secs(EPOCH_SECS))
        .rng_seed(seed)
        .min_message_latency(scenario.latency.0)
        .max_message_latency(scenario.latency.1)
        .fail_rate(scenario.loss)
        .tick_duration(scenario.step)
        .simulation_duration(scenario.duration + WAIT * 4)
        .build();
    let graveyard = tokio::runtime::Builder::new_current_thread().build().ok();
    if let Some(rt) = &graveyard {
        align_task_ids(rt);
    }
    let world = SimWorld {
        sim,
        ens,
        scenario: scenario.clone(),
        body: options.body.clone(),
        graveyard,
    };
    let mut run = Run::new(scenario, seed, world);
    run.go(seed, &schedule);
    let (outcome, world) = run.finish(seed, schedule);
    let SimWorld { sim, graveyard, .. } = world;
    let _context = graveyard.as_ref().map(|rt| rt.enter());
    drop(sim);
    outcome
}

/// Task ids are process-wide in tokio and a runtime files its tasks in shards by id, so the
/// order in which a crashed host's tasks are dropped (and its sockets closed) depended on how
/// many tasks earlier simulations in the process had spawned: a seed replayed alone gave
/// another trace. Spawning idle tasks on the graveyard until the next id is a multiple of
/// [`TASK_ID_ALIGN`] gives every run the same ids modulo that.
fn align_task_ids(rt: &tokio::runtime::Runtime) {
    for _ in 0..TASK_ID_ALIGN {
        let id = rt.spawn(async {}).id();
        if id
            .to_string()
            .parse::<u64>()
            .is_ok_and(|n| (n + 1) % TASK_ID_ALIGN == 0)
        {
            return;
        }
    }
}

/// See [`align_task_ids`]: a multiple of every shard count tokio uses.
const TASK_ID_ALIGN: u64 = 1 << 16;

/// One seed (or one real run) in progress.
pub(crate) struct Run<'s, W> {
    scenario: &'s Scenario,
    world: W,
    history: History,
    faults: Faults,
    violations: Vec<Violation>,
}

impl<'s, W: World> Run<'s, W> {
    fn new(scenario: &'s Scenario, seed: u64, world: W) -> Run<'s, W> {
        Run::with_history(scenario, seed, world, History::new())
    }

    fn with_history(scenario: &'s Scenario, seed: u64, world: W, history: History) -> Run<'s, W> {
        let mut target_rng = fault_rng(seed);
        target_rng.set_stream(FAULT_STREAM + 1);
        Run {
            scenario,
            world,
            history,
            faults: Faults::new(target_rng),
            violations: Vec::new(),
        }
    }

    fn note(&self, what: String) {
        self.history.record_at(
            self.world.elapsed(),
            Event::Note {
                who: "runner".to_owned(),
                what,
            },
        );
    }

    /// Steps once; false (with a violation) if the simulation failed.
    fn step(&mut self) -> bool {
        match self.world.step() {
            Ok(()) => true,
            Err(message) => {
                self.violations.push(Violation {
                    checker: "simulation",
                    at: self.world.elapsed(),
                    message,
                });
                false
            }
        }
    }

    /// Steps until `ready` gives something, at most [`WAIT`] and not past `end`.
    fn wait_for<T>(
        &mut self,
        end: Duration,
        mut ready: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<T> {
        let until = (self.world.elapsed() + WAIT).min(end);
        loop {
            if let Some(t) = ready(self) {
                return Some(t);
            }
            // Faults in force keep their schedule while a target is awaited.
            self.undo_due();
            if self.world.elapsed() >= until || !self.step() {
                return None;
            }
        }
    }

    fn go(&mut self, seed: u64, schedule: &[Fault]) {
        self.world.start(&self.history);
        if self.wait_for(Duration::MAX, |r| r.world.leader()).is_none() {
            self.violations.push(Violation {
                checker: "simulation",
                at: self.world.elapsed(),
                message: "no leader elected before the workload".to_owned(),
            });
            return;
        }
        let start = self.world.elapsed();
        self.note(format!("leader elected; workload starts (seed {seed})"));
        let hosts = self.world.connect_string();
        let real = self.history.is_real_time();
        let mut client = 0;
        for workload in &self.scenario.workloads {
            for _ in 0..workload.count {
                client += 1;
                self.world.start_client(ClientSpec {
                    client,
                    workload: workload.clone(),
                    hosts: hosts.clone(),
                    session_timeout: self.scenario.session_timeout,
                    seed,
                    history: self.history.clone(),
                    real,
                });
            }
        }
        let end = start + self.scenario.duration;
        // A real world acts a little after a fault's planned end; the run goes on that much
        // longer, so the liveness window after the last fault still fits.
        let run_until = end + self.world.overrun();
        let mut pending = schedule.iter().peekable();
        while self.world.elapsed() < run_until {
            while let Some(f) = pending.next_if(|f| start + f.at <= self.world.elapsed()) {
                self.fire(f, start + f.at, end);
            }
            self.undo_due();
            if !self.step() {
                return;
            }
        }
    }

    /// The outcome, and the world (what the caller must drop with care).
    fn finish(mut self, seed: u64, schedule: Vec<Fault>) -> (Outcome, W) {
        self.note("end of run".to_owned());
        let records = self.history.records();
        let mut violations = std::mem::take(&mut self.violations);
        let report = check::report(&records, self.scenario);
        violations.extend(report.violations);
        let findings = report.findings;
        violations.extend(self.world.check().into_iter().map(|message| Violation {
            checker: "ensemble",
            at: self.world.elapsed(),
            message,
        }));
        let mut coverage = Coverage::of(&records, &self.faults);
        if !findings.is_empty() {
            coverage
                .counts
                .insert("expected overlaps (fenced)", findings.len());
        }
        if !schedule.is_empty() && coverage.faults_fired == 0 {
            violations.push(Violation {
                checker: "coverage",
                at: self.world.elapsed(),
                message: format!(
                    "none of the {} scheduled faults fired (every target was missing)",
                    schedule.len()
                ),
            });
        }
        let acquisitions = records
            .iter()
            .filter(|r| matches!(r.event, Event::Acquired { .. }))
            .count();
        let mut trace = self.history.render();
        for f in &findings {
            let _ = writeln!(trace, "finding: {f}");
        }
        trace.push_str("-- servers --\n");
        let server_events = self.world.events();
        for e in &server_events {
            let _ = writeln!(trace, "{e}");
        }
        let outcome = Outcome {
            seed,
            violations,
            findings,
            trace,
            records,
            server_events,
            schedule,
            coverage,
            acquisitions,
            writes: self.history.resource().counts(),
        };
        (outcome, self.world)
    }
}
