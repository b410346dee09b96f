//! ZooKeeper's numbered constants with their exact wire values: opcodes, error codes, create
//! modes, permissions, event types, keeper states, watcher types, addWatch modes and the
//! reserved xids.

/// The xid of a watch notification sent by the server.
pub const NOTIFICATION_XID: i32 = -1;
/// The xid of a ping and its reply.
pub const PING_XID: i32 = -2;
/// The xid of an addAuth request and its reply.
pub const AUTH_XID: i32 = -4;
/// The xid of a SetWatches/SetWatches2 request sent on reconnect, and its reply.
pub const SET_WATCHES_XID: i32 = -8;

numbered! {
    /// A request's operation (`ZooDefs.OpCode`).
    pub enum OpCode as "opcode" {
        /// Server-side marker for a watch notification.
        Notification = 0,
        /// Create a node (reply: path).
        Create = 1,
        /// Delete a node.
        Delete = 2,
        /// Stat a node, optionally leaving a watch.
        Exists = 3,
        /// Read a node's data and Stat.
        GetData = 4,
        /// Write a node's data.
        SetData = 5,
        /// Read a node's ACL.
        GetAcl = 6,
        /// Write a node's ACL.
        SetAcl = 7,
        /// List a node's children.
        GetChildren = 8,
        /// Make the server catch up with the leader.
        Sync = 9,
        /// Keep the session alive.
        Ping = 11,
        /// List a node's children with its Stat.
        GetChildren2 = 12,
        /// Check a node's version (inside a multi).
        Check = 13,
        /// An atomic transaction.
        Multi = 14,
        /// Create a node (reply: path and Stat).
        Create2 = 15,
        /// Change the ensemble's membership.
        Reconfig = 16,
        /// Ask whether a watch is registered.
        CheckWatches = 17,
        /// Remove registered watches.
        RemoveWatches = 18,
        /// Create a container node.
        CreateContainer = 19,
        /// Delete a container node (server internal).
        DeleteContainer = 20,
        /// Create a node with a time to live.
        CreateTtl = 21,
        /// Several reads answered together.
        MultiRead = 22,
        /// Add authentication to the session.
        Auth = 100,
        /// Restore watches after a reconnect.
        SetWatches = 101,
        /// SASL authentication step.
        Sasl = 102,
        /// List the session's ephemeral nodes.
        GetEphemerals = 103,
        /// Count every descendant of a node.
        GetAllChildrenNumber = 104,
        /// Restore watches, persistent ones included, after a reconnect.
        SetWatches2 = 105,
        /// Add a persistent or persistent-recursive watch.
        AddWatch = 106,
        /// Ask which identities the session has.
        WhoAmI = 107,
        /// Server internal: session creation.
        CreateSession = -10,
        /// Close the session.
        CloseSession = -11,
        /// A failed operation (inside a multi reply).
        Error = -1,
    }
}

numbered! {
    /// A result code (`KeeperException.Code`).
    pub enum ErrorCode as "error code" {
        /// Success.
        Ok = 0,
        /// A system or server-side error.
        SystemError = -1,
        /// A runtime inconsistency (an op after the failing one in a multi).
        RuntimeInconsistency = -2,
        /// A data inconsistency was found.
        DataInconsistency = -3,
        /// The connection to the server was lost.
        ConnectionLoss = -4,
        /// Error while marshalling or unmarshalling data.
        MarshallingError = -5,
        /// The operation is not implemented.
        Unimplemented = -6,
        /// The operation timed out.
        OperationTimeout = -7,
        /// Invalid arguments.
        BadArguments = -8,
        /// Unknown session (internal).
        UnknownSession = -12,
        /// No quorum of the new config is connected.
        NewConfigNoQuorum = -13,
        /// Another reconfiguration is in progress.
        ReconfigInProgress = -14,
        /// API errors.
        ApiError = -100,
        /// The node does not exist.
        NoNode = -101,
        /// Not authenticated.
        NoAuth = -102,
        /// The version does not match.
        BadVersion = -103,
        /// Ephemeral nodes may not have children.
        NoChildrenForEphemerals = -108,
        /// The node already exists.
        NodeExists = -110,
        /// The node has children.
        NotEmpty = -111,
        /// The session has expired.
        SessionExpired = -112,
        /// Invalid callback.
        InvalidCallback = -113,
        /// Invalid ACL.
        InvalidAcl = -114,
        /// Client authentication failed.
        AuthFailed = -115,
        /// Session moved to another server.
        SessionMoved = -118,
        /// State-changing request sent to a read-only server.
        NotReadOnly = -119,
        /// Attempt to create an ephemeral node on a local session.
        EphemeralOnLocalSession = -120,
        /// No such watcher.
        NoWatcher = -121,
        /// The request took too long.
        RequestTimeout = -122,
        /// Reconfiguration is disabled.
        ReconfigDisabled = -123,
        /// The session was closed because it needs SASL authentication.
        SessionClosedRequireSaslAuth = -124,
        /// A quota was exceeded.
        QuotaExceeded = -125,
        /// The operation was throttled.
        ThrottledOp = -127,
    }
}

