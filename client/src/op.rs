//! Operations inside a transaction (`multi`) or a batch of reads (`multi_read`), and their
//! results, in the client's terms (paths without the chroot).

use crate::proto::{Acl, CreateMode, Stat};

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create a node.
    Create {
        /// The path (the prefix for sequential modes).
        path: String,
        /// Its data.
        data: Vec<u8>,
        /// How it is created.
        mode: CreateMode,
        /// Its ACL; `None` uses the client's default.
        acl: Option<Vec<Acl>>,
        /// Time to live for the TTL modes, in milliseconds.
        ttl: Option<i64>,
    },
    /// Delete a node at `version` (`None`: any).
    Delete {
        /// The node.
        path: String,
        /// Expected version.
        version: Option<i32>,
    },
    /// Write a node's data at `version` (`None`: any).
    SetData {
        /// The node.
        path: String,
        /// New data.
        data: Vec<u8>,
        /// Expected version.
        version: Option<i32>,
    },
    /// Fail the transaction unless the node is at `version` (`None`: unless it exists).
    Check {
        /// The node.
        path: String,
        /// Expected version.
        version: Option<i32>,
    },
}

impl Op {
    /// Creates `path` with `data` in `mode`, default ACL.
    pub fn create(path: &str, data: &[u8], mode: CreateMode) -> Op {
        Op::Create {
            path: path.to_owned(),
            data: data.to_vec(),
            mode,
            acl: None,
            ttl: None,
        }
    }

    /// Deletes `path` at `version`.
    pub fn delete(path: &str, version: Option<i32>) -> Op {
        Op::Delete {
            path: path.to_owned(),
            version,
        }
    }

    /// Sets `path`'s data at `version`.
    pub fn set_data(path: &str, data: &[u8], version: Option<i32>) -> Op {
        Op::SetData {
            path: path.to_owned(),
            data: data.to_vec(),
            version,
        }
    }

    /// Checks `path` is at `version`.
    pub fn check(path: &str, version: Option<i32>) -> Op {
        Op::Check {
            path: path.to_owned(),
            version,
        }
    }

    /// The node the operation addresses.
    pub fn path(&self) -> &str {
        match self {
            Op::Create { path, .. }
            | Op::Delete { path, .. }
            | Op::SetData { path, .. }
            | Op::Check { path, .. } => path,
        }
    }
}

/// The result of one successful operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// The node was created at `path`.
    Create {
        /// The actual path (with sequence suffix).
        path: String,
        /// The new node's Stat, when the server sends it: ZooKeeper 3.8 answers a plain
        /// create inside a multi with the path alone (ZOOKEEPER-4026, fixed in 3.9);
        /// container and TTL creates carry it.
        stat: Option<Stat>,
    },
    /// The node was deleted.
    Delete,
    /// The data was written.
    SetData {
        /// The node's new Stat.
        stat: Stat,
    },
    /// The check passed.
    Check,
}

/// One read of a `multi_read` batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    /// Read a node's data.
    GetData(String),
    /// List a node's children.
    GetChildren(String),
}

/// The result of one read of a `multi_read` batch (each read succeeds or fails on its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    /// The node's data and Stat.
    Data(Vec<u8>, Stat),
    /// The node's children.
    Children(Vec<String>),
    /// This read failed.
    Error(crate::Error),
}
