//! A user role: the code of a downstream crate, run on a client host like any built-in
//! role. The harness connects a real `zkit::Client` over the simulated network (its state
//! changes and sessions logged into the history as for every role), hands it to the user's
//! async function with the incarnation's seeded random stream and a [`Recorder`], and runs
//! the function until it returns, its host crashes or the simulation ends (see [`run`] for
//! what happens when it returns).
//!
//! The recorder appends the user's own events ([`Recorder::record`], checked by the user's
//! invariants) and the beliefs the built-in checkers understand: holding a lock
//! ([`Recorder::holds`] to [`Recorder::released`] or [`Recorder::lost`]: mutual exclusion,
//! fencing, the connection policy), leading an election ([`Recorder::leads`] to
//! [`Recorder::stepped_down`] or [`Recorder::lost_leadership`]: single leader), and writes to
//! the fenced resource ([`Recorder::write`]). Clients of a workload share one lock or
//! election (its `path`); one whose clients recorded holding (leading) is also held to
//! liveness: after the last fault, someone acquires it (an election has a leader) within
//! the scenario's `liveness_s`.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use zkit::Client;

use super::{start, ClientSpec, Result};
use crate::history::{Event, History};
use crate::scenario::Workload;

/// What a user role's function returns, boxed.
pub type UserRun = Pin<Box<dyn Future<Output = Result>>>;

/// A user role's code: a connected client, the incarnation's seeded random stream, and the
/// recorder. Called again (a new process) each time its host restarts.
pub type UserRole = Rc<dyn Fn(Client, ChaCha8Rng, Recorder) -> UserRun>;

/// Makes a [`UserRole`] of an async function or closure.
pub fn user_role<F, Fut>(f: F) -> UserRole
where
    F: Fn(Client, ChaCha8Rng, Recorder) -> Fut + 'static,
    Fut: Future<Output = Result> + 'static,
{
    Rc::new(move |zk, rng, rec| -> UserRun { Box::pin(f(zk, rng, rec)) })
}

/// Records what a user role's client does and believes into the run's history, at the
/// simulated time. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Recorder {
    client: usize,
    incarnation: u32,
    workload: Workload,
    history: History,
}

impl Recorder {
    /// A recorder for client `spec.client`.
    pub fn new(spec: &ClientSpec, incarnation: u32) -> Recorder {
        Recorder {
            client: spec.client,
            incarnation,
            workload: spec.workload.clone(),
            history: spec.history.clone(),
        }
    }

    /// The client's number (1-based; host `c{n}`, `cN` in the trace).
    pub fn client(&self) -> usize {
        self.client
    }

    /// How many times the client's host started before this process.
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// The scenario's workload the client belongs to (its `path`, `hold` range, `count`).
    pub fn workload(&self) -> &Workload {
        &self.workload
    }

    /// The ZooKeeper path of the client's workload (the scenario's `path`).
    pub fn path(&self) -> &str {
        &self.workload.path
    }

    /// Simulated time since the simulation started (the history's clock).
    pub fn now(&self) -> Duration {
        turmoil::sim_elapsed().unwrap_or_default()
    }

    /// Records the user's own event `key` with `value` (`job-start`, `"17"`).
    pub fn record(&self, key: &str, value: impl ToString) {
        self.history.record(Event::User {
            client: self.client,
            key: key.to_owned(),
            value: value.to_string(),
        });
    }

    /// Records a free-form note in the trace.
    pub fn note(&self, what: impl Into<String>) {
        self.history.note(&format!("c{}", self.client), what);
    }

    /// The client now believes it holds its workload's lock, with fencing token `token`
    /// (checked: mutual exclusion, increasing tokens, the connection policy).
    pub fn holds(&self, token: i64) {
        self.history.record(Event::Acquired {
            client: self.client,
            token,
        });
    }

    /// The session owning what the client just started to hold or lead with (checked: it is
    /// the client's current session).
    pub fn held_in(&self, session: i64) {
        self.history.record(Event::HeldIn {
            client: self.client,
            session,
        });
    }

    /// The client chose to give its lock back: it no longer believes it holds it.
    pub fn released(&self) {
        self.history.record(Event::Released {
            client: self.client,
        });
    }

    /// The client learnt its lock is gone: it no longer believes it holds it.
    pub fn lost(&self) {
        self.history.record(Event::Lost {
            client: self.client,
        });
    }

    /// The client now believes it leads its workload's election, with `epoch` (checked:
    /// a single leader, increasing epochs, the connection policy).
    pub fn leads(&self, epoch: i64) {
        self.history.record(Event::Leader {
            client: self.client,
            epoch,
        });
    }

    /// The leader chose to stop leading.
    pub fn stepped_down(&self) {
        self.history.record(Event::SteppedDown {
            client: self.client,
        });
    }

    /// The leader learnt its leadership is gone.
    pub fn lost_leadership(&self) {
        self.history.record(Event::LeaderLost {
            client: self.client,
        });
    }

    /// Writes to the fenced resource with `token`; returns whether it was accepted (it
    /// rejects a token below the highest accepted). Checked by the fencing checker.
    pub fn write(&self, token: i64) -> bool {
        self.history.write(self.client, token)
    }

    /// Whether the client's application is paused now (a `pause` fault).
    pub fn is_paused(&self) -> bool {
        self.history.is_paused(self.client)
    }

    /// Waits while the client's application is paused (a `pause` fault): call it where a
    /// frozen process would stop before acting on what it learnt.
    pub async fn pause_point(&self) {
        self.history.pause_point(self.client).await;
    }
}

/// Runs `role` on client `spec`: records the start, waits a seeded random moment, connects
/// (retrying), and runs the user's function. When the function returns `Ok`, the client's
/// session is closed (what a process exiting cleanly does; a session left to expire would
/// be a client that never learnt of its expiry) and the host idles until the end; an `Err`
/// ends the host and fails the run (a `simulation` violation with the error).
pub async fn run(spec: ClientSpec, incarnation: u32, role: UserRole) -> Result {
    spec.history.record(Event::Started {
        client: spec.client,
        incarnation,
    });
    let (rng, zk) = start(&spec, incarnation).await;
    let recorder = Recorder::new(&spec, incarnation);
    role(zk.clone(), rng, recorder).await?;
    spec.history
        .note(&spec.host(), "user role returned; closing its session");
    zk.close().await;
    std::future::pending().await
}
