//! The server's state behind one lock: the tree, the watches, the sessions and the open
//! connections, with the operations that span them: the handshake, committing a transaction
//! (zxid, apply, notifications), session expiry, the container/TTL reaper, closing a
//! connection.
//!
//! Nothing here awaits: connection tasks and timers lock the core, call one method with the
//! current time (milliseconds since the server started, from `tokio::time`), and hand the
//! frames it queued to the sockets. Every outgoing frame of a connection goes through one
//! ordered channel, so a notification caused by a transaction is always queued before any
//! reply that could show the transaction's effect.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{mpsc, Notify};
use zkit::proto::{
    encode_frame, Acl, ConnectRequest, ConnectResponse, CreateMode, CreateTtlRequest, DecodeError,
    ErrorCode, OpCode, Reader, Record, ReplyHeader, Request, RequestHeader, Response,
    NOTIFICATION_XID,
};

use super::acl::{check_acl, AuthInfo};
use super::order::ListOrder;
use super::prep::{prepare_delete_container, PrepContext};
use super::replica::Replica;
use super::session::{negotiate_timeout, SessionTracker, PASSWORD_LEN};
use super::tree::{Applied, DataTree};
use super::txn::{Txn, TxnHeader};
use super::watches::{Fired, WatchManager};
use super::ServerConfig;

/// What a connection task receives to write.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Bytes to write (one or more whole frames, or a four-letter-word answer).
    Bytes(Vec<u8>),
    /// Flush what came before, then close the connection.
    Close,
}

/// Whether a connection goes on after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Keep reading.
    Continue,
    /// The server closed the connection (closeSession, failed auth, expired...).
    Close,
}

/// One open connection.
#[derive(Debug)]
pub(crate) struct Connection {
    /// The session bound by the handshake (0 before it).
    pub(crate) session_id: i64,
    /// Identities held (`ip`, then addAuth's).
    pub(crate) auth: AuthInfo,
    /// The remote address.
    pub(crate) peer: SocketAddr,
    /// Requests received.
    pub(crate) received: u64,
    /// Frames sent.
    pub(crate) sent: u64,
    /// Last zxid sent to this connection.
    pub(crate) last_zxid: i64,
    tx: mpsc::UnboundedSender<Outbound>,
    closed: Arc<Notify>,
}

/// The whole server state.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) config: ServerConfig,
    pub(crate) tree: DataTree,
    pub(crate) watches: WatchManager,
    pub(crate) sessions: SessionTracker,
    pub(crate) connections: BTreeMap<u64, Connection>,
    pub(crate) session_conn: BTreeMap<i64, u64>,
    next_conn: u64,
    pub(crate) packets_received: u64,
    pub(crate) packets_sent: u64,
    /// Set when this server is one member of a replicated ensemble: writes, session
    /// creation and expiry then go through the quorum instead of [`Core::commit`].
    pub(crate) replica: Option<Replica>,
    /// The order children and ephemerals are listed in (seeded per server).
    pub(crate) list_order: ListOrder,
}

/// Builds a reply frame: header, then the body when there is one.
pub(crate) fn reply_frame(xid: i32, zxid: i64, err: ErrorCode, body: Option<&Response>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, |b| {
        ReplyHeader {
            xid,
            zxid,
            err: err.code(),
        }
        .encode(b);
        if let Some(body) = body {
            body.encode(b);
        }
    });
    out
}

impl Core {
    /// A fresh server state.
    pub(crate) fn new(config: ServerConfig) -> Core {
        let tick = u64::try_from(config.tick_time.as_millis()).unwrap_or(u64::MAX);
        let sessions = SessionTracker::new(config.server_id, tick, config.seed);
        let list_order = ListOrder::new(config.seed);
        Core {
            config,
            tree: DataTree::new(),
            watches: WatchManager::new(),
            sessions,
            connections: BTreeMap::new(),
            session_conn: BTreeMap::new(),
            next_conn: 1,
            packets_received: 0,
            packets_sent: 0,
            replica: None,
            list_order,
        }
    }

    /// Wall time in ms since the epoch for a server time `now`.
    pub(crate) fn wall(&self, now: u64) -> i64 {
        self.config
            .epoch_ms
            .saturating_add(i64::try_from(now).unwrap_or(i64::MAX))
    }

    /// Numbers the connections registered from now on from `first` on (see
    /// [`Core::set_replica`]).
    pub(crate) fn number_connections_from(&mut self, first: u64) {
        self.next_conn = self.next_conn.max(first);
    }

