//! The runner: a seed -> a turmoil `Sim` (fixed epoch, `rng_seed` from the seed) with the
//! scenario's ensemble and client hosts -> the fault timeline applied between steps ->
//! the checkers over the history -> an [`Outcome`]: violations plus a deterministic trace.
//! The same scenario and seed give the same trace, byte for byte.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use crate::check::{self, Violation};
use crate::ensemble::{Ensemble, EnsembleConfig};
use crate::history::{Event, History};
use crate::scenario::{Fault, FaultKind, Scenario, Target};
use crate::server::ServerConfig;
use crate::workload::{self, ClientSpec};

/// The fixed start of simulated time (2024-01-01T00:00:00Z).
pub const EPOCH_SECS: u64 = 1_704_067_200;

/// How long the runner waits for a leader before the workload starts, and for a fault's
/// target to exist (a lock holder, a leader) before skipping the fault.
const WAIT: Duration = Duration::from_secs(10);

/// What one seed of one scenario gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// Every violation found (empty: the run passed).
    pub violations: Vec<Violation>,
    /// The trace: the history, then the servers' event log.
    pub trace: String,
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

/// A host a fault resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Host {
    Client(usize),
    Server(u8),
}

impl Host {
    fn name(self) -> String {
        match self {
            Host::Client(n) => format!("c{n}"),
            Host::Server(id) => Ensemble::host(id),
        }
    }
}

struct Run<'a, 's> {
    scenario: &'s Scenario,
    sim: turmoil::Sim<'a>,
    ens: Ensemble,
    history: History,
    /// The host each target last resolved to by a crash (what `restart` of it means).
    crashed: BTreeMap<Target, Host>,
    partitioned: Vec<(String, String)>,
    /// Client hosts crashed and not restarted.
    down: BTreeSet<usize>,
    violations: Vec<Violation>,
    /// A runtime that is never driven, entered while a client host's software is dropped
    /// (a crash, the end of the run): zkit's guards spawn their clean-up from `Drop`, which
    /// needs a runtime context; what they spawn there never runs.
    graveyard: Option<tokio::runtime::Runtime>,
}

