//! Connection policy: a holder or leader stops believing when its connection policy says
//! the session can no longer be trusted, and the client learns of its session's expiry
//! in time.
//!
//! - **Beliefs end on doubt**: under the default policy
//!   ([`ConnectionPolicy::SuspendedIsLost`], Curator's standard) a holder's (lock, read or
//!   write side, lease) or leader's belief ends no later than [`GRACE`] after its client
//!   records any state but `Connected` (`Suspended`, `ConnectedReadOnly`, `Lost`, ...), even
//!   if the connection comes back meanwhile; under
//!   [`ConnectionPolicy::OnlySessionLoss`] no later than [`GRACE`] after `Lost` (or
//!   `AuthFailed`, `Closed`). A belief that starts while its client is already in doubt must
//!   end within [`GRACE`] of starting. A paused application looks at nothing: its deadline
//!   runs from when it resumes.
//! - **Lost in time**: when the ensemble expires a session ([`Event::SessionExpired`]), the
//!   client whose session it is (from its [`Event::Session`] records) reports `Lost` (or
//!   moves to another session, or its host crashes or restarts) no later than
//!   [`lost_bound`] after. The client's own timer runs from when its server last answered
//!   it. A server that hears the leader answers at most a message's flight after the
//!   ensemble last heard of the session; but a follower cut off from the quorum keeps
//!   answering its clients' pings for up to `syncLimit` ticks (as a real ZooKeeper does)
//!   while the leader expires their sessions, so the bound includes that too.
//! - **Suspended in time**: a client cut off from every server (a `partition` fault, both
//!   ways, naming its host) while `Connected` records another state (`Suspended`, ...) no
//!   later than its read timeout (two thirds of the negotiated session timeout: the
//!   scenario's, bounded to [2, 20] ticks), plus [`GRACE`], after the cut, unless the cut ends
//!   first: the read timeout runs from the last answer, which came before the cut. A client that never says it is
//!   disconnected leaves every recipe on it trusting what it holds.
//!
//! The workloads all use the default policy ([`check`]); [`check_with`] takes another.

use std::collections::BTreeMap;
use std::time::Duration;

use zkit::recipe::ConnectionPolicy;

use super::{end_of, Violation};
use crate::history::{Event, Record};
use crate::scenario::Scenario;

const CHECKER: &str = "connection-policy";

/// How long after the state that ends it a belief may still be recorded (the recipe's
/// monitor and the workload each wake once; a few simulation steps).
pub const GRACE: Duration = Duration::from_millis(50);

/// How long after the ensemble expires a session its client may report `Lost`: the
/// `syncLimit` ticks a cut-off follower goes on answering the client, the scenario's largest
/// message latency, twice (the reply that last touched the session, and slack for the
/// follower's report of it to the leader), plus one tick of the server's deadline rounding
/// and a second for latency faults.
pub fn lost_bound(scenario: &Scenario) -> Duration {
    scenario.tick * scenario.sync_limit
        + scenario.latency.1 * 2
        + scenario.tick
        + Duration::from_secs(1)
}

/// Whether `state` (a client state record) means the session is not to be trusted under
/// `policy`.
fn doubtful(policy: ConnectionPolicy, state: &str) -> bool {
    match policy {
        ConnectionPolicy::SuspendedIsLost => state != "Connected",
        ConnectionPolicy::OnlySessionLoss => matches!(state, "Lost" | "AuthFailed" | "Closed"),
    }
}

fn starts(e: &Event) -> Option<usize> {
    match *e {
        Event::Acquired { client, .. }
        | Event::ReadAcquired { client, .. }
        | Event::WriteAcquired { client, .. }
        | Event::LeaseAcquired { client, .. }
        | Event::Leader { client, .. } => Some(client),
        _ => None,
    }
}

fn ends(e: &Event) -> Option<usize> {
    match *e {
        Event::Released { client }
        | Event::Lost { client }
        | Event::SteppedDown { client }
        | Event::LeaderLost { client }
        | Event::Crashed { client }
        | Event::Started { client, .. } => Some(client),
        _ => None,
    }
}

/// What one client is doing, as far as this checker cares.
#[derive(Debug, Default)]
struct Client {
    /// Since when it believes it holds or leads.
    belief: Option<Duration>,
    /// Since when its state is doubtful, and which state (kept while a belief that began
    /// before it, or in it, is open).
    doubt: Option<(Duration, String)>,
    /// Its last state.
    state: String,
    /// The session it last reported `Lost` in.
    lost_in: Option<i64>,
    /// Whether its application is paused now, and when it last resumed.
    paused: bool,
    resumed: Option<Duration>,
    /// Its current session.
    session: Option<i64>,
    /// A deadline for `Lost`: (by when, the expired session, when it expired).
    lost_due: Option<(Duration, i64, Duration)>,
    /// Since when it is cut off from every server while it says `Connected`.
    cut: Option<Duration>,
}

/// The client hosts a fault record cuts off from everything: a both-ways partition's targets.
fn cut_off(what: &str) -> Vec<usize> {
    let Some(rest) = what.strip_prefix("partition ") else {
        return Vec::new();
    };
    if rest.starts_with("ends") || what.contains("(outbound)") || what.contains("(inbound)") {
        return Vec::new();
    }
    let Some((_, names)) = rest.split_once(" = ") else {
        return Vec::new();
    };
    let names = names.split(':').next().unwrap_or_default();
    names
        .split(',')
        .filter_map(|n| n.trim().strip_prefix('c')?.parse().ok())
        .collect()
}

/// The session timeout a client of `scenario` negotiates (bounded to [2, 20] ticks).
fn negotiated(scenario: &Scenario) -> Duration {
    scenario
        .session_timeout
        .clamp(scenario.tick * 2, scenario.tick * 20)
}