    /// Registers a new connection; its frames go to `tx`, `closed` is notified when the
    /// server closes it.
    pub(crate) fn register(
        &mut self,
        peer: SocketAddr,
        tx: mpsc::UnboundedSender<Outbound>,
        closed: Arc<Notify>,
    ) -> u64 {
        let id = self.next_conn;
        self.next_conn += 1;
        self.connections.insert(
            id,
            Connection {
                session_id: 0,
                auth: AuthInfo::for_peer(peer.ip()),
                peer,
                received: 0,
                sent: 0,
                last_zxid: 0,
                tx,
                closed,
            },
        );
        id
    }

    /// Queues bytes for a connection (dropped silently if it is gone).
    pub(crate) fn send(&mut self, conn: u64, bytes: Vec<u8>) {
        if let Some(c) = self.connections.get_mut(&conn) {
            c.sent += 1;
            self.packets_sent += 1;
            let _ = c.tx.send(Outbound::Bytes(bytes));
        }
    }

    /// Closes a connection from the server side: it is forgotten at once (its watches too),
    /// what was queued is flushed, then the socket is closed.
    pub(crate) fn close_connection(&mut self, conn: u64) {
        if let Some(c) = self.connections.remove(&conn) {
            let _ = c.tx.send(Outbound::Close);
            c.closed.notify_one();
            if self.session_conn.get(&c.session_id) == Some(&conn) {
                self.session_conn.remove(&c.session_id);
            }
            self.watches.remove_watcher(conn);
            tracing::debug!(
                conn,
                session = format_args!("0x{:x}", c.session_id),
                "connection closed by server"
            );
        }
    }

    /// A connection ended from the client side (EOF, error, malformed input): its watches
    /// go, its session stays until it expires.
    pub(crate) fn disconnect(&mut self, conn: u64) {
        if let Some(c) = self.connections.remove(&conn) {
            let _ = c.tx.send(Outbound::Close);
            if self.session_conn.get(&c.session_id) == Some(&conn) {
                self.session_conn.remove(&c.session_id);
            }
            self.watches.remove_watcher(conn);
        }
    }

    /// Orders and applies one transaction, then delivers the notifications it causes.
    pub(crate) fn commit(
        &mut self,
        session_id: i64,
        cxid: i32,
        txn: &Txn,
        now: u64,
    ) -> (i64, Applied) {
        let zxid = self.tree.last_zxid() + 1;
        let header = TxnHeader {
            session_id,
            cxid,
            zxid,
            time: self.wall(now),
        };
        let applied = self.apply_txn(&header, txn);
        (zxid, applied)
    }

    /// Applies one ordered transaction to the tree and delivers the notifications it causes
    /// (the part of a commit shared by the standalone server and an ensemble member).
    pub(crate) fn apply_txn(&mut self, header: &TxnHeader, txn: &Txn) -> Applied {
        let zxid = header.zxid;
        let applied = self.tree.apply(header, txn);
        tracing::trace!(zxid, ?txn, "committed");
        let mut fired = Vec::new();
        for trigger in &applied.triggers {
            fired.extend(self.watches.trigger(trigger));
        }
        // ZooKeeper 3.8 sends -1 in a notification's header; 3.9 sends the zxid.
        let event_zxid = if self.config.notification_zxid {
            zxid
        } else {
            -1
        };
        self.deliver(fired, event_zxid);
        applied
    }

    /// Sends watch notifications, each only if its watcher may read the node.
    pub(crate) fn deliver(&mut self, fired: Vec<Fired>, zxid: i64) {
        for f in fired {
            let Some(conn) = self.connections.get(&f.watcher) else {
                continue;
            };
            if let Some(acl) = &f.acl {
                if check_acl(&conn.auth, acl, zkit::proto::Perms::READ).is_err() {
                    continue;
                }
            }
            let mut out = Vec::new();
            encode_frame(&mut out, |b| {
                ReplyHeader {
                    xid: NOTIFICATION_XID,
                    zxid,
                    err: 0,
                }
                .encode(b);
                f.event.encode(b);
            });
            self.send(f.watcher, out);
        }
    }

