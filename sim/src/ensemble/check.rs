//! The ensemble's invariants, checked continuously as servers report what they do:
//! - at most one leader per epoch;
//! - every server that applied zxid z has the tree digest of the committed history at z
//!   (the checker replays every commit in zxid order into a reference tree), so a server
//!   that lost a committed transaction diverges at its next apply;
//! - a committed transaction is the same everywhere, commits come in zxid order, and none
//!   is lost from a log (across restarts too);
//! - committed logs agree where they overlap, and a snapshot is the committed history at
//!   its zxid.
//!
//! Violations are collected, not panicked on, so a test can print them all with the event
//! log.

use std::collections::{BTreeMap, BTreeSet};

use sha1::{Digest, Sha1};
use zkit::proto::Record;

use super::log::{Entry, Store};
use crate::server::tree::DataTree;

/// A digest of a whole tree (paths, data, stats, ACLs, sessions).
pub fn tree_digest(tree: &DataTree) -> String {
    let mut h = Sha1::new();
    for (path, node) in tree.nodes() {
        h.update(path.as_bytes());
        h.update([0]);
        h.update(&node.data);
        h.update(node.client_stat().to_bytes());
        for acl in &node.acl {
            h.update(acl.to_bytes());
        }
    }
    for (id, timeout) in tree.sessions() {
        h.update(id.to_be_bytes());
        h.update(timeout.to_be_bytes());
    }
    h.update(tree.last_zxid().to_be_bytes());
    let out = h.finalize();
    out.iter().map(|b| format!("{b:02x}")).collect()
}

fn fingerprint(e: &Entry) -> String {
    format!("{:?} {:?}", e.header, e.txn)
}

/// What the checker has seen.
#[derive(Debug, Default)]
pub struct Checker {
    leaders: BTreeMap<u32, u8>,
    /// Digest at each zxid: of the committed history (server 0), or of the first server
    /// that applied it.
    digests: BTreeMap<i64, (u8, String)>,
    committed: BTreeMap<i64, String>,
    /// The committed history replayed in zxid order.
    history: DataTree,
    violations: Vec<String>,
}

impl Checker {
    /// `id` became the established leader of `epoch` with history up to `last_zxid`: that
    /// history must hold every transaction committed so far (Zab's first guarantee).
    pub fn leader(&mut self, epoch: u32, id: u8, last_zxid: i64) {
        match self.leaders.insert(epoch, id) {
            Some(other) if other != id => self
                .violations
                .push(format!("two leaders in epoch {epoch}: {other} and {id}")),
            _ => {}
        }
        let lost = self.committed.range(last_zxid + 1..).count();
        if lost > 0 {
            self.violations.push(format!(
                "leader {id} of epoch {epoch} lost {lost} committed txns (its history ends at \
                 0x{last_zxid:x}, commits reach 0x{:x})",
                self.committed.keys().next_back().copied().unwrap_or(0)
            ));
        }
    }

    /// `id` applied up to `zxid` and its tree has `digest`.
    pub fn applied(&mut self, id: u8, zxid: i64, digest: String) {
        match self.digests.get(&zxid) {
            Some((0, d)) if *d != digest => self.violations.push(format!(
                "server {id} diverges from the committed history at 0x{zxid:x} \
                 (a committed txn lost or altered)"
            )),
            Some((other, d)) if *d != digest => self.violations.push(format!(
                "digest mismatch at 0x{zxid:x}: server {other} {d}, server {id} {digest}"
            )),
            Some(_) => {}
            None => {
                self.digests.insert(zxid, (id, digest));
            }
        }
    }

    /// The leader committed `entry`.
    pub fn committed(&mut self, entry: &Entry) {
        let fp = fingerprint(entry);
        match self.committed.get(&entry.zxid()) {
            Some(other) if *other != fp => self.violations.push(format!(
                "zxid 0x{:x} committed twice differently: {other} / {fp}",
                entry.zxid()
            )),
            Some(_) => {}
            None => {
                self.committed.insert(entry.zxid(), fp);
                if entry.zxid() < self.history.last_zxid() {
                    self.violations.push(format!(
                        "zxid 0x{:x} committed after 0x{:x}",
                        entry.zxid(),
                        self.history.last_zxid()
                    ));
                    return;
                }
                self.history.apply(&entry.header, &entry.txn);
                self.digests
                    .insert(entry.zxid(), (0, tree_digest(&self.history)));
            }
        }
    }

    /// Checks the servers' durable stores against each other and against every commit seen.
    pub fn stores(&mut self, stores: &BTreeMap<u8, Store>) {
        let mut found = Vec::new();
        for (id, store) in stores {
            let base = store.base();
            if let Some(snap) = &store.snapshot {
                if let Some((0, d)) = self.digests.get(&base) {
                    if *d != tree_digest(&snap.tree) {
                        found.push(format!(
                            "server {id}'s snapshot at 0x{base:x} is not the committed history"
                        ));
                    }
                }
            }
            let mut seen = BTreeSet::new();
            for e in &store.log {
                match self.committed.get(&e.zxid()) {
                    Some(fp) if *fp != fingerprint(e) => found.push(format!(
                        "server {id} committed 0x{:x} differently",
                        e.zxid()
                    )),
                    Some(_) => {
                        seen.insert(e.zxid());
                    }
                    None => {}
                }
            }
            // Every commit after its snapshot and up to its last logged zxid must be in its
            // log (a committed txn is in every later history).
            let last = store.last_zxid().max(store.committed);
            let missing: Vec<i64> = if last > base {
                self.committed
                    .range(base + 1..=last)
                    .map(|(z, _)| *z)
                    .filter(|z| !seen.contains(z))
                    .collect()
            } else {
                Vec::new()
            };
            if let Some(first) = missing.first() {
                found.push(format!(
                    "server {id} lost {} committed txns (first 0x{first:x}, log up to \
                     0x{last:x})",
                    missing.len()
                ));
            }
        }
        let logs: Vec<(&u8, i64, &[Entry])> = stores
            .iter()
            .map(|(id, s)| (id, s.base(), s.committed_log()))
            .collect();
        for (i, (a, base_a, la)) in logs.iter().enumerate() {
            for (b, base_b, lb) in &logs[i + 1..] {
                // Compare where both logs still hold entries: after both snapshots.
                let from = (*base_a).max(*base_b);
                let la: Vec<&Entry> = la.iter().filter(|e| e.zxid() > from).collect();
                let lb: Vec<&Entry> = lb.iter().filter(|e| e.zxid() > from).collect();
                let n = la.len().min(lb.len());
                if la[..n] != lb[..n] {
                    found.push(format!("committed logs of {a} and {b} diverge"));
                }
            }
        }
        for v in found {
            if !self.violations.contains(&v) {
                self.violations.push(v);
            }
        }
    }

    /// Every violation so far.
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// How many transactions were committed.
    pub fn commit_count(&self) -> usize {
        self.committed.len()
    }
}
