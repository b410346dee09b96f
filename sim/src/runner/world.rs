//! What the runner drives: a [`World`] is an ensemble plus client hosts plus the network
//! between them, with the handful of actions faults need. The runner's fault bookkeeping
//! (targets, cut counts, undo schedules) is written once against this trait and drives two
//! backends:
//!
//! - [`SimWorld`]: turmoil's seeded network and the simulated ensemble (deterministic);
//! - `real::RealWorld` (in `runner/real.rs`): a real ZooKeeper ensemble behind fault
//!   proxies, clients on their own threads, in wall-clock time.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use zkit::Client;

use super::ClientBody;
use crate::ensemble::peer::Role;
use crate::ensemble::Ensemble;
use crate::history::History;
use crate::net::TurmoilConnector;
use crate::scenario::Scenario;
use crate::workload::{self, ClientSpec};

/// A host a target resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Host {
    Client(usize),
    Server(u8),
}

impl Host {
    pub(crate) fn name(self) -> String {
        match self {
            Host::Client(n) => format!("c{n}"),
            Host::Server(id) => Ensemble::host(id),
        }
    }
}

/// A session expiry by takeover: a helper connection resumes `session` and closes it (what
/// Curator's `KillSession` does).
#[derive(Debug, Clone)]
pub(crate) struct Takeover {
    /// The helper's name in the history (`x1`, `x2`, ...).
    pub(crate) name: String,
    pub(crate) session: i64,
    pub(crate) password: Vec<u8>,
    /// Seeds the helper client.
    pub(crate) seed: u64,
    pub(crate) session_timeout: Duration,
    pub(crate) history: History,
}

impl Takeover {
    /// Connects with `builder` (already pointed at the ensemble), resumes the session,
    /// closes it and notes the outcome.
    pub(crate) async fn run(self, builder: zkit::Builder) {
        let attempt = builder
            .seed(self.seed)
            .resume_session(self.session, &self.password)
            .session_timeout(self.session_timeout)
            .connect()
            .await;
        let id = self.session;
        match attempt {
            Ok(zk) => {
                zk.close().await;
                self.history
                    .note(&self.name, format!("closed session {id:#x}"));
            }
            Err(e) => self
                .history
                .note(&self.name, format!("could not take over {id:#x}: {e}")),
        }
    }
}

/// An ensemble, its clients and the network between them, as the runner acts on them.
/// Links are one-way and named by their end hosts; a link that does not exist in a backend
/// (client to client) is ignored.
pub(crate) trait World {
    /// Time since the run started.
    fn elapsed(&self) -> Duration;
    /// Lets time pass (one simulation step; a short real sleep).
    fn step(&mut self) -> Result<(), String>;
    /// How much longer than the scenario's duration a run lasts: zero in simulation, where
    /// faults end on time; in real time, a margin for acting late.
    fn overrun(&self) -> Duration {
        Duration::ZERO
    }
    /// Starts the ensemble (before the workload).
    fn start(&mut self, history: &History);
    /// The serving leader, if exactly one.
    fn leader(&mut self) -> Option<u8>;
    /// The servers up now, with `role` if given.
    fn up_servers(&mut self, role: Option<Role>) -> Vec<u8>;
    /// The connect string clients get.
    fn connect_string(&self) -> String;
    /// The server client `client` reaches at `addr` (as its session reports it).
    fn server_at(&self, client: usize, addr: &str) -> Option<u8>;
    /// Starts client `spec` (and restarts it as a new incarnation after [`World::crash`]).
    fn start_client(&mut self, spec: ClientSpec);
    /// Drops whatever `from` sends to `to`.
    fn cut(&mut self, from: Host, to: Host);
    /// Undoes [`World::cut`].
    fn repair(&mut self, from: Host, to: Host);
    /// Holds messages both ways between `a` and `b`.
    fn hold(&mut self, a: Host, b: Host);
    /// Delivers what [`World::hold`] held and lets messages flow both ways (cuts included:
    /// the runner puts back the cuts still in force).
    fn release(&mut self, a: Host, b: Host);
    /// Sets the latency of the link `a -> b` (`None`: back to the scenario's).
    fn set_latency(&mut self, a: Host, b: Host, latency: Option<Duration>);
    /// Sets the loss rate of the link `a -> b` (`None`: back to the scenario's).
    fn set_loss(&mut self, a: Host, b: Host, rate: Option<f64>);
    /// Crashes `host` (a client loses its process; a server its process, and what it had
    /// not fsynced where the backend models that).
    fn crash(&mut self, host: Host);
    /// Starts `host` again (after a crash, or in place).
    fn restart(&mut self, host: Host);
    /// Freezes server `id` in a stop-the-world pause, or thaws it (the runner holds its
    /// links meanwhile where the backend needs that).
    fn freeze(&mut self, id: u8, frozen: bool);
    /// Runs a session takeover-and-close.
    fn expire(&mut self, takeover: Takeover);
    /// The ensemble's own invariant violations at the end of the run.
    fn check(&mut self) -> Vec<String>;
    /// The servers' event log.
    fn events(&mut self) -> Vec<String>;
}