    /// The handshake (`processConnectRequest`): a new session, or a resumed one. Returns the
    /// ConnectResponse frame and whether the connection must close after it, or `None` to
    /// drop the connection without an answer (the client has seen a newer zxid than ours).
    pub(crate) fn connect(
        &mut self,
        conn: u64,
        req: &ConnectRequest,
        old_client: bool,
        now: u64,
    ) -> Option<(Vec<u8>, Flow)> {
        if self.replica.as_ref().is_some_and(|r| r.read_only) {
            return self.read_only_connect(conn, req, now);
        }
        if self.replica.is_some() {
            return self.replica_connect(conn, req, old_client);
        }
        if req.last_zxid_seen > self.tree.last_zxid() {
            tracing::info!(
                conn,
                client_zxid = format_args!("0x{:x}", req.last_zxid_seen),
                our_zxid = format_args!("0x{:x}", self.tree.last_zxid()),
                "refusing session: client has seen a newer zxid"
            );
            return None;
        }
        let timeout = negotiate_timeout(
            req.timeout,
            self.config.min_session_timeout_ms(),
            self.config.max_session_timeout_ms(),
        );
        let (timeout, session_id, passwd, valid) = if req.session_id == 0 {
            let (id, passwd) = self.sessions.create(timeout, now);
            self.commit(
                id,
                0,
                &Txn::CreateSession {
                    session_id: id,
                    timeout_ms: timeout,
                },
                now,
            );
            tracing::info!(
                conn,
                session = format_args!("0x{id:x}"),
                timeout,
                "session created"
            );
            (timeout, id, passwd.to_vec(), true)
        } else {
            let id = req.session_id;
            // The session moves here: its previous connection is closed, whatever comes next.
            if let Some(old) = self.session_conn.get(&id).copied() {
                if old != conn {
                    self.close_connection(old);
                }
            }
            let ok = self
                .sessions
                .get(id)
                .is_some_and(|s| s.password[..] == req.passwd[..]);
            if ok {
                self.sessions.set_timeout(id, timeout, now);
                tracing::info!(
                    conn,
                    session = format_args!("0x{id:x}"),
                    timeout,
                    "session resumed"
                );
                let passwd = self
                    .sessions
                    .get(id)
                    .map(|s| s.password.to_vec())
                    .unwrap_or_default();
                (timeout, id, passwd, true)
            } else {
                tracing::info!(
                    conn,
                    session = format_args!("0x{id:x}"),
                    "session expired or wrong password"
                );
                (0, 0, vec![0; PASSWORD_LEN], false)
            }
        };
        if valid {
            self.session_conn.insert(session_id, conn);
            if let Some(c) = self.connections.get_mut(&conn) {
                c.session_id = session_id;
            }
        }
        let out = connect_frame(timeout, session_id, passwd, old_client);
        Some((out, if valid { Flow::Continue } else { Flow::Close }))
    }

    /// Expires every session whose deadline has passed: a closeSession transaction deletes
    /// its ephemeral nodes (firing their watches), then its connection, if any, is closed.
    pub(crate) fn expire(&mut self, now: u64) {
        if self.replica.is_some() {
            self.replica_expire(now);
            self.read_only_expire(now);
            return;
        }
        for id in self.sessions.expired(now) {
            self.sessions.remove(id);
            tracing::info!(session = format_args!("0x{id:x}"), "session expired");
            self.commit(id, 0, &Txn::CloseSession { session_id: id }, now);
            if let Some(conn) = self.session_conn.get(&id).copied() {
                self.close_connection(conn);
            }
        }
    }

    /// Deletes empty containers and expired TTL nodes (`ContainerManager`).
    pub(crate) fn reap(&mut self, now: u64) {
        let wall = self.wall(now);
        if self.replica.is_some() {
            self.replica_reap(wall);
            return;
        }
        for path in self.tree.reap_candidates(wall, 0) {
            let txn = prepare_delete_container(&self.tree, &path);
            tracing::debug!(%path, "reaping");
            self.commit(0, 0, &txn, now);
        }
    }

