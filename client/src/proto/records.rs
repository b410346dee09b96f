//! Every jute record of `zookeeper.jute` that crosses the client connection, field for field
//! in wire order.

use super::consts::{AddWatchMode, CreateMode, EventType, KeeperState, Perms, WatcherType};

record! {
    /// An identity: a scheme and an id within it (`world:anyone`, `digest:user:hash`, ...).
    pub struct Id {
        /// The auth scheme.
        pub scheme: String,
        /// The id within the scheme.
        pub id: String,
    }
}

record! {
    /// One ACL entry: permissions granted to an identity.
    pub struct Acl {
        /// The permissions granted.
        pub perms: Perms,
        /// Who they are granted to.
        pub id: Id,
    }
}

impl Acl {
    /// `world:anyone` with every permission (`ZooDefs.Ids.OPEN_ACL_UNSAFE`).
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, "world", "anyone")]
    }
    /// `world:anyone` may read (`ZooDefs.Ids.READ_ACL_UNSAFE`).
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::READ, "world", "anyone")]
    }
    /// Every permission for the session's authenticated identities (`CREATOR_ALL_ACL`).
    pub fn creator_all() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, "auth", "")]
    }
    /// An entry for `scheme:id` with `perms`.
    pub fn new(perms: Perms, scheme: &str, id: &str) -> Acl {
        Acl {
            perms,
            id: Id {
                scheme: scheme.to_owned(),
                id: id.to_owned(),
            },
        }
    }
}

record! {
    /// A node's metadata.
    pub struct Stat {
        /// Zxid of the create.
        pub czxid: i64,
        /// Zxid of the last data change.
        pub mzxid: i64,
        /// Creation time, milliseconds since the epoch.
        pub ctime: i64,
        /// Last modification time, milliseconds since the epoch.
        pub mtime: i64,
        /// Number of data changes.
        pub version: i32,
        /// Number of child changes.
        pub cversion: i32,
        /// Number of ACL changes.
        pub aversion: i32,
        /// Owning session if ephemeral, else 0.
        pub ephemeral_owner: i64,
        /// Length of the data.
        pub data_length: i32,
        /// Number of children.
        pub num_children: i32,
        /// Zxid of the last change to the children.
        pub pzxid: i64,
    }
}

record! {
    /// The first frame a client sends: no header, just this.
    pub struct ConnectRequest {
        /// Always 0.
        pub protocol_version: i32,
        /// The last zxid the client has seen (0 on first connect).
        pub last_zxid_seen: i64,
        /// The session timeout the client asks for, in milliseconds.
        pub timeout: i32,
        /// 0 for a new session, else the session to resume.
        pub session_id: i64,
        /// 16 zero bytes for a new session, else the session's password.
        pub passwd: Vec<u8>,
        /// Whether the client accepts a read-only server (absent from very old clients).
        pub read_only: bool,
    }
}

record! {
    /// The server's answer to a [`ConnectRequest`]: a timeout of 0 means the session expired.
    pub struct ConnectResponse {
        /// Always 0.
        pub protocol_version: i32,
        /// The negotiated session timeout, in milliseconds.
        pub timeout: i32,
        /// The session id.
        pub session_id: i64,
        /// The session password.
        pub passwd: Vec<u8>,
        /// Whether the server is in read-only mode (absent from very old servers).
        pub read_only: bool,
    }
}

/// Decodes a connect record whose trailing `readOnly` flag may be missing (pre-3.4 peers).
fn tolerate_missing_read_only<T: super::jute::Record>(
    bytes: &[u8],
) -> Result<T, super::DecodeError> {
    match T::from_bytes(bytes) {
        Err(super::DecodeError::Truncated {
            needed: 1,
            remaining: 0,
        }) => {
            let mut with_flag = bytes.to_vec();
            with_flag.push(0);
            T::from_bytes(&with_flag)
        }
        other => other,
    }
}

impl ConnectRequest {
    /// Decodes a whole handshake frame, accepting one without the `readOnly` byte.
    pub fn from_frame(bytes: &[u8]) -> Result<Self, super::DecodeError> {
        tolerate_missing_read_only(bytes)
    }
}

