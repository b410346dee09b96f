//! The data tree (`DataTree`): every node with its data, ACL and full Stat bookkeeping, the
//! index of ephemeral, container and TTL nodes, and the live sessions.
//!
//! It is a pure state machine: [`DataTree::apply`] takes an ordered [`Txn`] and changes the
//! tree deterministically, reporting what happened and which watch triggers fire
//! ([`Trigger`]), in the order ZooKeeper's `DataTree` fires them. It never fails on a
//! transaction: an inconsistent one (a create whose parent vanished...) yields an error result.

use std::collections::{BTreeMap, BTreeSet};

use zkit::proto::{Acl, ErrorCode, Stat};

use super::txn::{CreateTxn, Txn, TxnHeader, TxnResult};

/// The `ephemeralOwner` of a container node (`EphemeralType.CONTAINER_EPHEMERAL_OWNER`).
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// The high byte marking an extended `ephemeralOwner` (TTL nodes).
const EXTENDED_MASK: u64 = 0xff00_0000_0000_0000;
/// The bits naming the extended feature (0 for TTL).
const EXTENDED_BIT_MASK: u64 = 0x00ff_ff00_0000_0000;
/// The largest TTL in milliseconds (`EphemeralType.TTL.maxValue()`).
pub const MAX_TTL: i64 = 0x00ff_ffff_ffff;

/// The reserved root of ZooKeeper's own nodes.
pub const ZOOKEEPER_PATH: &str = "/zookeeper";
/// The quota subtree.
pub const QUOTA_PATH: &str = "/zookeeper/quota";
/// The node whose data is the ensemble configuration (read by getConfig).
pub const CONFIG_PATH: &str = "/zookeeper/config";

/// What a node's `ephemeralOwner` says about it (`EphemeralType`, extended types enabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EphemeralKind {
    /// An ordinary persistent node.
    Persistent,
    /// An ephemeral node of this session.
    Session(i64),
    /// A container node.
    Container,
    /// A TTL node with this time to live in milliseconds.
    Ttl(i64),
}

impl EphemeralKind {
    /// Decodes an `ephemeralOwner`.
    pub fn of(owner: i64) -> EphemeralKind {
        if owner == CONTAINER_OWNER {
            return EphemeralKind::Container;
        }
        let bits = owner as u64;
        if bits & EXTENDED_MASK == EXTENDED_MASK && bits & EXTENDED_BIT_MASK == 0 {
            return EphemeralKind::Ttl((bits & MAX_TTL as u64) as i64);
        }
        if owner == 0 {
            EphemeralKind::Persistent
        } else {
            EphemeralKind::Session(owner)
        }
    }

    /// The `ephemeralOwner` of a TTL node (the TTL must be in `1..=MAX_TTL`).
    pub fn ttl_owner(ttl: i64) -> i64 {
        (EXTENDED_MASK | (ttl as u64 & MAX_TTL as u64)) as i64
    }
}

/// One node of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The node's data.
    pub data: Vec<u8>,
    /// The node's ACL.
    pub acl: Vec<Acl>,
    /// The node's stored Stat (`StatPersisted`): `cversion` counts child creations (it names
    /// sequential nodes) and `ephemeralOwner` is raw; see [`Node::client_stat`] for what
    /// clients are shown. `dataLength` and `numChildren` are kept current too.
    pub stat: Stat,
    /// Child names, sorted.
    pub children: BTreeSet<String>,
}

impl Node {
    fn new(data: Vec<u8>, acl: Vec<Acl>, stat: Stat) -> Node {
        Node {
            data,
            acl,
            stat,
            children: BTreeSet::new(),
        }
    }

    /// The Stat as clients see it (`DataNode.copyStat`): the stored cversion counts creates
    /// only, clients get `2 * cversion - numChildren` (creates plus deletes); containers and
    /// TTL nodes show an `ephemeralOwner` of 0.
    pub fn client_stat(&self) -> Stat {
        let num_children = len_i32(self.children.len());
        let ephemeral_owner = match EphemeralKind::of(self.stat.ephemeral_owner) {
            EphemeralKind::Session(owner) => owner,
            _ => 0,
        };
        Stat {
            cversion: self
                .stat
                .cversion
                .wrapping_mul(2)
                .wrapping_sub(num_children),
            ephemeral_owner,
            num_children,
            data_length: len_i32(self.data.len()),
            ..self.stat.clone()
        }
    }
}

