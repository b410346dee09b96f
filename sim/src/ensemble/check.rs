//! The ensemble's invariants, checked continuously as servers report what they do:
//! - at most one leader per epoch;
//! - every server that applied zxid z has the same tree digest at z;
//! - a committed transaction is the same everywhere and never lost (across restarts too);
//! - committed logs are prefixes of one another.
//!
//! Violations are collected, not panicked on, so a test can print them all with the event
//! log.

use std::collections::BTreeMap;

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
    digests: BTreeMap<i64, (u8, String)>,
    committed: BTreeMap<i64, String>,
    violations: Vec<String>,
}

impl Checker {
    /// `id` became the established leader of `epoch`.
    pub fn leader(&mut self, epoch: u32, id: u8) {
        match self.leaders.insert(epoch, id) {
            Some(other) if other != id => self
                .violations
                .push(format!("two leaders in epoch {epoch}: {other} and {id}")),
            _ => {}
        }
    }

    /// `id` applied up to `zxid` and its tree has `digest`.
    pub fn applied(&mut self, id: u8, zxid: i64, digest: String) {
        match self.digests.get(&zxid) {
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
            }
        }
    }

    /// Checks the servers' durable logs against each other and against every commit seen.
    pub fn stores(&mut self, stores: &BTreeMap<u8, Store>) {
        let mut found = Vec::new();
        for (id, store) in stores {
            let log = store.committed_log();
            let mut seen = 0usize;
            for e in log {
                match self.committed.get(&e.zxid()) {
                    Some(fp) if *fp != fingerprint(e) => found.push(format!(
                        "server {id} committed 0x{:x} differently",
                        e.zxid()
                    )),
                    Some(_) => seen += 1,
                    None => {}
                }
            }
            // Every commit at or below this server's commit point must be in its log.
            let expected = self.committed.range(..=store.committed).count();
            if seen < expected {
                found.push(format!(
                    "server {id} lost {} committed txns (commit point 0x{:x})",
                    expected - seen,
                    store.committed
                ));
            }
        }
        let logs: Vec<(&u8, &[Entry])> = stores
            .iter()
            .map(|(id, s)| (id, s.committed_log()))
            .collect();
        for (i, (a, la)) in logs.iter().enumerate() {
            for (b, lb) in &logs[i + 1..] {
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