/// The simulated world: a turmoil `Sim` with the simulated ensemble.
pub(crate) struct SimWorld<'a> {
    pub(crate) sim: turmoil::Sim<'a>,
    pub(crate) ens: Ensemble,
    pub(crate) scenario: Scenario,
    pub(crate) body: Option<ClientBody>,
    /// A runtime that is never driven, entered while a client host's software is dropped
    /// (a crash, the end of the run): zkit's guards spawn their clean-up from `Drop`, which
    /// needs a runtime context; what they spawn there never runs.
    pub(crate) graveyard: Option<tokio::runtime::Runtime>,
}

impl World for SimWorld<'_> {
    fn elapsed(&self) -> Duration {
        self.sim.elapsed()
    }

    fn step(&mut self) -> Result<(), String> {
        self.sim.step().map(drop).map_err(|e| e.to_string())
    }

    fn start(&mut self, history: &History) {
        self.ens.record_expiries(history.clone());
        self.ens.register(&mut self.sim);
    }

    fn leader(&mut self) -> Option<u8> {
        self.ens.leader()
    }

    fn up_servers(&mut self, role: Option<Role>) -> Vec<u8> {
        self.ens
            .status()
            .into_iter()
            .filter(|(_, s)| s.up && role.is_none_or(|r| s.role == Some(r)))
            .map(|(id, _)| id)
            .collect()
    }

    fn connect_string(&self) -> String {
        self.ens.connect_string()
    }

    fn server_at(&self, _client: usize, addr: &str) -> Option<u8> {
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        (1..=self.ens.config().servers).find(|&id| Ensemble::host(id) == host)
    }

    fn start_client(&mut self, spec: ClientSpec) {
        let incarnations = Rc::new(Cell::new(0u32));
        let body = self.body.clone();
        self.sim.host(spec.host(), move || {
            let incarnation = incarnations.get();
            incarnations.set(incarnation + 1);
            let spec = spec.clone();
            let body = body.clone();
            async move {
                match body {
                    Some(body) => body(spec, incarnation).await,
                    None => workload::run(spec, incarnation).await,
                }
            }
        });
    }

    fn cut(&mut self, from: Host, to: Host) {
        self.sim
            .partition_oneway(from.name().as_str(), to.name().as_str());
    }

    fn repair(&mut self, from: Host, to: Host) {
        self.sim
            .repair_oneway(from.name().as_str(), to.name().as_str());
    }

    fn hold(&mut self, a: Host, b: Host) {
        self.sim.hold(a.name().as_str(), b.name().as_str());
    }

    fn release(&mut self, a: Host, b: Host) {
        self.sim.release(a.name().as_str(), b.name().as_str());
    }

    fn set_latency(&mut self, a: Host, b: Host, latency: Option<Duration>) {
        let (a, b) = (a.name(), b.name());
        match latency {
            Some(l) => self.sim.set_link_latency(a.as_str(), b.as_str(), l),
            None => {
                let (min, max) = self.scenario.latency;
                self.sim.set_link_latency(a.as_str(), b.as_str(), min);
                self.sim
                    .set_link_max_message_latency(a.as_str(), b.as_str(), max);
            }
        }
    }

    fn set_loss(&mut self, a: Host, b: Host, rate: Option<f64>) {
        let rate = rate.unwrap_or(self.scenario.loss);
        self.sim
            .set_link_fail_rate(a.name().as_str(), b.name().as_str(), rate);
    }

    fn crash(&mut self, host: Host) {
        match host {
            Host::Client(_) => {
                let _context = self.graveyard.as_ref().map(|rt| rt.enter());
                self.sim.crash(host.name().as_str());
            }
            Host::Server(id) => self.ens.crash(&mut self.sim, id),
        }
    }

    fn restart(&mut self, host: Host) {
        match host {
            Host::Client(_) => {
                let _context = self.graveyard.as_ref().map(|rt| rt.enter());
                self.sim.bounce(host.name().as_str());
            }
            Host::Server(id) => self.ens.bounce(&mut self.sim, id),
        }
    }

    fn freeze(&mut self, id: u8, frozen: bool) {
        self.ens.freeze(&self.sim, id, frozen);
    }

    fn expire(&mut self, takeover: Takeover) {
        let hosts = self.ens.connect_string();
        self.sim.client(takeover.name.clone(), async move {
            takeover
                .run(Client::builder(&hosts).connector(TurmoilConnector))
                .await;
            Ok(())
        });
    }

    fn check(&mut self) -> Vec<String> {
        self.ens.check()
    }

    fn events(&mut self) -> Vec<String> {
        self.ens.events()
    }
}