impl ConnectResponse {
    /// Decodes a whole handshake reply, accepting one without the `readOnly` byte.
    pub fn from_frame(bytes: &[u8]) -> Result<Self, super::DecodeError> {
        tolerate_missing_read_only(bytes)
    }
}

record! {
    /// Precedes every request after the handshake.
    pub struct RequestHeader {
        /// The client's request number (or a reserved xid).
        pub xid: i32,
        /// The opcode, as its number.
        pub op: i32,
    }
}

record! {
    /// Precedes every reply; when `err` is not 0 no body follows.
    pub struct ReplyHeader {
        /// The xid of the request answered (or a reserved xid).
        pub xid: i32,
        /// The last zxid the server has applied.
        pub zxid: i64,
        /// The result code, as its number.
        pub err: i32,
    }
}

record! {
    /// Adds an identity to the session (xid [`AUTH_XID`](super::AUTH_XID)).
    pub struct AuthPacket {
        /// Always 0.
        pub auth_type: i32,
        /// The scheme, e.g. `digest`.
        pub scheme: String,
        /// The credential, e.g. `user:password`.
        pub auth: Vec<u8>,
    }
}

record! {
    /// A request that carries only a path: deleteContainer, getACL, sync, getEphemerals,
    /// getAllChildrenNumber.
    pub struct PathRequest {
        /// The node (or prefix, for getEphemerals).
        pub path: String,
    }
}

record! {
    /// A read that may leave a watch: exists, getData, getChildren, getChildren2.
    pub struct WatchedRequest {
        /// The node.
        pub path: String,
        /// Whether to leave a one-shot watch.
        pub watch: bool,
    }
}

record! {
    /// Creates a node (opcodes create, create2, createContainer).
    pub struct CreateRequest {
        /// The node's path (the prefix, for sequential modes).
        pub path: String,
        /// Its data.
        pub data: Vec<u8>,
        /// Its ACL.
        pub acl: Vec<Acl>,
        /// Its [`CreateMode`].
        pub flags: CreateMode,
    }
}

record! {
    /// Creates a node with a time to live (opcode createTTL).
    pub struct CreateTtlRequest {
        /// The node's path.
        pub path: String,
        /// Its data.
        pub data: Vec<u8>,
        /// Its ACL.
        pub acl: Vec<Acl>,
        /// Its [`CreateMode`] (one of the TTL modes).
        pub flags: CreateMode,
        /// Time to live in milliseconds.
        pub ttl: i64,
    }
}

record! {
    /// Deletes a node if its version matches (-1 matches any).
    pub struct DeleteRequest {
        /// The node.
        pub path: String,
        /// The expected version, or -1.
        pub version: i32,
    }
}

record! {
    /// Checks a node's version (inside a multi; same layout as [`DeleteRequest`]).
    pub struct CheckVersionRequest {
        /// The node.
        pub path: String,
        /// The expected version, or -1.
        pub version: i32,
    }
}

record! {
    /// Writes a node's data if its version matches (-1 matches any).
    pub struct SetDataRequest {
        /// The node.
        pub path: String,
        /// The new data.
        pub data: Vec<u8>,
        /// The expected version, or -1.
        pub version: i32,
    }
}

record! {
    /// Writes a node's ACL if its ACL version matches (-1 matches any).
    pub struct SetAclRequest {
        /// The node.
        pub path: String,
        /// The new ACL.
        pub acl: Vec<Acl>,
        /// The expected ACL version, or -1.
        pub version: i32,
    }
}

record! {
    /// Adds a persistent or persistent-recursive watch.
    pub struct AddWatchRequest {
        /// The node.
        pub path: String,
        /// The kind of watch.
        pub mode: AddWatchMode,
    }
}

record! {
    /// Removes watches (removeWatches) or asks whether one exists (checkWatches).
    pub struct RemoveWatchesRequest {
        /// The node.
        pub path: String,
        /// Which watches.
        pub watcher_type: WatcherType,
    }
}