impl Client {
    /// By when its belief must end, if it must.
    fn due(&self) -> Option<(Duration, &str)> {
        let since = self.belief?;
        let (doubt, state) = self.doubt.as_ref()?;
        if self.paused {
            return None;
        }
        let from = [Some(since), Some(*doubt), self.resumed]
            .into_iter()
            .flatten()
            .max()?;
        Some((from + GRACE, state))
    }
}

/// The connection-policy violations in `records` of a run of `scenario` (every workload on
/// the default policy).
pub fn check(records: &[Record], scenario: &Scenario) -> Vec<Violation> {
    check_with(records, scenario, ConnectionPolicy::default())
}

/// The connection-policy violations in `records`, every holder and leader on `policy`.
pub fn check_with(
    records: &[Record],
    scenario: &Scenario,
    policy: ConnectionPolicy,
) -> Vec<Violation> {
    let bound = lost_bound(scenario);
    // The read timeout, two thirds of the negotiated timeout, runs from the last answer.
    let suspend_by = negotiated(scenario) * 2 / 3 + GRACE;
    let mut clients: BTreeMap<usize, Client> = BTreeMap::new();
    let mut out = Vec::new();
    let end = end_of(records);
    let overdue = |clients: &mut BTreeMap<usize, Client>, now: Duration, out: &mut Vec<_>| {
        for (c, st) in clients.iter_mut() {
            if let Some((due, state)) = st.due() {
                if now > due {
                    let since = st.belief.unwrap_or_default();
                    out.push(Violation {
                        checker: CHECKER,
                        at: due,
                        message: format!(
                            "c{c} still believes it holds or leads (since {:.6} s) more than \
                             {} ms after its client went {state} at {:.6} s ({policy:?})",
                            since.as_secs_f64(),
                            GRACE.as_millis(),
                            st.doubt.as_ref().map_or(0.0, |d| d.0.as_secs_f64()),
                        ),
                    });
                    // One violation per belief.
                    st.belief = None;
                }
            }
            if let Some(cut) = st.cut {
                if now > cut + suspend_by {
                    out.push(Violation {
                        checker: CHECKER,
                        at: cut + suspend_by,
                        message: format!(
                            "c{c} still says Connected {} ms after it was cut off from every \
                             server at {:.6} s (its read timeout has run out); its state moved \
                             to nothing else in time",
                            suspend_by.as_millis(),
                            cut.as_secs_f64()
                        ),
                    });
                    st.cut = None;
                }
            }
            if let Some((due, session, expired)) = st.lost_due {
                if now > due {
                    out.push(Violation {
                        checker: CHECKER,
                        at: due,
                        message: format!(
                            "c{c} did not report Lost within {} ms of the ensemble expiring \
                             its session {session:#x} at {:.6} s",
                            bound.as_millis(),
                            expired.as_secs_f64()
                        ),
                    });
                    st.lost_due = None;
                }
            }
        }
    };
    for r in records {
        overdue(&mut clients, r.at, &mut out);
        if let Some(c) = starts(&r.event) {
            let st = clients.entry(c).or_default();
            // A belief taken while the client is trusted replaces one it still had in doubt
            // (a resumed application that catches up in one step: leadership lost while it
            // was paused and won again in its new session): the doubt was the old belief's,
            // which was excused while paused and ends here.
            if !doubtful(policy, &st.state) {
                st.doubt = None;
            }
            st.belief = Some(r.at);
        }
        if let Some(c) = ends(&r.event) {
            let st = clients.entry(c).or_default();
            st.belief = None;
            if !doubtful(policy, &st.state) {
                st.doubt = None;
            }
            if matches!(r.event, Event::Crashed { .. } | Event::Started { .. }) {
                *st = Client::default();
            }
        }
        match &r.event {
            // `(n state changes missed)`: nothing known.
            Event::State { state, .. } if state.starts_with('(') => {}
            Event::State { client, state } => {
                let st = clients.entry(*client).or_default();
                st.state = state.clone();
                if state != "Connected" {
                    st.cut = None;
                }
                if doubtful(policy, state) {
                    if st.doubt.is_none() {
                        st.doubt = Some((r.at, state.clone()));
                    }
                } else if st.belief.is_none() {
                    // Trusted again; a belief already in doubt keeps its deadline.
                    st.doubt = None;
                }
                if state == "Lost" {
                    st.lost_in = st.session;
                    st.lost_due = None;
                }
            }
            Event::Fault { what } => {
                if what.starts_with("heal") || what.starts_with("partition ends") {
                    for st in clients.values_mut() {
                        st.cut = None;
                    }
                }
                for c in cut_off(what) {
                    let st = clients.entry(c).or_default();
                    if st.state == "Connected" && st.cut.is_none() {
                        st.cut = Some(r.at);
                    }
                }
            }
            Event::Paused { client } => clients.entry(*client).or_default().paused = true,
            Event::Resumed { client } => {
                let st = clients.entry(*client).or_default();
                st.paused = false;
                st.resumed = Some(r.at);
            }
            Event::Session { client, session } => {
                let st = clients.entry(*client).or_default();
                st.session = Some(*session);
                st.lost_due = None;
            }
            Event::SessionExpired { session } => {
                if let Some(st) = clients.values_mut().find(|st| st.session == Some(*session)) {
                    if st.lost_in != Some(*session) && st.state != "Closed" {
                        st.lost_due = Some((r.at + bound, *session, r.at));
                    }
                }
            }
            _ => {}
        }
    }
    overdue(&mut clients, end + Duration::from_nanos(1), &mut out);
    out.sort_by_key(|v| v.at);
    out
}
