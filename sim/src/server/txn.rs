//! Transactions: the unit of change a leader would replicate.
//!
//! [`prep`](super::prep) turns a client's write request into one [`Txn`] after validating it
//! against the current tree; [`DataTree::apply`](super::tree::DataTree::apply) applies it
//! deterministically. A write that fails validation still becomes a transaction
//! ([`Txn::Error`]) and still consumes a zxid, exactly as in ZooKeeper, so every server of an
//! ensemble sees the same sequence of zxids.

use zkit::proto::{Acl, ErrorCode, Stat};

/// What a transaction is stamped with when it is ordered (`TxnHeader`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnHeader {
    /// The session that issued the request (0 for the server itself).
    pub session_id: i64,
    /// The request's xid on its connection (0 for the server itself).
    pub cxid: i32,
    /// The transaction's zxid.
    pub zxid: i64,
    /// Wall time of the transaction, milliseconds since the epoch (simulated).
    pub time: i64,
}

/// How a successful create is reported back to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateReply {
    /// `create`: the path only.
    Path,
    /// `create2`, `createContainer`, `createTTL`: the path and the new node's Stat.
    PathAndStat,
}

/// Creation of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTxn {
    /// The final path (sequence suffix included).
    pub path: String,
    /// The node's data.
    pub data: Vec<u8>,
    /// The node's ACL, already expanded (`auth` entries replaced by identities).
    pub acl: Vec<Acl>,
    /// The Stat's `ephemeralOwner`: a session id, the container marker, a TTL encoding, or 0.
    pub ephemeral_owner: i64,
    /// The parent's cversion after this create.
    pub parent_cversion: i32,
    /// How the reply is framed.
    pub reply: CreateReply,
}

/// One transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Txn {
    /// Create a node.
    Create(CreateTxn),
    /// Delete a node (also what deleteContainer and the reaper produce).
    Delete {
        /// The node.
        path: String,
    },
    /// Replace a node's data.
    SetData {
        /// The node.
        path: String,
        /// The new data.
        data: Vec<u8>,
        /// The node's version after the write.
        version: i32,
    },
    /// Replace a node's ACL.
    SetAcl {
        /// The node.
        path: String,
        /// The new, expanded ACL.
        acl: Vec<Acl>,
        /// The node's aversion after the write.
        version: i32,
    },
    /// A version check that passed (changes nothing).
    Check {
        /// The node.
        path: String,
    },
    /// An atomic group. If any element is [`Txn::Error`] nothing is applied.
    Multi(Vec<Txn>),
    /// A session was opened.
    CreateSession {
        /// The new session's id.
        session_id: i64,
        /// Its negotiated timeout in milliseconds.
        timeout_ms: i32,
    },
    /// A session was closed or expired: its ephemeral nodes are deleted.
    CloseSession {
        /// The session.
        session_id: i64,
    },
    /// A write that failed validation; applies nothing, but is ordered like any other.
    Error(ErrorCode),
}

impl Txn {
    /// Whether this transaction (or, for a multi, any element) is an error.
    pub fn is_error(&self) -> bool {
        match self {
            Txn::Error(_) => true,
            Txn::Multi(txns) => txns.iter().any(|t| matches!(t, Txn::Error(_))),
            _ => false,
        }
    }
}

/// What applying a transaction produced (`ProcessTxnResult`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnResult {
    /// A node was created.
    Created {
        /// Its path.
        path: String,
        /// Its Stat.
        stat: Stat,
        /// How the reply is framed.
        reply: CreateReply,
    },
    /// A node was deleted.
    Deleted,
    /// Data was written; the node's new Stat.
    DataSet(Stat),
    /// An ACL was written; the node's new Stat.
    AclSet(Stat),
    /// A check passed.
    Checked,
    /// One result per element of a multi.
    Multi(Vec<TxnResult>),
    /// A session was opened.
    SessionCreated,
    /// A session was closed; the ephemeral nodes deleted.
    SessionClosed(Vec<String>),
    /// Nothing was applied, for this reason (`Ok` for an element of a failed multi that came
    /// before the failing one).
    Error(ErrorCode),
}
