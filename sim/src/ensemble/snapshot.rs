//! Snapshots: a server's whole state (tree and sessions) at one committed zxid.
//!
//! Each server takes one every [`EnsembleConfig::snapshot_every`] committed transactions and
//! drops the log entries it covers ([`Store::compact`]); a follower too far behind the
//! leader's log is synced with the leader's snapshot (`SNAP`). On the wire a snapshot is its
//! zxid, every node (path, data, ACL, stored stat) and every session; the receiver rebuilds
//! the tree by applying transactions that recreate each node with its exact stat, then
//! checks the result against what it received ([`Snapshot::decode`] fails on any
//! difference), so a transfer is exact or refused.
//!
//! [`EnsembleConfig::snapshot_every`]: super::EnsembleConfig::snapshot_every
//! [`Store::compact`]: super::log::Store::compact

use std::collections::BTreeMap;

use zkit::proto::{Acl, DecodeError, Reader, Record, Stat, Writer};

use crate::server::tree::DataTree;
use crate::server::txn::{CreateReply, CreateTxn, Txn, TxnHeader};

/// Why a received snapshot was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    /// The bytes do not decode.
    #[error("snapshot does not decode: {0}")]
    Decode(#[from] DecodeError),
    /// The rebuilt tree differs from the snapshot received.
    #[error("snapshot at 0x{zxid:x} cannot be rebuilt exactly: {what}")]
    Mismatch {
        /// The snapshot's zxid.
        zxid: i64,
        /// What differs.
        what: String,
    },
}

/// A server's state at `zxid`: the tree (which holds the sessions) after every committed
/// transaction up to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The last transaction it includes.
    pub zxid: i64,
    /// The tree and sessions.
    pub tree: DataTree,
}

/// One node as carried on the wire.
struct NodeImage {
    path: String,
    data: Vec<u8>,
    acl: Vec<Acl>,
    stat: Stat,
}

/// The name of the placeholder child used to set a parent's `cversion` and `pzxid`.
const PLACEHOLDER: &str = "\u{0}snapshot-restore";

impl Snapshot {
    /// The snapshot of `tree` (at its last zxid).
    pub fn of(tree: DataTree) -> Snapshot {
        Snapshot {
            zxid: tree.last_zxid(),
            tree,
        }
    }

    /// Appends the snapshot's bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_i64(self.zxid);
        let nodes = self.tree.nodes();
        out.put_len(nodes.len());
        for (path, node) in nodes {
            out.put_string(path);
            out.put_buffer(&node.data);
            out.put_len(node.acl.len());
            for a in &node.acl {
                a.encode(out);
            }
            node.stat.encode(out);
        }
        let sessions = self.tree.sessions();
        out.put_len(sessions.len());
        for (id, timeout) in sessions {
            out.put_i64(*id);
            out.put_i32(*timeout);
        }
    }

    /// Reads a snapshot and rebuilds its tree, exactly or not at all.
    pub fn decode(r: &mut Reader<'_>) -> Result<Snapshot, SnapshotError> {
        let zxid = r.read_i64()?;
        let nodes = r.read_vec(4 + 4 + 4 + Stat::MIN_SIZE, |r| {
            Ok(NodeImage {
                path: r.read_string()?,
                data: r.read_buffer()?,
                acl: r.read_vec(Acl::MIN_SIZE, Acl::decode)?,
                stat: Stat::decode(r)?,
            })
        })?;
        let sessions = r.read_vec(12, |r| Ok((r.read_i64()?, r.read_i32()?)))?;
        let tree = rebuild(zxid, &nodes, &sessions)?;
        Ok(Snapshot { zxid, tree })
    }
}

fn header(zxid: i64, time: i64) -> TxnHeader {
    TxnHeader {
        session_id: 0,
        cxid: 0,
        zxid,
        time,
    }
}

fn create(path: &str, data: Vec<u8>, acl: Vec<Acl>, owner: i64, parent_cversion: i32) -> Txn {
    Txn::Create(CreateTxn {
        path: path.to_owned(),
        data,
        acl,
        ephemeral_owner: owner,
        parent_cversion,
        reply: CreateReply::Path,
    })
}

fn child_of(parent: &str) -> String {
    if parent == "/" {
        format!("/{PLACEHOLDER}")
    } else {
        format!("{parent}/{PLACEHOLDER}")
    }
}

