//! Register values are real: every read, local ones included, returns a state some
//! operation produced.
//!
//! Local reads (no `sync`) are outside the [`linearizable`](super::linearizable) check:
//! ZooKeeper may serve them stale. Stale, but not made up: per register path,
//!
//! - **Written values only**: a read returns a value some create, write, compare-and-set or
//!   multi was called with before the read returned;
//! - **At its version**: if that operation was acknowledged, the read returns the version it
//!   was acknowledged with;
//! - **One value per version**: no two reads see one version with different values (the
//!   leader's order names every state by its version).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{groups, Violation};
use crate::history::{Event, Record};
use crate::register::{RegisterOp, RegisterResult};
use crate::scenario::{Role, Scenario};

fn violation(at: Duration, message: String) -> Violation {
    Violation {
        checker: "register-values",
        at,
        message,
    }
}

/// The made-up-value violations in `records`.
pub fn check(records: &[Record], scenario: &Scenario) -> Vec<Violation> {
    let mut out = Vec::new();
    for (path, (_, clients)) in groups(scenario, &[Role::Register]) {
        // Values called so far, with the version they were acknowledged with (if yet).
        let mut written: BTreeMap<&str, Option<i32>> = BTreeMap::new();
        // Calls still open: (client, op id) -> the value.
        let mut calls: BTreeMap<(usize, u64), &str> = BTreeMap::new();
        // Each version's value as first read, by whom and when.
        let mut versions: BTreeMap<i32, (&str, usize, Duration)> = BTreeMap::new();
        for r in records {
            match &r.event {
                Event::RegisterCall {
                    client,
                    op_id,
                    op:
                        RegisterOp::Create { value }
                        | RegisterOp::Write { value }
                        | RegisterOp::Cas { value, .. }
                        | RegisterOp::Multi { value, .. },
                } if clients.contains(client) => {
                    written.entry(value.as_str()).or_insert(None);
                    calls.insert((*client, *op_id), value.as_str());
                }
                Event::RegisterReturn {
                    client,
                    op_id,
                    result,
                    ..
                } if clients.contains(client) => {
                    let called = calls.remove(&(*client, *op_id));
                    match result {
                        RegisterResult::Written { version } => {
                            // A create of the initial value by several clients: only the
                            // one that applied is acknowledged, once.
                            if let Some(v) = called {
                                written.insert(v, Some(*version));
                            }
                        }
                        RegisterResult::Read(Some((value, version))) => {
                            match written.get(value.as_str()) {
                                None => out.push(violation(
                                    r.at,
                                    format!(
                                        "c{client} read {value:?} version {version} from \
                                         register {path}, a value nobody had written"
                                    ),
                                )),
                                Some(Some(acked)) if acked != version => out.push(violation(
                                    r.at,
                                    format!(
                                        "c{client} read {value:?} version {version} from \
                                         register {path}, but that value was acknowledged \
                                         as version {acked}"
                                    ),
                                )),
                                _ => {}
                            }
                            match versions.get(version) {
                                Some(&(other, by, at)) if other != value => {
                                    out.push(violation(
                                        r.at,
                                        format!(
                                            "c{client} read {value:?} as version {version} \
                                             of register {path}, but c{by} read {other:?} as \
                                             that version at {:.6} s",
                                            at.as_secs_f64()
                                        ),
                                    ));
                                }
                                Some(_) => {}
                                None => {
                                    versions.insert(*version, (value.as_str(), *client, r.at));
                                }
                            }
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
    }
    out
}
