//! Acknowledged writes: no acknowledged create is lost.
//!
//! Writers (`role = "writer"`) create persistent sequential nodes named
//! `w{client}-{incarnation}-{n}-` under their path and record each acknowledged one
//! ([`Event::Created`]). Every couple of seconds a writer sends `sync` on the path and then
//! lists its children, recording the listing with the instant it sent the `sync`
//! ([`Event::Listed`]). A `sync` brings the server that answers up to date with the leader,
//! so the listing after it contains every create acknowledged (to anyone) before the `sync`
//! was sent.
//!
//! - **No acknowledged create lost**: every create of any writer on the path acknowledged
//!   strictly before a listing's `sync` was sent is in that listing.
//! - **No create applied twice**: a listing never holds one name twice (writers never retry a
//!   create, so a second node with one name means the ensemble applied a request twice).
//!
//! Why listings rather than one read at the end: a simulated client cannot run after the run
//! ends, and the runner cannot speak the protocol; the writers' own listings are reads like
//! any other, and they are what the application would see. Creates acknowledged after the
//! last listing (the last couple of seconds) are not checked.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{groups, Violation};
use crate::history::{Event, Record};
use crate::scenario::{Role, Scenario};

/// The lost-write violations in `records`.
pub fn check(records: &[Record], scenario: &Scenario) -> Vec<Violation> {
    let mut out = Vec::new();
    for (path, (_, clients)) in groups(scenario, &[Role::Writer]) {
        let mut created: Vec<(Duration, usize, &str)> = Vec::new();
        for r in records {
            let Some(c) = r.event.client() else { continue };
            if !clients.contains(&c) {
                continue;
            }
            match &r.event {
                Event::Created { client, name } => created.push((r.at, *client, name)),
                Event::Listed {
                    client,
                    asked_at,
                    names,
                } => {
                    let mut set = BTreeSet::new();
                    for n in names {
                        if !set.insert(n.as_str()) {
                            out.push(Violation {
                                checker: "writes",
                                at: r.at,
                                message: format!("c{client}'s listing of {path} holds {n} twice"),
                            });
                        }
                    }
                    for (at, by, name) in created.iter().filter(|(at, ..)| at < asked_at) {
                        if !set.contains(name) {
                            out.push(Violation {
                                checker: "writes",
                                at: r.at,
                                message: format!(
                                    "c{by}'s create of {path}/{name} acknowledged at {:.6} s is \
                                     missing from c{client}'s listing synced at {:.6} s",
                                    at.as_secs_f64(),
                                    asked_at.as_secs_f64()
                                ),
                            });
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out
}
