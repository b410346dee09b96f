//! Configuration: the values of one configuration node (config-writer and config-watcher
//! clients on one path) form a single chain, and every watcher converges on it.
//!
//! Writers record each acknowledged `setData` with the node's `mzxid` and `version` after it
//! ([`Event::ConfigWritten`]), and each write that failed without a verdict
//! ([`Event::ConfigUncertain`]); watchers record every value `DataWatch` gave them, with the
//! Stat it was read with ([`Event::ConfigSeen`]). Every value is unique (`c{client}.
//! {incarnation}.{n}`), and the first writer creates the node with `init`.
//!
//! - **One chain, no acknowledged write lost**: one `mzxid` never carries two different
//!   values or versions, and ordered by `mzxid`, the versions of every acknowledged or seen
//!   value strictly increase. An acknowledged write that the ensemble later lost would have
//!   its version handed out again to a later write: two values with one version.
//! - **No made-up values**: a watcher sees only `init` or values some writer tried to write
//!   (recorded, or the one write each writer may have had in flight when its record stopped:
//!   at the end of the run, or when its host crashed).
//! - **Watchers never go back**: within one incarnation, a watcher's `mzxid`s never decrease
//!   (a missing node reads as `mzxid` 0).
//! - **Convergence**: every watcher running at the end of the run, started at least
//!   `liveness` before it, has by the end seen the last value acknowledged at least
//!   `liveness` before the end (or a later one). This needs the last fault to end at least
//!   `liveness` before the end (otherwise a violation: no room to converge). A run with
//!   faults and no [`Event::Healed`] is the runner's to report; it is not checked here.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{end_of, groups, last_healed, Violation};
use crate::history::{Event, Record};
use crate::scenario::{Role, Scenario};

/// The value a config writer creates the node with.
pub const INITIAL: &str = "init";

fn violation(at: Duration, message: String) -> Violation {
    Violation {
        checker: "config",
        at,
        message,
    }
}

/// `(client, incarnation, n)` of a value `c{client}.{incarnation}.{n}`.
fn parse(value: &str) -> Option<(&str, u64)> {
    let rest = value.strip_prefix('c')?;
    let (writer, n) = rest.rsplit_once('.')?;
    Some((writer, n.parse().ok()?))
}

/// Whether `value` is the write its writer had in flight when its record stopped: the one
/// after the last it recorded (each writer writes one value at a time), or its first.
fn in_flight(tried: &BTreeSet<&str>, value: &str) -> bool {
    let Some((writer, n)) = parse(value) else {
        return false;
    };
    let last = tried
        .iter()
        .filter_map(|t| parse(t))
        .filter(|(w, _)| *w == writer)
        .map(|(_, n)| n)
        .max();
    match last {
        Some(last) => n == last + 1,
        None => n == 0,
    }
}