    /// The prep context of a connection.
    pub(crate) fn prep_context<'a>(&self, auth: &'a AuthInfo, session_id: i64) -> PrepContext<'a> {
        PrepContext {
            session_id,
            auth,
            extended_types: self.config.extended_types,
        }
    }

    /// Decodes and answers one request frame of an established connection. A frame that does
    /// not decode is an error: the caller drops the connection.
    /// The session timeout a handshake asking for `requested` ms is granted
    /// (`processConnectRequest` clamps it into the server's bounds).
    pub(crate) fn negotiated_timeout(&self, requested: i32) -> i32 {
        negotiate_timeout(
            requested,
            self.config.min_session_timeout_ms(),
            self.config.max_session_timeout_ms(),
        )
    }

    pub(crate) fn handle_frame(
        &mut self,
        conn: u64,
        frame: &[u8],
        now: u64,
    ) -> Result<Flow, DecodeError> {
        let Some(c) = self.connections.get_mut(&conn) else {
            return Ok(Flow::Close);
        };
        c.received += 1;
        let session_id = c.session_id;
        self.packets_received += 1;
        if self
            .replica
            .as_ref()
            .is_some_and(|r| r.drops_requests_of(session_id))
        {
            tracing::debug!(
                conn,
                session = format_args!("0x{session_id:x}"),
                "request of a closing session dropped"
            );
            return Ok(Flow::Continue);
        }
        self.sessions.touch(session_id, now);
        if let Some(r) = self.replica.as_mut() {
            r.touched.insert(session_id);
        }
        let header = {
            let mut r = Reader::new(frame);
            RequestHeader::decode(&mut r)?
        };
        if !valid_request_type(header.op) {
            // ZooKeeper 3.8.0 (`Request.isValid`, `UnimplementedRequestProcessor`) answers a
            // request of a type it does not take with UNIMPLEMENTED, in a header carrying
            // the request's unset zxid (-1), and closes the connection.
            tracing::info!(
                conn,
                op = header.op,
                "unknown request type: connection closed"
            );
            self.send(
                conn,
                reply_frame(header.xid, -1, ErrorCode::Unimplemented, None),
            );
            return Ok(Flow::Close);
        }
        // A frame that does not decode ends the connection, except a create whose flags
        // name no mode: ZooKeeper 3.8.0 decodes the flags as a plain int and refuses them
        // (`CreateMode.fromFlag`) before any other check, with BADARGUMENTS in an error
        // transaction, and the connection goes on. Such a create is rewritten into a
        // request that `prep` refuses the same way first (see [`unknown_create_flags`]).
        let rewritten = unknown_create_flags(frame);
        let frame = rewritten.as_deref().unwrap_or(frame);
        let (header, request) = Request::decode_frame(frame)?;
        Ok(self.process(conn, session_id, header.xid, request, frame, now))
    }
}

/// Whether a client may send a request of type `op` (ZooKeeper 3.8.0's `Request.isValid`,
/// plus `auth` and `sasl`, which it handles before asking): every opcode but
/// `notification` and `error`.
fn valid_request_type(op: i32) -> bool {
    OpCode::try_from(op).is_ok_and(|op| !matches!(op, OpCode::Notification | OpCode::Error))
}

/// A create of any kind (`create`, `create2`, `createContainer`, `createTTL`) whose flags
/// name no [`CreateMode`], rewritten as a `createTTL` of a persistent node with no TTL:
/// the first check that request meets refuses it with BADARGUMENTS, which is what
/// ZooKeeper 3.8.0 answers the original with (before looking at anything else). `None` for
/// every other frame. (A create inside a `multi` with such flags still closes the
/// connection, where ZooKeeper fails the `multi` with BADARGUMENTS.)
fn unknown_create_flags(frame: &[u8]) -> Option<Vec<u8>> {
    let mut r = Reader::new(frame);
    let header = RequestHeader::decode(&mut r).ok()?;
    let op = OpCode::try_from(header.op).ok()?;
    if !matches!(
        op,
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl
    ) {
        return None;
    }
    r.read_string().ok()?;
    r.read_buffer().ok()?;
    r.read_vec(12, <Acl as Record>::decode).ok()?;
    let flags = r.read_i32().ok()?;
    if CreateMode::try_from(flags).is_ok() {
        return None;
    }
    if op == OpCode::CreateTtl {
        r.read_i64().ok()?;
    }
    r.finish().ok()?;
    let refused = Request::CreateTtl(CreateTtlRequest {
        path: "/".to_owned(),
        data: Vec::new(),
        acl: Vec::new(),
        flags: CreateMode::Persistent,
        ttl: -1,
    });
    let mut out = Vec::new();
    refused.encode(header.xid, &mut out);
    Some(out)
}

/// The ConnectResponse frame of a handshake (`timeout` 0 and session 0 refuse the session).
pub(crate) fn connect_frame(
    timeout: i32,
    session_id: i64,
    passwd: Vec<u8>,
    old_client: bool,
) -> Vec<u8> {
    connect_frame_from(timeout, session_id, passwd, old_client, false)
}

/// The ConnectResponse frame of a handshake, saying whether the server is read-only.
pub(crate) fn connect_frame_from(
    timeout: i32,
    session_id: i64,
    passwd: Vec<u8>,
    old_client: bool,
    read_only: bool,
) -> Vec<u8> {
    let response = ConnectResponse {
        protocol_version: 0,
        timeout,
        session_id,
        passwd,
        read_only,
    };
    let mut out = Vec::new();
    encode_frame(&mut out, |b| {
        response.encode(b);
        if old_client {
            // Pre-3.4 clients do not expect the readOnly flag.
            b.pop();
        }
    });
    out
}
