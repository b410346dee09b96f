//! Checkers: each reads the [`History`](crate::history::History) after a run (with the
//! [`Scenario`] that produced it, which says which client runs which role on which path) and
//! returns the violations it finds, and, where a fault makes an overlap expected, findings.
//!
//! - [`mutex`]: no two clients believe they hold a lock (or conflicting sides of a
//!   read-write lock) at the same instant;
//! - [`fencing`]: a legitimate holder's write is accepted, a stale (paused or killed)
//!   holder's write after a later holder's is rejected, and tokens increase from holder to
//!   holder (judged on the history, not by the resource's own rule);
//! - [`leader`]: at most one client believes it leads an election at any instant, and
//!   epochs increase from one leader to the next;
//! - [`liveness`]: after the last fault is undone, the lock changes hands and a leader is
//!   elected within the scenario's liveness window;
//! - [`barrier`]: a double barrier never lets anyone through early, nor out before everyone
//!   is in;
//! - [`semaphore`]: a semaphore never has more holders than leases;
//! - [`config`]: the configuration node's values form one chain (no acknowledged write lost,
//!   no value made up) and every watcher converges on it;
//! - [`writes`]: every acknowledged create is in every later synced listing;
//! - [`policy`]: beliefs end when the connection policy says the session is in doubt, and a
//!   client reports `Lost` soon after the ensemble expires its session;
//! - [`session`]: every acquisition is made in the client's current session;
//! - [`lingering`]: nobody acquires a lock while an earlier holder's session, left behind
//!   with its node, is alive (no node is deleted from a session other than its own);
//! - [`counter`]: a shared counter counts every acknowledged add, none twice;
//! - [`queue`]: queue items are taken at most once (where promised) and none acknowledged
//!   is lost;
//! - [`lease`]: no two clients believe they hold one lease at once;
//! - [`partitioner`]: no item is owned by two partition members at once;
//! - [`multi_lock`]: mutual exclusion per lock path of multi-locks;
//! - [`tree`]: every tree cache converges on the tree;
//! - [`simple_barrier`]: a simple barrier lets nobody through while it is up;
//! - [`linearizable`]: every register's history of calls and returns is linearizable
//!   (a bounded Wing & Gong / Lowe search; past its budget, an inconclusive finding);
//! - [`monotonic`]: within one session, register reads never go back;
//! - [`read_values`]: every register read, local ones included, returns a state some
//!   operation produced (its value, at the version it was acknowledged with);
//! - [`watches`]: a register client's one-shot data watch announces a change before the
//!   client's reads in the same session see it (none missed, none late).
//!
//! **Pauses.** A client whose application was frozen (a GC pause, [`Event::Paused`]) keeps
//! believing what it believed until it next looks: from its `Paused` until its belief next
//! ends (released, lost, stepped down, crashed) it is *pause-tainted*. A client whose session
//! the harness expired ([`Event::Killed`]) is tainted the same way: it cannot know until its
//! connection drops; and so is a client whose session the ensemble expired
//! ([`Event::SessionExpired`]) while it believed: on a follower cut off from the quorum it
//! stays `Connected` for up to `syncLimit` ticks after that, as with a real ZooKeeper
//! (how soon it must give up is the [`policy`] checker's business). An overlap that
//! involves a tainted client is what a pause does to any lease-based recipe: it is not a
//! violation but a [`Finding`] (the fenced resource must still reject the stale writes, which
//! [`fencing`] checks).

pub mod barrier;
pub mod config;
pub mod fencing;
pub mod leader;
pub mod lingering;
pub mod liveness;
pub mod mutex;
pub mod policy;
pub mod semaphore;
pub mod session;
pub mod writes;

pub mod counter;
pub mod lease;
pub mod linearizable;
pub mod monotonic;
pub mod multi_lock;
pub mod partitioner;
pub mod queue;
pub mod read_values;
pub mod simple_barrier;
pub mod tree;
pub mod watches;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::history::{Event, Record};
use crate::scenario::{Role, Scenario, Workload};