/// The configuration violations in `records`.
pub fn check(records: &[Record], scenario: &Scenario) -> Vec<Violation> {
    let mut out = Vec::new();
    let end = end_of(records);
    let healed = last_healed(records);
    let faulty = !scenario.faults.is_empty() || scenario.swarm.is_some();
    for (path, (_, clients)) in groups(scenario, &[Role::ConfigWriter, Role::ConfigWatcher]) {
        let watchers: BTreeSet<usize> = clients
            .iter()
            .copied()
            .filter(|c| {
                super::workload_of(scenario)
                    .get(c)
                    .is_some_and(|w| w.role == Role::ConfigWatcher)
            })
            .collect();
        let mine = |r: &&Record| r.event.client().is_some_and(|c| clients.contains(&c));
        // Every value written (acknowledged or not).
        let tried: BTreeSet<&str> = records
            .iter()
            .filter(mine)
            .filter_map(|r| match &r.event {
                Event::ConfigWritten { value, .. } | Event::ConfigUncertain { value, .. } => {
                    Some(value.as_str())
                }
                _ => None,
            })
            .collect();
        // mzxid -> (version, value, who, when)
        let mut chain: BTreeMap<i64, (i32, &str, usize, Duration)> = BTreeMap::new();
        let mut last_seen: BTreeMap<usize, i64> = BTreeMap::new();
        for r in records.iter().filter(mine) {
            let (client, value, mzxid, version) = match &r.event {
                Event::Started { client, .. } => {
                    last_seen.remove(client);
                    continue;
                }
                Event::ConfigWritten {
                    client,
                    value,
                    mzxid,
                    version,
                } => (*client, value.as_str(), *mzxid, *version),
                Event::ConfigSeen {
                    client,
                    value,
                    mzxid,
                    version,
                } => {
                    if let Some(&before) = last_seen.get(client) {
                        if *mzxid < before {
                            out.push(violation(
                                r.at,
                                format!(
                                    "c{client} saw {path} go back from mzxid {before:#x} to \
                                     {mzxid:#x}"
                                ),
                            ));
                        }
                    }
                    last_seen.insert(*client, *mzxid);
                    let Some(value) = value else { continue };
                    if value != INITIAL
                        && !tried.contains(value.as_str())
                        && !in_flight(&tried, value)
                    {
                        out.push(violation(
                            r.at,
                            format!("c{client} saw {value:?} in {path}, which nobody wrote"),
                        ));
                    }
                    (*client, value.as_str(), *mzxid, *version)
                }
                _ => continue,
            };
            match chain.get(&mzxid) {
                Some(&(v, val, who, _)) if v != version || val != value => out.push(violation(
                    r.at,
                    format!(
                        "{path} at mzxid {mzxid:#x}: c{client} has {value:?} version {version}, \
                         c{who} had {val:?} version {v}"
                    ),
                )),
                Some(_) => {}
                None => {
                    chain.insert(mzxid, (version, value, client, r.at));
                }
            }
        }
        let mut prev: Option<(i64, i32, &str)> = None;
        for (&mzxid, &(version, value, who, at)) in &chain {
            if let Some((pm, pv, pval)) = prev {
                if version <= pv {
                    out.push(violation(
                        at,
                        format!(
                            "{path}: {value:?} (c{who}, mzxid {mzxid:#x}) has version {version}, \
                             not above {pval:?} (mzxid {pm:#x}, version {pv}): an acknowledged \
                             write was lost"
                        ),
                    ));
                }
            }
            prev = Some((mzxid, version, value));
        }
        // Convergence.
        if faulty && healed.is_none() {
            continue;
        }
        let Some(cutoff) = end.checked_sub(scenario.liveness) else {
            continue;
        };
        if healed.is_some_and(|h| h > cutoff) {
            out.push(violation(
                end,
                format!(
                    "the scenario leaves no room for {path}'s watchers to converge: the last \
                     fault ended less than {} s before the run's end",
                    scenario.liveness.as_secs_f64()
                ),
            ));
            continue;
        }
        let target = records
            .iter()
            .filter(|r| r.at <= cutoff)
            .filter(mine)
            .filter_map(|r| match &r.event {
                Event::ConfigWritten { value, mzxid, .. } => Some((*mzxid, value.as_str(), r.at)),
                _ => None,
            })
            .max();
        let Some((target, value, acked)) = target else {
            continue;
        };
        for &w in &watchers {
            // The watcher's current incarnation: since its last start, if it is running.
            let mut started = None;
            let mut best: Option<i64> = None;
            for r in records.iter().filter(|r| r.event.client() == Some(w)) {
                match &r.event {
                    Event::Started { .. } => {
                        started = Some(r.at);
                        best = None;
                    }
                    Event::Crashed { .. } => started = None,
                    Event::ConfigSeen { mzxid, .. } => best = best.max(Some(*mzxid)),
                    _ => {}
                }
            }
            let Some(started) = started else { continue };
            if started > cutoff {
                continue;
            }
            if best.is_none_or(|b| b < target) {
                out.push(violation(
                    end,
                    format!(
                        "c{w} never saw {value:?} (mzxid {target:#x}, acknowledged at {:.6} s) \
                         or anything later in {path}; the last it saw had mzxid {}",
                        acked.as_secs_f64(),
                        best.map_or("none".to_owned(), |b| format!("{b:#x}"))
                    ),
                ));
            }
        }
    }
    out
}