/// Rebuilds a tree from its nodes and sessions by applying transactions that recreate each
/// node's exact stored stat, then checks it.
fn rebuild(
    zxid: i64,
    nodes: &[NodeImage],
    sessions: &[(i64, i32)],
) -> Result<DataTree, SnapshotError> {
    let mut tree = DataTree::new();
    for (id, timeout) in sessions {
        tree.apply(
            &header(0, 0),
            &Txn::CreateSession {
                session_id: *id,
                timeout_ms: *timeout,
            },
        );
    }
    // Paths sort parents first: create every node that a fresh tree lacks, parent
    // cversions untouched (0 never raises one).
    for n in nodes {
        if tree.node(&n.path).is_none() {
            let txn = create(
                &n.path,
                n.data.clone(),
                n.acl.clone(),
                n.stat.ephemeral_owner,
                0,
            );
            tree.apply(&header(n.stat.czxid, n.stat.ctime), &txn);
        }
        let version = Txn::SetData {
            path: n.path.clone(),
            data: n.data.clone(),
            version: n.stat.version,
        };
        tree.apply(&header(n.stat.mzxid, n.stat.mtime), &version);
        let acl = Txn::SetAcl {
            path: n.path.clone(),
            acl: n.acl.clone(),
            version: n.stat.aversion,
        };
        tree.apply(&header(0, 0), &acl);
    }
    // A placeholder child created with the parent's cversion and deleted at its pzxid sets
    // both (a create raises pzxid only with the cversion; a delete raises it alone).
    for n in nodes {
        let current = tree.node(&n.path).map(|t| (t.stat.cversion, t.stat.pzxid));
        if current == Some((n.stat.cversion, n.stat.pzxid)) {
            continue;
        }
        let child = child_of(&n.path);
        let placeholder = create(&child, Vec::new(), Acl::open_unsafe(), 0, n.stat.cversion);
        tree.apply(&header(n.stat.pzxid, 0), &placeholder);
        tree.apply(&header(n.stat.pzxid, 0), &Txn::Delete { path: child });
    }
    tree.apply(
        &header(zxid, 0),
        &Txn::Check {
            path: "/".to_owned(),
        },
    );
    verify(zxid, &tree, nodes, sessions)?;
    Ok(tree)
}

fn verify(
    zxid: i64,
    tree: &DataTree,
    nodes: &[NodeImage],
    sessions: &[(i64, i32)],
) -> Result<(), SnapshotError> {
    let mismatch = |what: String| SnapshotError::Mismatch { zxid, what };
    if tree.last_zxid() != zxid {
        return Err(mismatch(format!("last zxid 0x{:x}", tree.last_zxid())));
    }
    if tree.node_count() != nodes.len() {
        return Err(mismatch(format!(
            "{} nodes instead of {}",
            tree.node_count(),
            nodes.len()
        )));
    }
    for n in nodes {
        let same = tree
            .node(&n.path)
            .is_some_and(|t| t.data == n.data && t.acl == n.acl && t.stat == n.stat);
        if !same {
            return Err(mismatch(format!("node {}", n.path)));
        }
    }
    let want: BTreeMap<i64, i32> = sessions.iter().copied().collect();
    if *tree.sessions() != want {
        return Err(mismatch("sessions".to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::tree::EphemeralKind;

    fn at(zxid: i64) -> TxnHeader {
        header(zxid, zxid * 10)
    }

    #[test]
    fn a_snapshot_round_trips_exactly() {
        let mut tree = DataTree::new();
        tree.apply(
            &at(1),
            &Txn::CreateSession {
                session_id: 7,
                timeout_ms: 4000,
            },
        );
        tree.apply(
            &at(2),
            &create("/a", b"x".to_vec(), Acl::open_unsafe(), 0, 1),
        );
        tree.apply(
            &at(3),
            &create("/a/b", b"y".to_vec(), Acl::read_unsafe(), 7, 1),
        );
        tree.apply(
            &at(4),
            &create(
                "/a/c",
                vec![],
                Acl::open_unsafe(),
                EphemeralKind::ttl_owner(50),
                2,
            ),
        );
        tree.apply(
            &at(5),
            &Txn::Delete {
                path: "/a/c".into(),
            },
        );
        tree.apply(
            &at(6),
            &Txn::SetData {
                path: "/a".into(),
                data: b"zz".to_vec(),
                version: 3,
            },
        );
        tree.apply(
            &at(7),
            &Txn::SetAcl {
                path: "/a/b".into(),
                acl: Acl::open_unsafe(),
                version: 2,
            },
        );
        tree.apply(&at(8), &create("/z", vec![], Acl::open_unsafe(), 0, 2));
        let snap = Snapshot::of(tree.clone());
        let mut out = Vec::new();
        snap.encode(&mut out);
        let mut r = Reader::new(&out);
        let back = Snapshot::decode(&mut r);
        assert_eq!(r.remaining(), 0);
        assert_eq!(back, Ok(snap));
        assert_eq!(
            back.map(|s| s.tree.ephemerals(7)),
            Ok(vec!["/a/b".to_owned()])
        );
    }

    #[test]
    fn a_snapshot_that_cannot_be_rebuilt_is_refused() {
        let mut tree = DataTree::new();
        tree.apply(
            &at(2),
            &create("/a", b"x".to_vec(), Acl::open_unsafe(), 0, 1),
        );
        let mut out = Vec::new();
        Snapshot::of(tree).encode(&mut out);
        // Corrupt the zxid: the rebuilt tree ends at another one than its nodes say.
        out[..8].copy_from_slice(&1i64.to_be_bytes());
        let mut r = Reader::new(&out);
        assert!(matches!(
            Snapshot::decode(&mut r),
            Err(SnapshotError::Mismatch { .. })
        ));
    }
}