record! {
    /// Restores one-shot watches after a reconnect (xid [`SET_WATCHES_XID`](super::SET_WATCHES_XID)).
    pub struct SetWatches {
        /// Changes after this zxid fire at once.
        pub relative_zxid: i64,
        /// Paths with data watches.
        pub data_watches: Vec<String>,
        /// Paths with exists watches (on nodes that did not exist).
        pub exist_watches: Vec<String>,
        /// Paths with child watches.
        pub child_watches: Vec<String>,
    }
}

record! {
    /// Restores every kind of watch after a reconnect (3.6+).
    pub struct SetWatches2 {
        /// Changes after this zxid fire at once.
        pub relative_zxid: i64,
        /// Paths with data watches.
        pub data_watches: Vec<String>,
        /// Paths with exists watches.
        pub exist_watches: Vec<String>,
        /// Paths with child watches.
        pub child_watches: Vec<String>,
        /// Paths with persistent watches.
        pub persistent_watches: Vec<String>,
        /// Paths with persistent recursive watches.
        pub persistent_recursive_watches: Vec<String>,
    }
}

record! {
    /// Changes the ensemble's membership (dynamic reconfiguration).
    pub struct ReconfigRequest {
        /// Servers to add (incremental).
        pub joining_servers: String,
        /// Server ids to remove (incremental).
        pub leaving_servers: String,
        /// The whole new membership (non-incremental).
        pub new_members: String,
        /// Expected current config version, or -1.
        pub cur_config_id: i64,
    }
}

record! {
    /// A SASL token (request and reply).
    pub struct SaslToken {
        /// The token bytes.
        pub token: Vec<u8>,
    }
}

record! {
    /// A watch notification's body (reply xid [`NOTIFICATION_XID`](super::NOTIFICATION_XID)).
    pub struct WatcherEvent {
        /// What happened.
        pub event_type: EventType,
        /// The session's state.
        pub state: KeeperState,
        /// The node concerned (server-side path, chroot included).
        pub path: String,
    }
}

record! {
    /// The reply to create: the node's actual path.
    pub struct CreateResponse {
        /// The created path (with the sequence suffix, if any).
        pub path: String,
    }
}

record! {
    /// The reply to create2, createContainer and createTTL.
    pub struct Create2Response {
        /// The created path.
        pub path: String,
        /// The new node's Stat.
        pub stat: Stat,
    }
}

record! {
    /// A reply that is one Stat: exists, setData, setACL.
    pub struct StatResponse {
        /// The node's Stat.
        pub stat: Stat,
    }
}

record! {
    /// The reply to getData (and reconfig, and getConfig).
    pub struct GetDataResponse {
        /// The data.
        pub data: Vec<u8>,
        /// The node's Stat.
        pub stat: Stat,
    }
}

record! {
    /// The reply to getACL.
    pub struct GetAclResponse {
        /// The ACL.
        pub acl: Vec<Acl>,
        /// The node's Stat.
        pub stat: Stat,
    }
}

record! {
    /// The reply to getChildren.
    pub struct GetChildrenResponse {
        /// Child names (not paths), in the server's order.
        pub children: Vec<String>,
    }
}

record! {
    /// The reply to getChildren2.
    pub struct GetChildren2Response {
        /// Child names.
        pub children: Vec<String>,
        /// The parent's Stat.
        pub stat: Stat,
    }
}

record! {
    /// The reply to sync.
    pub struct SyncResponse {
        /// The path synced.
        pub path: String,
    }
}

record! {
    /// The reply to getEphemerals.
    pub struct GetEphemeralsResponse {
        /// Paths of the session's ephemeral nodes.
        pub ephemerals: Vec<String>,
    }
}

record! {
    /// The reply to getAllChildrenNumber.
    pub struct GetAllChildrenNumberResponse {
        /// Number of descendants.
        pub total_number: i32,
    }
}

record! {
    /// One identity the session holds.
    pub struct ClientInfo {
        /// The auth scheme.
        pub auth_scheme: String,
        /// The user within the scheme.
        pub user: String,
    }
}

record! {
    /// The reply to whoAmI.
    pub struct WhoAmIResponse {
        /// The session's identities.
        pub client_info: Vec<ClientInfo>,
    }
}

record! {
    /// A bare result code: addWatch's reply, and an error inside a multi reply.
    pub struct ErrorResponse {
        /// The code, as its number.
        pub err: i32,
    }
}