/// A change that may fire watches, as `DataTree` reports it to the watch managers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A node was created: data watches on it fire `NodeCreated`, child watches on its parent
    /// `NodeChildrenChanged`.
    Created {
        /// The new node.
        path: String,
        /// Its parent.
        parent: String,
        /// The new node's ACL (filters delivery).
        acl: Vec<Acl>,
        /// The parent's ACL.
        parent_acl: Vec<Acl>,
    },
    /// A node was deleted: data and child watches on it fire `NodeDeleted` (once per watcher),
    /// child watches on its parent `NodeChildrenChanged`.
    Deleted {
        /// The deleted node.
        path: String,
        /// Its parent.
        parent: String,
        /// The deleted node's ACL.
        acl: Vec<Acl>,
        /// The parent's ACL.
        parent_acl: Vec<Acl>,
    },
    /// A node's data changed: data watches on it fire `NodeDataChanged`.
    DataChanged {
        /// The node.
        path: String,
        /// Its ACL.
        acl: Vec<Acl>,
    },
}

/// The outcome of applying one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// What the transaction did.
    pub result: TxnResult,
    /// Watch triggers, in firing order.
    pub triggers: Vec<Trigger>,
}

/// Splits a path into parent and last component; `None` for the root or a path with no `/`.
pub fn split_parent(path: &str) -> Option<(&str, &str)> {
    if path == "/" {
        return None;
    }
    let idx = path.rfind('/')?;
    let parent = if idx == 0 { "/" } else { &path[..idx] };
    Some((parent, &path[idx + 1..]))
}

/// The whole tree and the live sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataTree {
    nodes: BTreeMap<String, Node>,
    ephemerals: BTreeMap<i64, BTreeSet<String>>,
    containers: BTreeSet<String>,
    ttls: BTreeSet<String>,
    sessions: BTreeMap<i64, i32>,
    last_zxid: i64,
}

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new()
    }
}

impl DataTree {
    /// A fresh tree: `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config` (readable
    /// by anyone, empty: a standalone server has no dynamic configuration).
    pub fn new() -> DataTree {
        let mut nodes = BTreeMap::new();
        let mut root = Node::new(Vec::new(), Acl::open_unsafe(), Stat::default());
        root.children.insert("zookeeper".to_owned());
        root.stat.num_children = 1;
        let mut zk = Node::new(Vec::new(), Acl::open_unsafe(), Stat::default());
        zk.children.insert("quota".to_owned());
        zk.children.insert("config".to_owned());
        zk.stat.num_children = 2;
        nodes.insert("/".to_owned(), root);
        nodes.insert(ZOOKEEPER_PATH.to_owned(), zk);
        nodes.insert(
            QUOTA_PATH.to_owned(),
            Node::new(Vec::new(), Acl::open_unsafe(), Stat::default()),
        );
        // ZooKeeper sets this ACL with version -1, which lands in aversion as is.
        let config_stat = Stat {
            aversion: -1,
            ..Stat::default()
        };
        nodes.insert(
            CONFIG_PATH.to_owned(),
            Node::new(Vec::new(), Acl::read_unsafe(), config_stat),
        );
        DataTree {
            nodes,
            ephemerals: BTreeMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            sessions: BTreeMap::new(),
            last_zxid: 0,
        }
    }

    /// Replaces the data of `/zookeeper/config` (the ensemble sets its membership here).
    pub fn set_config_data(&mut self, data: Vec<u8>) {
        if let Some(node) = self.nodes.get_mut(CONFIG_PATH) {
            node.stat.data_length = len_i32(data.len());
            node.data = data;
        }
    }