/// A broken property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The checker that found it (`mutual-exclusion`, `fencing`, `ensemble`, `simulation`).
    pub checker: &'static str,
    /// When (simulated time).
    pub at: Duration,
    /// What.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {:.6} s: {}",
            self.checker,
            self.at.as_secs_f64(),
            self.message
        )
    }
}

/// Something a fault made happen that would be a violation without it: an overlap caused by
/// a paused (stale) holder or leader. Reported, never failing a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The checker that found it.
    pub checker: &'static str,
    /// When (simulated time).
    pub at: Duration,
    /// What.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {:.6} s (expected): {}",
            self.checker,
            self.at.as_secs_f64(),
            self.message
        )
    }
}

/// What every checker found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Broken properties.
    pub violations: Vec<Violation>,
    /// Expected anomalies (see the module docs on pauses).
    pub findings: Vec<Finding>,
}

impl Report {
    fn add(&mut self, (violations, findings): (Vec<Violation>, Vec<Finding>)) {
        self.violations.extend(violations);
        self.findings.extend(findings);
    }
}

/// Every checker over `records` of a run of `scenario`.
pub fn report(records: &[Record], scenario: &Scenario) -> Report {
    let mut r = Report::default();
    r.add(mutex::check(records, scenario));
    r.add(fencing::check(records, scenario));
    r.add(leader::check(records, scenario));
    r.violations.extend(liveness::check(records, scenario));
    r.violations.extend(barrier::check(records, scenario));
    r.add(semaphore::check(records, scenario));
    r.violations.extend(config::check(records, scenario));
    r.violations.extend(writes::check(records, scenario));
    r.violations.extend(policy::check(records, scenario));
    r.add(session::check(records));
    r.violations.extend(lingering::check(records, scenario));
    r.violations.extend(counter::check(records, scenario));
    r.violations.extend(queue::check(records, scenario));
    r.violations.extend(lease::check(records, scenario));
    r.add(partitioner::check(records, scenario));
    r.add(multi_lock::check(records, scenario));
    r.violations.extend(tree::check(records, scenario));
    r.violations
        .extend(simple_barrier::check(records, scenario));
    r.add(linearizable::check(records, scenario));
    r.violations.extend(monotonic::check(records, scenario));
    r.violations.extend(read_values::check(records, scenario));
    r.violations.extend(watches::check(records, scenario));
    r
}

/// Every checker's violations over `records` of a run of `scenario`.
pub fn all(records: &[Record], scenario: &Scenario) -> Vec<Violation> {
    report(records, scenario).violations
}

/// Every checker's findings (expected anomalies) over `records` of a run of `scenario`.
pub fn findings(records: &[Record], scenario: &Scenario) -> Vec<Finding> {
    report(records, scenario).findings
}

