//! Tree cache: every cache converges on the tree.
//!
//! Tree writers (`role = "tree-writer"`) each own a few nodes under the path and record what
//! they know of each: an acknowledged write, or a read after a `sync` when a write's outcome
//! was unknown ([`Event::TreeWritten`]), and each write as it starts
//! ([`Event::TreeWriting`]). Tree caches (`role = "tree-cache"`) on the same path record every
//! node their cache reports ([`Event::TreeCacheSeen`]); the checker rebuilds each cache's
//! mirror from those, starting empty at each [`Event::TreeCacheStarted`].
//!
//! - **Convergence**: at the end of the run, every cache running then (started at least
//!   `liveness` before the end) holds, for every writer node, the node's state at
//!   [`SETTLE`] before the end or a state some write gave it since (written or tried: a write
//!   in flight at the end may have applied). This needs the last fault undone at least
//!   `liveness` before the end; otherwise nothing is checked.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{end_of, groups, last_healed, workload_of, Violation};
use crate::history::{Event, Record};
use crate::scenario::{Role, Scenario};

/// How far behind the end a converged cache may be.
pub const SETTLE: Duration = Duration::from_secs(1);

/// The tree-cache violations in `records`.
pub fn check(records: &[Record], scenario: &Scenario) -> Vec<Violation> {
    let mut out = Vec::new();
    let end = end_of(records);
    let faulty = !scenario.faults.is_empty() || scenario.swarm.is_some();
    match last_healed(records) {
        Some(h) if h + scenario.liveness <= end => {}
        None if !faulty => {}
        _ => return out,
    }
    let since = end.saturating_sub(SETTLE);
    let roles = workload_of(scenario);
    for (path, (_, clients)) in groups(scenario, &[Role::TreeWriter, Role::TreeCache]) {
        // node -> its state at `since` (None: absent or unknown)
        let mut settled: BTreeMap<&str, Option<&str>> = BTreeMap::new();
        // node -> states written or tried since `since`
        let mut recent: BTreeMap<&str, BTreeSet<Option<&str>>> = BTreeMap::new();
        // cache client -> (started at, mirror)
        let mut caches: BTreeMap<usize, (Duration, BTreeMap<&str, &str>)> = BTreeMap::new();
        for r in records {
            let Some(c) = r.event.client() else { continue };
            if !clients.contains(&c) {
                continue;
            }
            match &r.event {
                Event::TreeWritten { node, value, .. } | Event::TreeWriting { node, value, .. } => {
                    let written = matches!(r.event, Event::TreeWritten { .. });
                    if r.at <= since {
                        if written {
                            settled.insert(node, value.as_deref());
                        }
                    } else {
                        settled.entry(node).or_insert(None);
                        recent.entry(node).or_default().insert(value.as_deref());
                    }
                }
                Event::TreeCacheStarted { client } => {
                    caches.insert(*client, (r.at, BTreeMap::new()));
                }
                Event::TreeCacheSeen {
                    client,
                    node,
                    value,
                } => {
                    if let Some((_, mirror)) = caches.get_mut(client) {
                        match value {
                            Some(v) => mirror.insert(node, v),
                            None => mirror.remove(node.as_str()),
                        };
                    }
                }
                Event::Crashed { client } | Event::Started { client, .. }
                    if roles.get(client).is_some_and(|w| w.role == Role::TreeCache) =>
                {
                    caches.remove(client);
                }
                _ => {}
            }
        }
        for (cache, (started, mirror)) in &caches {
            if *started + scenario.liveness > end {
                continue;
            }
            for (node, state) in &settled {
                let has = mirror.get(node).copied();
                let fine = has == *state || recent.get(node).is_some_and(|r| r.contains(&has));
                if !fine {
                    out.push(Violation {
                        checker: "tree-cache",
                        at: end,
                        message: format!(
                            "c{cache}'s cache of {path} holds {node} as {has:?} at the end; \
                             the node has been {state:?} since {:.6} s",
                            since.as_secs_f64()
                        ),
                    });
                }
            }
        }
    }
    out
}

/// Adds the tree caches' coverage counts to `c`.
pub(crate) fn coverage(records: &[Record], c: &mut BTreeMap<&'static str, usize>) {
    for r in records {
        match r.event {
            Event::TreeWritten { .. } => *c.entry("tree writes").or_default() += 1,
            Event::TreeCacheSeen { .. } => *c.entry("tree cache events").or_default() += 1,
            Event::TreeCacheStarted { .. } => *c.entry("tree caches started").or_default() += 1,
            _ => {}
        }
    }
}