    /// The node at `path`.
    pub fn node(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Every node, by path.
    pub fn nodes(&self) -> &BTreeMap<String, Node> {
        &self.nodes
    }

    /// The zxid of the last applied transaction.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Number of nodes, the root included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The ephemeral nodes of `session_id`, sorted (clients get them in the server's
    /// [`ListOrder`](super::order::ListOrder)).
    pub fn ephemerals(&self, session_id: i64) -> Vec<String> {
        self.ephemerals
            .get(&session_id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every session that owns ephemeral nodes, with them.
    pub fn all_ephemerals(&self) -> &BTreeMap<i64, BTreeSet<String>> {
        &self.ephemerals
    }

    /// Live sessions and their timeouts in milliseconds.
    pub fn sessions(&self) -> &BTreeMap<i64, i32> {
        &self.sessions
    }

    /// Whether `session_id` is live.
    pub fn has_session(&self, session_id: i64) -> bool {
        self.sessions.contains_key(&session_id)
    }

    /// Number of descendants of `path` (`getAllChildrenNumber`; for `/`, every other node).
    pub fn all_children_number(&self, path: &str) -> i32 {
        let count = if path == "/" {
            self.nodes.len().saturating_sub(1)
        } else {
            let prefix = format!("{path}/");
            self.nodes
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .count()
        };
        len_i32(count)
    }

    /// Containers and TTL nodes the reaper should delete at wall time `now` (ms since the
    /// epoch), as ZooKeeper's `ContainerManager.getCandidates`: empty containers that once had
    /// a child (or older than `max_never_used_ms`, if not 0), and childless TTL nodes not
    /// modified for longer than their TTL.
    pub fn reap_candidates(&self, now: i64, max_never_used_ms: i64) -> Vec<String> {
        let mut out = BTreeSet::new();
        for path in &self.containers {
            if let Some(node) = self.nodes.get(path) {
                if !node.children.is_empty() {
                    continue;
                }
                let elapsed = now.saturating_sub(node.stat.mtime);
                if node.stat.cversion > 0 || (max_never_used_ms != 0 && elapsed > max_never_used_ms)
                {
                    out.insert(path.clone());
                }
            }
        }
        for path in &self.ttls {
            if let Some(node) = self.nodes.get(path) {
                if !node.children.is_empty() {
                    continue;
                }
                if let EphemeralKind::Ttl(ttl) = EphemeralKind::of(node.stat.ephemeral_owner) {
                    if ttl != 0 && now.saturating_sub(node.stat.mtime) > ttl {
                        out.insert(path.clone());
                    }
                }
            }
        }
        out.into_iter().collect()
    }

    /// Applies one ordered transaction.
    pub fn apply(&mut self, header: &TxnHeader, txn: &Txn) -> Applied {
        let mut triggers = Vec::new();
        let result = self.apply_one(header, txn, &mut triggers);
        if header.zxid > self.last_zxid {
            self.last_zxid = header.zxid;
        }
        Applied { result, triggers }
    }

    fn apply_one(
        &mut self,
        header: &TxnHeader,
        txn: &Txn,
        triggers: &mut Vec<Trigger>,
    ) -> TxnResult {
        match txn {
            Txn::Create(create) => self.create(header, create, triggers),
            Txn::Delete { path } => match self.delete(path, header.zxid, triggers) {
                Ok(()) => TxnResult::Deleted,
                Err(code) => TxnResult::Error(code),
            },
            Txn::SetData {
                path,
                data,
                version,
            } => {
                let Some(node) = self.nodes.get_mut(path) else {
                    return TxnResult::Error(ErrorCode::NoNode);
                };
                node.data.clone_from(data);
                node.stat.data_length = len_i32(data.len());
                node.stat.version = *version;
                node.stat.mzxid = header.zxid;
                node.stat.mtime = header.time;
                triggers.push(Trigger::DataChanged {
                    path: path.clone(),
                    acl: node.acl.clone(),
                });
                TxnResult::DataSet(node.client_stat())
            }
            Txn::SetAcl { path, acl, version } => {
                let Some(node) = self.nodes.get_mut(path) else {
                    return TxnResult::Error(ErrorCode::NoNode);
                };
                node.acl.clone_from(acl);
                node.stat.aversion = *version;
                TxnResult::AclSet(node.client_stat())
            }
            Txn::Check { .. } => TxnResult::Checked,
            Txn::Multi(txns) => {
                let failed = txns.iter().any(|t| matches!(t, Txn::Error(_)));
                let mut post_failed = false;
                let mut results = Vec::with_capacity(txns.len());
                for sub in txns {
                    if failed {
                        let code = match sub {
                            Txn::Error(code) => {
                                post_failed = true;
                                *code
                            }
                            _ if post_failed => ErrorCode::RuntimeInconsistency,
                            _ => ErrorCode::Ok,
                        };
                        results.push(TxnResult::Error(code));
                    } else {
                        results.push(self.apply_one(header, sub, triggers));
                    }
                }
                TxnResult::Multi(results)
            }
            Txn::CreateSession {
                session_id,
                timeout_ms,
            } => {
                self.sessions.insert(*session_id, *timeout_ms);
                TxnResult::SessionCreated
            }
            Txn::CloseSession { session_id } => {
                let paths = self.ephemerals(*session_id);
                for path in &paths {
                    // A node of the set is always present; an error here would only mean the
                    // index and the tree disagree, and deleting the rest is still right.
                    let _ = self.delete(path, header.zxid, triggers);
                }
                self.ephemerals.remove(session_id);
                self.sessions.remove(session_id);
                TxnResult::SessionClosed(paths)
            }
            Txn::Error(code) => TxnResult::Error(*code),
        }
    }

    fn create(
        &mut self,
        header: &TxnHeader,
        c: &CreateTxn,
        triggers: &mut Vec<Trigger>,
    ) -> TxnResult {
        let Some((parent_path, name)) = split_parent(&c.path) else {
            return TxnResult::Error(ErrorCode::NoNode);
        };
        if self.nodes.contains_key(&c.path) {
            return TxnResult::Error(ErrorCode::NodeExists);
        }
        let Some(parent) = self.nodes.get_mut(parent_path) else {
            return TxnResult::Error(ErrorCode::NoNode);
        };
        if c.parent_cversion > parent.stat.cversion {
            parent.stat.cversion = c.parent_cversion;
            parent.stat.pzxid = header.zxid;
        }
        parent.children.insert(name.to_owned());
        parent.stat.num_children = len_i32(parent.children.len());
        let parent_acl = parent.acl.clone();
        let parent_path = parent_path.to_owned();
        let stat = Stat {
            czxid: header.zxid,
            mzxid: header.zxid,
            ctime: header.time,
            mtime: header.time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: c.ephemeral_owner,
            data_length: len_i32(c.data.len()),
            num_children: 0,
            pzxid: header.zxid,
        };
        let node = Node::new(c.data.clone(), c.acl.clone(), stat);
        let stat = node.client_stat();
        self.nodes.insert(c.path.clone(), node);
        match EphemeralKind::of(c.ephemeral_owner) {
            EphemeralKind::Container => {
                self.containers.insert(c.path.clone());
            }
            EphemeralKind::Ttl(_) => {
                self.ttls.insert(c.path.clone());
            }
            EphemeralKind::Session(owner) => {
                self.ephemerals
                    .entry(owner)
                    .or_default()
                    .insert(c.path.clone());
            }
            EphemeralKind::Persistent => {}
        }
        triggers.push(Trigger::Created {
            path: c.path.clone(),
            parent: parent_path,
            acl: c.acl.clone(),
            parent_acl,
        });
        TxnResult::Created {
            path: c.path.clone(),
            stat,
            reply: c.reply,
        }
    }

    fn delete(
        &mut self,
        path: &str,
        zxid: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<(), ErrorCode> {
        let (parent_path, name) = split_parent(path).ok_or(ErrorCode::NoNode)?;
        if !self.nodes.contains_key(path) {
            return Err(ErrorCode::NoNode);
        }
        let parent = self.nodes.get_mut(parent_path).ok_or(ErrorCode::NoNode)?;
        parent.children.remove(name);
        parent.stat.num_children = len_i32(parent.children.len());
        if zxid > parent.stat.pzxid {
            parent.stat.pzxid = zxid;
        }
        let parent_acl = parent.acl.clone();
        let parent_path = parent_path.to_owned();
        let node = self.nodes.remove(path).ok_or(ErrorCode::NoNode)?;
        match EphemeralKind::of(node.stat.ephemeral_owner) {
            EphemeralKind::Container => {
                self.containers.remove(path);
            }
            EphemeralKind::Ttl(_) => {
                self.ttls.remove(path);
            }
            EphemeralKind::Session(owner) => {
                if let Some(set) = self.ephemerals.get_mut(&owner) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&owner);
                    }
                }
            }
            EphemeralKind::Persistent => {}
        }
        triggers.push(Trigger::Deleted {
            path: path.to_owned(),
            parent: parent_path,
            acl: node.acl,
            parent_acl,
        });
        Ok(())
    }
}

/// A length as jute's `int` (saturating; the frame limit keeps real lengths far below).
pub(crate) fn len_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::txn::CreateReply;