impl ErrorCode {
    /// ZooKeeper's own name for the code, as `KeeperException` prints it.
    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::Ok => "ok",
            ErrorCode::SystemError => "system error",
            ErrorCode::RuntimeInconsistency => "runtime inconsistency",
            ErrorCode::DataInconsistency => "data inconsistency",
            ErrorCode::ConnectionLoss => "connection loss",
            ErrorCode::MarshallingError => "marshalling error",
            ErrorCode::Unimplemented => "unimplemented",
            ErrorCode::OperationTimeout => "operation timeout",
            ErrorCode::BadArguments => "bad arguments",
            ErrorCode::UnknownSession => "unknown session",
            ErrorCode::NewConfigNoQuorum => "no quorum for new config",
            ErrorCode::ReconfigInProgress => "reconfig in progress",
            ErrorCode::ApiError => "api error",
            ErrorCode::NoNode => "no node",
            ErrorCode::NoAuth => "not authenticated",
            ErrorCode::BadVersion => "bad version",
            ErrorCode::NoChildrenForEphemerals => "no children for ephemerals",
            ErrorCode::NodeExists => "node exists",
            ErrorCode::NotEmpty => "directory not empty",
            ErrorCode::SessionExpired => "session expired",
            ErrorCode::InvalidCallback => "invalid callback",
            ErrorCode::InvalidAcl => "invalid ACL",
            ErrorCode::AuthFailed => "auth failed",
            ErrorCode::SessionMoved => "session moved",
            ErrorCode::NotReadOnly => "not a read-only call",
            ErrorCode::EphemeralOnLocalSession => "ephemeral on local session",
            ErrorCode::NoWatcher => "no watcher",
            ErrorCode::RequestTimeout => "request timeout",
            ErrorCode::ReconfigDisabled => "reconfig disabled",
            ErrorCode::SessionClosedRequireSaslAuth => "session closed: SASL auth required",
            ErrorCode::QuotaExceeded => "quota exceeded",
            ErrorCode::ThrottledOp => "op throttled",
        }
    }
}

numbered! {
    /// How a node is created (`CreateMode`), sent as the create request's flags.
    pub enum CreateMode as "create mode" {
        /// A node that lives until deleted.
        Persistent = 0,
        /// A node deleted when the session that made it ends.
        Ephemeral = 1,
        /// A persistent node whose name gets a 10-digit sequence suffix.
        PersistentSequential = 2,
        /// An ephemeral node whose name gets a 10-digit sequence suffix.
        EphemeralSequential = 3,
        /// A node the server deletes once its last child is gone.
        Container = 4,
        /// A persistent node deleted once unmodified and childless past its TTL.
        PersistentWithTtl = 5,
        /// A sequential node deleted once unmodified and childless past its TTL.
        PersistentSequentialWithTtl = 6,
    }
}