/// Role-level counts of what a run exercised: lock handoffs (an acquisition by another client
/// than the previous one), leader changes (likewise), barrier rounds (a first participant
/// through enter while nobody else is in), config values seen, stale writes rejected by the
/// fenced resource, sessions expired (a client state `Lost`, or any state naming `Expired`),
/// read-only connections (a client state `ConnectedReadOnly`), pauses, and a few raw counts.
pub fn coverage(records: &[Record]) -> BTreeMap<&'static str, usize> {
    let mut c: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut last_holder = None;
    let mut last_leader = None;
    let mut inside: BTreeMap<usize, ()> = BTreeMap::new();
    for r in records {
        match &r.event {
            Event::Acquired { client, .. } => {
                if last_holder.is_some_and(|h| h != *client) {
                    *c.entry("lock handoffs").or_default() += 1;
                }
                last_holder = Some(*client);
            }
            Event::Leader { client, .. } => {
                *c.entry("leaderships").or_default() += 1;
                if last_leader != Some(*client) {
                    *c.entry("leader changes").or_default() += 1;
                }
                last_leader = Some(*client);
            }
            Event::BarrierEntered { client } => {
                if inside.is_empty() {
                    *c.entry("barrier rounds").or_default() += 1;
                }
                inside.insert(*client, ());
            }
            Event::BarrierLeft { client }
            | Event::BarrierFailed { client, .. }
            | Event::Crashed { client }
            | Event::Started { client, .. } => {
                inside.remove(client);
            }
            Event::ConfigSeen { .. } => *c.entry("config values seen").or_default() += 1,
            Event::ConfigWritten { .. } => *c.entry("config writes").or_default() += 1,
            Event::Created { .. } => *c.entry("creates acknowledged").or_default() += 1,
            Event::ReadAcquired { .. } | Event::WriteAcquired { .. } => {
                *c.entry("rwlock acquisitions").or_default() += 1;
                if matches!(r.event, Event::WriteAcquired { .. }) {
                    *c.entry("rwlock write acquisitions").or_default() += 1;
                }
            }
            Event::LeaseAcquired { .. } => *c.entry("leases acquired").or_default() += 1,
            Event::Joined { .. } => *c.entry("party joins").or_default() += 1,
            Event::Write {
                accepted: false, ..
            } => *c.entry("stale writes rejected").or_default() += 1,
            Event::State { state, .. } if state == "Lost" || state.contains("Expired") => {
                *c.entry("sessions expired").or_default() += 1;
            }
            Event::State { state, .. } if state == "ConnectedReadOnly" => {
                *c.entry("read-only connections").or_default() += 1;
            }
            Event::Paused { .. } => *c.entry("pauses").or_default() += 1,
            Event::Killed { .. } => *c.entry("sessions killed").or_default() += 1,
            Event::SessionExpired { .. } => *c.entry("ensemble expiries").or_default() += 1,
            _ => {}
        }
    }
    counter::coverage(records, &mut c);
    queue::coverage(records, &mut c);
    lease::coverage(records, &mut c);
    partitioner::coverage(records, &mut c);
    multi_lock::coverage(records, &mut c);
    tree::coverage(records, &mut c);
    simple_barrier::coverage(records, &mut c);
    linearizable::coverage(records, &mut c);
    watches::coverage(records, &mut c);
    c
}

/// Which workload each client (1-based, in file order) belongs to.
pub(crate) fn workload_of(scenario: &Scenario) -> BTreeMap<usize, &Workload> {
    let mut out = BTreeMap::new();
    let mut client = 0;
    for w in &scenario.workloads {
        for _ in 0..w.count {
            client += 1;
            out.insert(client, w);
        }
    }
    out
}

/// The clients of `roles`, grouped by path (clients on one path share one recipe instance):
/// path -> (the first workload on it, its clients).
pub(crate) fn groups<'s>(
    scenario: &'s Scenario,
    roles: &[Role],
) -> BTreeMap<&'s str, (&'s Workload, Vec<usize>)> {
    let mut out: BTreeMap<&str, (&Workload, Vec<usize>)> = BTreeMap::new();
    for (client, w) in workload_of(scenario) {
        if roles.contains(&w.role) {
            out.entry(w.path.as_str())
                .or_insert_with(|| (w, Vec::new()))
                .1
                .push(client);
        }
    }
    out
}

/// The client an event is about, if any.
pub(crate) fn client_of(e: &Event) -> Option<usize> {
    e.client()
}

/// The end of the run: the time of the last record.
pub(crate) fn end_of(records: &[Record]) -> Duration {
    records.last().map(|r| r.at).unwrap_or_default()
}

/// The time of the last [`Event::Healed`], if any.
pub(crate) fn last_healed(records: &[Record]) -> Option<Duration> {
    records
        .iter()
        .rev()
        .find(|r| matches!(r.event, Event::Healed))
        .map(|r| r.at)
}