/// Runs `scenario` with `seed`.
pub fn run(scenario: &Scenario, seed: u64) -> Outcome {
    let ens = Ensemble::new(EnsembleConfig {
        servers: scenario.servers,
        seed,
        server: ServerConfig {
            tick_time: scenario.tick,
            ..EnsembleConfig::default().server
        },
        ..EnsembleConfig::default()
    });
    let sim = turmoil::Builder::new()
        .epoch(UNIX_EPOCH + Duration::from_secs(EPOCH_SECS))
        .rng_seed(seed)
        .simulation_duration(scenario.duration + WAIT * 4)
        .build();
    let mut run = Run {
        scenario,
        sim,
        ens,
        history: History::new(),
        crashed: BTreeMap::new(),
        partitioned: Vec::new(),
        down: BTreeSet::new(),
        violations: Vec::new(),
        graveyard: tokio::runtime::Builder::new_current_thread().build().ok(),
    };
    if let Some(rt) = &run.graveyard {
        align_task_ids(rt);
    }
    run.go(seed);
    let (outcome, sim, graveyard) = run.finish(seed);
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

impl<'a> Run<'a, '_> {
    fn note(&self, what: String) {
        self.history.record_at(
            self.sim.elapsed(),
            Event::Note {
                who: "runner".to_owned(),
                what,
            },
        );
    }

    fn fault(&self, what: String) {
        self.history
            .record_at(self.sim.elapsed(), Event::Fault { what });
    }

    /// Steps once; false (with a violation) if the simulation failed.
    fn step(&mut self) -> bool {
        match self.sim.step() {
            Ok(_) => true,
            Err(e) => {
                self.violations.push(Violation {
                    checker: "simulation",
                    at: self.sim.elapsed(),
                    message: e.to_string(),
                });
                false
            }
        }
    }

    /// Steps until `ready` gives something, at most [`WAIT`] and not past `end`.
    fn wait_for<T>(&mut self, end: Duration, ready: impl Fn(&Self) -> Option<T>) -> Option<T> {
        let until = (self.sim.elapsed() + WAIT).min(end);
        loop {
            if let Some(t) = ready(self) {
                return Some(t);
            }
            if self.sim.elapsed() >= until || !self.step() {
                return None;
            }
        }
    }

    fn go(&mut self, seed: u64) {
        self.ens.register(&mut self.sim);
        let never = Duration::MAX;
        if self.wait_for(never, |r| r.ens.leader()).is_none() {
            self.violations.push(Violation {
                checker: "simulation",
                at: self.sim.elapsed(),
                message: "no leader elected before the workload".to_owned(),
            });
            return;
        }
        let start = self.sim.elapsed();
        self.note(format!("leader elected; workload starts (seed {seed})"));
        let hosts = self.ens.connect_string();
        let mut client = 0;
        for workload in &self.scenario.workloads {
            for _ in 0..workload.count {
                client += 1;
                let spec = ClientSpec {
                    client,
                    workload: workload.clone(),
                    hosts: hosts.clone(),
                    session_timeout: self.scenario.session_timeout,
                    seed,
                    history: self.history.clone(),
                };
                let incarnations = Rc::new(Cell::new(0u32));
                self.sim.host(spec.host(), move || {
                    let incarnation = incarnations.get();
                    incarnations.set(incarnation + 1);
                    workload::run(spec.clone(), incarnation)
                });
            }
        }
        let end = start + self.scenario.duration;
        let mut faults = self.scenario.faults.iter().peekable();
        while self.sim.elapsed() < end {
            while let Some(f) = faults.next_if(|f| start + f.at <= self.sim.elapsed()) {
                self.fire(f, end);
            }
            if !self.step() {
                return;
            }
        }
    }

    fn resolve(&mut self, fault: &Fault, target: Target, end: Duration) -> Option<Host> {
        if fault.kind == FaultKind::Restart {
            if let Some(h) = self.crashed.get(&target) {
                return Some(*h);
            }
        }
        match target {
            Target::Client(n) => Some(Host::Client(n)),
            Target::Server(id) => Some(Host::Server(id)),
            Target::LockHolder => self.wait_for(end, |r| {
                r.history.holders().keys().next().map(|&c| Host::Client(c))
            }),
            Target::LeaderServer => self.wait_for(end, |r| r.ens.leader().map(Host::Server)),
        }
    }

    fn fire(&mut self, fault: &Fault, end: Duration) {
        let Some(target) = fault.target else {
            // Heal: repair every partition made so far.
            let pairs = std::mem::take(&mut self.partitioned);
            for (a, b) in &pairs {
                self.sim.repair(a.as_str(), b.as_str());
            }
            self.fault(format!("heal ({} links repaired)", pairs.len()));
            return;
        };
        let Some(host) = self.resolve(fault, target, end) else {
            self.note(format!(
                "{:?} {target} skipped: no such host now",
                fault.kind
            ));
            return;
        };
        let name = host.name();
        match fault.kind {
            FaultKind::Heal => {}
            FaultKind::Partition => {
                let servers = (1..=self.scenario.servers).map(Ensemble::host);
                let peers: Vec<String> = match host {
                    Host::Client(_) => servers.collect(),
                    Host::Server(id) => servers
                        .filter(|s| *s != Ensemble::host(id))
                        .chain((1..=self.scenario.client_count()).map(|c| format!("c{c}")))
                        .collect(),
                };
                for peer in peers {
                    self.sim.partition(name.as_str(), peer.as_str());
                    self.partitioned.push((name.clone(), peer));
                }
                self.fault(format!("partition {target} = {name} from everyone"));
            }
            FaultKind::Crash => {
                if let Host::Client(c) = host {
                    if self.down.contains(&c) {
                        self.note(format!("crash {target} skipped: {name} is down"));
                        return;
                    }
                }
                self.crashed.insert(target, host);
                self.fault(format!("crash {target} = {name}"));
                match host {
                    Host::Client(c) => {
                        let _context = self.graveyard.as_ref().map(|rt| rt.enter());
                        self.sim.crash(name.as_str());
                        self.down.insert(c);
                        self.history
                            .record_at(self.sim.elapsed(), Event::Crashed { client: c });
                    }
                    Host::Server(id) => self.ens.crash(&mut self.sim, id),
                }
            }
            FaultKind::Restart => {
                self.fault(format!("restart {target} = {name}"));
                match host {
                    Host::Client(c) => {
                        // A running client restarted in place loses its beliefs too.
                        if !self.down.remove(&c) {
                            self.history
                                .record_at(self.sim.elapsed(), Event::Crashed { client: c });
                        }
                        let _context = self.graveyard.as_ref().map(|rt| rt.enter());
                        self.sim.bounce(name.as_str());
                    }
                    Host::Server(id) => self.ens.bounce(&mut self.sim, id),
                }
            }
        }
    }

    /// The outcome, and what must be dropped inside the graveyard's context.
    fn finish(mut self, seed: u64) -> (Outcome, turmoil::Sim<'a>, Option<tokio::runtime::Runtime>) {
        self.note("end of run".to_owned());
        let records = self.history.records();
        let mut violations = std::mem::take(&mut self.violations);
        violations.extend(check::all(&records));
        violations.extend(self.ens.check().into_iter().map(|message| Violation {
            checker: "ensemble",
            at: self.sim.elapsed(),
            message,
        }));
        let acquisitions = records
            .iter()
            .filter(|r| matches!(r.event, Event::Acquired { .. }))
            .count();
        let mut trace = self.history.render();
        trace.push_str("-- servers --\n");
        for e in self.ens.events() {
            let _ = writeln!(trace, "{e}");
        }
        let outcome = Outcome {
            seed,
            violations,
            trace,
            acquisitions,
            writes: self.history.resource().counts(),
        };
        (outcome, self.sim, self.graveyard)
    }
}
