//! Session: every acquisition (and every leadership a role reports a session for) is made in
//! the client's current session.
//!
//! A role records, right after a belief starts, the session the recipe says it holds in
//! ([`Event::HeldIn`]: the session owning its node, e.g. `LockGuard::session_id`). The
//! client's current session is what its session engine last published ([`Event::Session`],
//! recorded on connect and on every renewal). A node of an older session is gone, or about
//! to go when the ensemble expires that session: whoever holds with it holds nothing, however
//! it found the node (a protected create's lookup that skips the `ephemeralOwner` check, an
//! election that resumes with its old node after a renewal).
//!
//! A paused application that records, after its pause, an acquisition made before it is a
//! [`Finding`], not a violation (see [`super`]).

use std::collections::BTreeMap;

use super::{Finding, Taint, Violation};
use crate::history::{Event, Record};

const CHECKER: &str = "session";

fn ends(e: &Event) -> bool {
    matches!(
        e,
        Event::Released { .. }
            | Event::Lost { .. }
            | Event::SteppedDown { .. }
            | Event::LeaderLost { .. }
    )
}

/// The session violations and pause findings in `records`.
pub fn check(records: &[Record]) -> (Vec<Violation>, Vec<Finding>) {
    let mut current: BTreeMap<usize, i64> = BTreeMap::new();
    let mut taint = Taint::default();
    let mut out = Vec::new();
    let mut found = Vec::new();
    for r in records {
        taint.feed(r, ends);
        match r.event {
            Event::Session { client, session } => {
                current.insert(client, session);
            }
            Event::Crashed { client } | Event::Started { client, .. } => {
                current.remove(&client);
            }
            Event::HeldIn { client, session } => {
                let now = current.get(&client).copied();
                if now == Some(session) {
                    continue;
                }
                let message = match now {
                    Some(now) => format!(
                        "c{client} holds in session {session:#x}, but its client is in \
                         session {now:#x}"
                    ),
                    None => format!(
                        "c{client} holds in session {session:#x} before its client reported \
                         any session"
                    ),
                };
                match taint.since(client) {
                    Some(t) => found.push(Finding {
                        checker: CHECKER,
                        at: r.at,
                        message: format!(
                            "{message}; c{client} was stale (paused, or its session killed or expired) from {:.6} s",
                            t.as_secs_f64()
                        ),
                    }),
                    None => out.push(Violation {
                        checker: CHECKER,
                        at: r.at,
                        message,
                    }),
                }
            }
            _ => {}
        }
    }
    (out, found)
}