impl CreateMode {
    /// Whether the node dies with its session.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }
    /// Whether the server appends a sequence number to the name.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }
    /// Whether this is a container node.
    pub fn is_container(self) -> bool {
        self == CreateMode::Container
    }
    /// Whether the node has a time to live.
    pub fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }
    /// The opcode a create in this mode is sent with when the caller wants the Stat back.
    pub fn create_opcode(self) -> OpCode {
        if self.is_container() {
            OpCode::CreateContainer
        } else if self.is_ttl() {
            OpCode::CreateTtl
        } else {
            OpCode::Create2
        }
    }
}

/// Permission bits of an ACL entry (`ZooDefs.Perms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Perms(pub i32);

impl Perms {
    /// Read data and list children.
    pub const READ: Perms = Perms(1);
    /// Write data.
    pub const WRITE: Perms = Perms(2);
    /// Create children.
    pub const CREATE: Perms = Perms(4);
    /// Delete children.
    pub const DELETE: Perms = Perms(8);
    /// Set the ACL.
    pub const ADMIN: Perms = Perms(16);
    /// Every permission.
    pub const ALL: Perms = Perms(31);

    /// Whether every bit of `other` is set here.
    pub fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Perms {
    type Output = Perms;
    fn bitor(self, rhs: Perms) -> Perms {
        Perms(self.0 | rhs.0)
    }
}

impl super::jute::Field for Perms {
    fn put(&self, out: &mut Vec<u8>) {
        super::jute::Writer::put_i32(out, self.0)
    }
    fn get(r: &mut super::jute::Reader<'_>) -> Result<Self, super::DecodeError> {
        Ok(Perms(r.read_i32()?))
    }
    const MIN_SIZE: usize = 4;
}

#[cfg(test)]
impl proptest::arbitrary::Arbitrary for Perms {
    type Parameters = ();
    type Strategy = proptest::strategy::Map<proptest::num::i32::Any, fn(i32) -> Perms>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        use proptest::strategy::Strategy;
        proptest::num::i32::ANY.prop_map(Perms)
    }
}

numbered! {
    /// What a watch notification reports (`Watcher.Event.EventType`).
    pub enum EventType as "event type" {
        /// A connection state change, not about a node.
        None = -1,
        /// The node was created.
        NodeCreated = 1,
        /// The node was deleted.
        NodeDeleted = 2,
        /// The node's data changed.
        NodeDataChanged = 3,
        /// The node's children changed.
        NodeChildrenChanged = 4,
        /// A data watch was removed.
        DataWatchRemoved = 5,
        /// A child watch was removed.
        ChildWatchRemoved = 6,
        /// A persistent watch was removed.
        PersistentWatchRemoved = 7,
    }
}

numbered! {
    /// The session's state as carried by a notification (`Watcher.Event.KeeperState`).
    pub enum KeeperState as "keeper state" {
        /// Unused since 3.1.
        Unknown = -1,
        /// The client is disconnected.
        Disconnected = 0,
        /// Unused since 3.1.
        NoSyncConnected = 1,
        /// The client is connected.
        SyncConnected = 3,
        /// Authentication failed.
        AuthFailed = 4,
        /// Connected to a read-only server.
        ConnectedReadOnly = 5,
        /// SASL authentication succeeded.
        SaslAuthenticated = 6,
        /// The session expired.
        Expired = -112,
        /// The client closed the session.
        Closed = 7,
    }
}

numbered! {
    /// Which watches removeWatches and checkWatches address (`Watcher.WatcherType`).
    pub enum WatcherType as "watcher type" {
        /// Child watches.
        Children = 1,
        /// Data and exists watches.
        Data = 2,
        /// Every kind.
        Any = 3,
        /// Persistent watches.
        Persistent = 4,
        /// Persistent recursive watches.
        PersistentRecursive = 5,
    }
}

numbered! {
    /// The kind of watch addWatch sets (`AddWatchMode`).
    pub enum AddWatchMode as "addWatch mode" {
        /// Fires for data and child changes of the node, and stays.
        Persistent = 0,
        /// Fires for the node and every descendant, and stays.
        PersistentRecursive = 1,
    }
}