    fn hdr(zxid: i64) -> TxnHeader {
        TxnHeader {
            session_id: 1,
            cxid: 1,
            zxid,
            time: 1000 + zxid,
        }
    }

    fn create(path: &str, owner: i64, parent_cversion: i32) -> Txn {
        Txn::Create(CreateTxn {
            path: path.to_owned(),
            data: b"x".to_vec(),
            acl: Acl::open_unsafe(),
            ephemeral_owner: owner,
            parent_cversion,
            reply: CreateReply::Path,
        })
    }

    #[test]
    fn fresh_tree_has_system_nodes() {
        let t = DataTree::new();
        assert!(t.node(CONFIG_PATH).is_some());
        assert_eq!(t.node("/").map(|n| n.stat.num_children), Some(1));
        assert_eq!(t.all_children_number("/"), 3);
        assert_eq!(t.all_children_number(ZOOKEEPER_PATH), 2);
    }

    #[test]
    fn create_and_delete_keep_stats() {
        let mut t = DataTree::new();
        let a = t.apply(&hdr(5), &create("/a", 0, 1));
        assert!(matches!(a.result, TxnResult::Created { .. }));
        let root = t.node("/").map(|n| n.stat.clone()).unwrap_or_default();
        assert_eq!((root.cversion, root.pzxid, root.num_children), (1, 5, 2));
        t.apply(&hdr(6), &create("/a/b", 77, 1));
        assert_eq!(t.ephemerals(77), vec!["/a/b".to_owned()]);
        let d = t.apply(
            &hdr(7),
            &Txn::Delete {
                path: "/a/b".into(),
            },
        );
        assert_eq!(d.result, TxnResult::Deleted);
        assert_eq!(d.triggers.len(), 1);
        let a = t.node("/a").map(|n| n.stat.clone()).unwrap_or_default();
        assert_eq!((a.cversion, a.pzxid, a.num_children), (1, 7, 0));
        assert!(t.ephemerals(77).is_empty());
        assert_eq!(t.last_zxid(), 7);
    }