/// Where an overlap of two beliefs goes: a [`Finding`] if either client is tainted (see
/// [`Taint`]; the message says which and since when), else a [`Violation`].
pub(crate) struct Verdicts {
    checker: &'static str,
    /// Broken properties.
    pub(crate) violations: Vec<Violation>,
    /// Overlaps a pause or an expiry explains.
    pub(crate) findings: Vec<Finding>,
}

impl Verdicts {
    pub(crate) fn new(checker: &'static str) -> Verdicts {
        Verdicts {
            checker,
            violations: Vec::new(),
            findings: Vec::new(),
        }
    }

    /// Files the overlap of `clients` at `at`, described by `message`.
    pub(crate) fn overlap(
        &mut self,
        at: Duration,
        message: String,
        clients: [usize; 2],
        taint: &Taint,
    ) {
        let stale = clients
            .into_iter()
            .find_map(|c| taint.since(c).map(|t| (c, t)));
        match stale {
            Some((c, t)) => self.findings.push(Finding {
                checker: self.checker,
                at,
                message: format!(
                    "{message}; c{c} was stale (paused, or its session killed or expired) from \
                     {:.6} s and has not looked since",
                    t.as_secs_f64()
                ),
            }),
            None => self.violations.push(Violation {
                checker: self.checker,
                at,
                message,
            }),
        }
    }

    /// The violations and findings.
    pub(crate) fn into_parts(self) -> (Vec<Violation>, Vec<Finding>) {
        (self.violations, self.findings)
    }
}

/// Tracks pause taint per client: set at [`Event::Paused`], [`Event::Killed`], or an
/// [`Event::SessionExpired`] of the client's current session; cleared when the client's belief
/// ends (`ends` says which events end it for the role being checked) or its host crashes or
/// restarts.
#[derive(Debug, Default)]
pub(crate) struct Taint {
    tainted: BTreeMap<usize, Duration>,
    /// Clients whose current session the ensemble expired, since when (until they are in a
    /// new session, or their belief ends).
    expired: BTreeMap<usize, Duration>,
    /// Which client each session belongs to (from [`Event::Session`]).
    owners: BTreeMap<i64, usize>,
    /// Each client's current session.
    current: BTreeMap<usize, i64>,
}

impl Taint {
    /// Feeds one record; `ends` says whether the event ends the client's belief.
    pub(crate) fn feed(&mut self, r: &Record, ends: impl Fn(&Event) -> bool) {
        match r.event {
            Event::Paused { client } | Event::Killed { client } => {
                self.tainted.entry(client).or_insert(r.at);
            }
            Event::Session { client, session } => {
                self.owners.insert(session, client);
                self.current.insert(client, session);
                self.expired.remove(&client);
            }
            Event::SessionExpired { session } => {
                if let Some(&client) = self.owners.get(&session) {
                    if self.current.get(&client) == Some(&session) {
                        self.expired.entry(client).or_insert(r.at);
                    }
                }
            }
            Event::Crashed { client } | Event::Started { client, .. } => {
                self.tainted.remove(&client);
                self.expired.remove(&client);
            }
            ref e if ends(e) => {
                if let Some(c) = client_of(e) {
                    self.tainted.remove(&c);
                    self.expired.remove(&c);
                }
            }
            _ => {}
        }
    }

    /// Whether the ensemble has expired client `c`'s current session (and it has not ended
    /// its belief or moved to a new session since).
    pub(crate) fn session_expired(&self, c: usize) -> bool {
        self.expired.contains_key(&c)
    }

    /// Since when client `c` has been tainted (paused, killed, or its session expired on the
    /// ensemble), if it is now.
    pub(crate) fn since(&self, c: usize) -> Option<Duration> {
        match (self.tainted.get(&c), self.expired.get(&c)) {
            (Some(a), Some(b)) => Some(*a.min(b)),
            (a, b) => a.or(b).copied(),
        }
    }
}