    #[test]
    fn failed_multi_applies_nothing() {
        let mut t = DataTree::new();
        let m = Txn::Multi(vec![
            create("/a", 0, 1),
            Txn::Error(ErrorCode::NoNode),
            Txn::Error(ErrorCode::RuntimeInconsistency),
        ]);
        let r = t.apply(&hdr(3), &m);
        assert_eq!(
            r.result,
            TxnResult::Multi(vec![
                TxnResult::Error(ErrorCode::Ok),
                TxnResult::Error(ErrorCode::NoNode),
                TxnResult::Error(ErrorCode::RuntimeInconsistency),
            ])
        );
        assert!(t.node("/a").is_none());
        assert_eq!(t.last_zxid(), 3);
    }

    #[test]
    fn ephemeral_kinds() {
        assert_eq!(EphemeralKind::of(0), EphemeralKind::Persistent);
        assert_eq!(EphemeralKind::of(CONTAINER_OWNER), EphemeralKind::Container);
        assert_eq!(
            EphemeralKind::of(EphemeralKind::ttl_owner(500)),
            EphemeralKind::Ttl(500)
        );
        assert_eq!(
            EphemeralKind::of(0x0100_0000_0000_0001),
            EphemeralKind::Session(0x0100_0000_0000_0001)
        );
    }

    #[test]
    fn reaper_candidates() {
        let mut t = DataTree::new();
        t.apply(&hdr(1), &create("/c", CONTAINER_OWNER, 1));
        t.apply(&hdr(2), &create("/t", EphemeralKind::ttl_owner(10), 2));
        assert!(t.reap_candidates(1002, 0).is_empty());
        t.apply(&hdr(3), &create("/c/x", 0, 1));
        t.apply(
            &hdr(4),
            &Txn::Delete {
                path: "/c/x".into(),
            },
        );
        assert_eq!(
            t.reap_candidates(1013, 0),
            vec!["/c".to_owned(), "/t".to_owned()]
        );
    }
}
