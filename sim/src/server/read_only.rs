//! A member without quorum serving read-only clients: ZooKeeper 3.8's
//! `ReadOnlyZooKeeperServer` with `localSessionsEnabled=true`, as the ensemble turns it on
//! and off ([`Core::set_read_only`]).
//!
//! - the handshake (`processConnectRequest`, `ReadOnlyZooKeeperServer.validateSession`): a
//!   client that did not ask for read-only (`readOnly = false`, or a pre-3.4 client) is
//!   refused by closing the connection, as is one that has seen a newer zxid and one
//!   reconnecting a global session (one the tree knows: "Refusing global session
//!   reconnection in RO mode"); a new session is a *local* session of this member, answered
//!   at once with `readOnly = true`; a local session of this member resumes; any other
//!   session is answered as expired;
//! - requests (`ReadOnlyRequestProcessor`): `sync` and every write (create, delete, setData,
//!   setACL, check, multi, reconfig) get NOTREADONLY with the last applied zxid; closeSession
//!   of a local session closes it; everything else is answered from the local tree;
//! - local sessions expire here, in the tracker's tick buckets (`LocalSessionTracker`); they
//!   never reach the leader and die with the read-only server, which closes every connection
//!   when it stops.

use zkit::proto::{ConnectRequest, ErrorCode, Request};

use super::core::{connect_frame_from, reply_frame, Core, Flow};
use super::replica::session_password;
use super::session::{negotiate_timeout, PASSWORD_LEN};

impl Core {
    /// Whether this core is a member serving read-only.
    pub(crate) fn is_read_only(&self) -> bool {
        self.replica.as_ref().is_some_and(|r| r.read_only)
    }

    /// Starts (`on`) or stops the read-only server. Stopping closes every connection and
    /// forgets the local sessions.
    pub(crate) fn set_read_only(&mut self, on: bool) {
        let Some(r) = self.replica.as_mut() else {
            return;
        };
        if r.read_only == on {
            return;
        }
        r.read_only = on;
        if on {
            return;
        }
        let local = std::mem::take(&mut r.local);
        for id in &local {
            r.touched.remove(id);
        }
        let conns: Vec<u64> = self.connections.keys().copied().collect();
        for conn in conns {
            self.close_connection(conn);
        }
        for id in local {
            self.sessions.remove(id);
        }
    }

    /// The handshake of a read-only member: the ConnectResponse and whether to close after
    /// it, or `None` to close the connection without an answer.
    pub(crate) fn read_only_connect(
        &mut self,
        conn: u64,
        req: &ConnectRequest,
        now: u64,
    ) -> Option<(Vec<u8>, Flow)> {
        if !req.read_only {
            tracing::info!(conn, "refusing session request for not-read-only client");
            return None;
        }
        let ours = self.tree.last_zxid();
        let r = self.replica.as_mut()?;
        if req.last_zxid_seen > ours {
            r.refused_behind += 1;
            tracing::info!(
                conn,
                client_zxid = format_args!("0x{:x}", req.last_zxid_seen),
                "read-only member refuses session: client has seen a newer zxid"
            );
            return None;
        }
        let timeout = negotiate_timeout(
            req.timeout,
            self.config.min_session_timeout_ms(),
            self.config.max_session_timeout_ms(),
        );
        let secret = r.secret;
        let id = if req.session_id == 0 {
            let id = r.next_session;
            r.next_session = r.next_session.wrapping_add(1);
            r.local.insert(id);
            self.sessions
                .insert(id, timeout, session_password(secret, id), now);
            tracing::info!(
                conn,
                session = format_args!("0x{id:x}"),
                "local session created"
            );
            id
        } else {
            let id = req.session_id;
            let local = r.local.contains(&id);
            if self.tree.has_session(id) {
                tracing::info!(
                    conn,
                    session = format_args!("0x{id:x}"),
                    "refusing global session reconnection in RO mode"
                );
                return None;
            }
            if let Some(old) = self.session_conn.get(&id).copied() {
                if old != conn {
                    self.close_connection(old);
                }
            }
            let valid = session_password(secret, id)[..] == req.passwd[..]
                && local
                && self.sessions.set_timeout(id, timeout, now);
            if !valid {
                let refused = connect_frame_from(0, 0, vec![0; PASSWORD_LEN], false, true);
                return Some((refused, Flow::Close));
            }
            tracing::info!(
                conn,
                session = format_args!("0x{id:x}"),
                "local session resumed"
            );
            id
        };
        self.session_conn.insert(id, conn);
        if let Some(c) = self.connections.get_mut(&conn) {
            c.session_id = id;
        }
        let pw = session_password(secret, id).to_vec();
        Some((
            connect_frame_from(timeout, id, pw, false, true),
            Flow::Continue,
        ))
    }

    /// Filters a request of a read-only member (`ReadOnlyRequestProcessor`): answers it
    /// here (NOTREADONLY, or a local closeSession), or `None` to answer it from the tree.
    pub(crate) fn read_only_process(
        &mut self,
        conn: u64,
        session_id: i64,
        xid: i32,
        request: &Request,
    ) -> Option<Flow> {
        let zxid = self.tree.last_zxid();
        match request {
            Request::CloseSession => {
                self.close_local(session_id);
                self.send(conn, reply_frame(xid, zxid, ErrorCode::Ok, None));
                self.close_connection(conn);
                Some(Flow::Close)
            }
            Request::Sync(_) => {
                self.send(conn, reply_frame(xid, zxid, ErrorCode::NotReadOnly, None));
                Some(Flow::Continue)
            }
            r if r.is_write() => {
                self.send(conn, reply_frame(xid, zxid, ErrorCode::NotReadOnly, None));
                Some(Flow::Continue)
            }
            _ => None,
        }
    }

    /// Expires the local sessions whose deadline passed, closing their connections.
    pub(crate) fn read_only_expire(&mut self, now: u64) {
        let Some(r) = self.replica.as_ref() else {
            return;
        };
        if !r.read_only {
            return;
        }
        let expired: Vec<i64> = self
            .sessions
            .expired(now)
            .into_iter()
            .filter(|id| r.local.contains(id))
            .collect();
        for id in expired {
            tracing::info!(session = format_args!("0x{id:x}"), "local session expired");
            self.close_local(id);
            if let Some(conn) = self.session_conn.get(&id).copied() {
                self.close_connection(conn);
            }
        }
    }

    fn close_local(&mut self, id: i64) {
        if let Some(r) = self.replica.as_mut() {
            if r.local.remove(&id) {
                r.touched.remove(&id);
                self.sessions.remove(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::{mpsc, Notify};
    use zkit::proto::{
        ConnectRequest, ConnectResponse, CreateMode, CreateRequest, ErrorCode, PathRequest, Reader,
        Record, ReplyHeader, Request,
    };

    use super::super::core::{Core, Flow, Outbound};
    use super::super::replica::{session_password, Replica};
    use crate::server::ServerConfig;

    /// A member core serving read-only.
    fn read_only_core() -> Core {
        let (submit, _) = mpsc::unbounded_channel();
        let mut core = Core::new(ServerConfig::default());
        core.set_replica(Replica::new(1, 1, 7, submit));
        core.set_read_only(true);
        core
    }

    fn open(core: &mut Core) -> (u64, mpsc::UnboundedReceiver<Outbound>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let peer = "127.0.0.1:1".parse().expect("an address");
        (core.register(peer, tx, Arc::new(Notify::new())), rx)
    }

    fn request(session_id: i64, read_only: bool) -> ConnectRequest {
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: 4000,
            session_id,
            passwd: session_password(7, session_id).to_vec(),
            read_only,
        }
    }

    /// The error code of the next reply queued on `rx`.
    fn next_err(rx: &mut mpsc::UnboundedReceiver<Outbound>) -> i32 {
        match rx.try_recv() {
            Ok(Outbound::Bytes(b)) => {
                ReplyHeader::decode(&mut Reader::new(&b[4..]))
                    .expect("a reply header")
                    .err
            }
            other => panic!("no reply: {other:?}"),
        }
    }

    #[test]
    fn local_sessions_reads_only_and_global_sessions_refused() {
        let mut core = read_only_core();
        assert_eq!(core.four_letter("isro"), "ro");
        let (conn, _) = open(&mut core);
        assert!(
            core.connect(conn, &request(0, false), false, 0).is_none(),
            "a client that did not ask for read-only is dropped"
        );
        let (conn, mut rx) = open(&mut core);
        let (frame, flow) = core
            .connect(conn, &request(0, true), false, 0)
            .expect("an answer");
        assert_eq!(flow, Flow::Continue);
        let resp = ConnectResponse::from_frame(&frame[4..]).expect("a ConnectResponse");
        assert!(resp.read_only);
        assert_eq!(resp.session_id >> 56, 1, "a session of this member");
        let local = resp.session_id;

        let create = Request::Create(CreateRequest {
            path: "/a".into(),
            data: vec![],
            acl: zkit::proto::Acl::open_unsafe(),
            flags: CreateMode::Persistent,
        });
        let sync = Request::Sync(PathRequest { path: "/".into() });
        let exists = Request::Exists(zkit::proto::WatchedRequest {
            path: "/".into(),
            watch: false,
        });
        for (xid, r, err) in [
            (1, create, ErrorCode::NotReadOnly),
            (2, sync, ErrorCode::NotReadOnly),
            (3, exists, ErrorCode::Ok),
        ] {
            let mut frame = Vec::new();
            r.encode(xid, &mut frame);
            assert_eq!(core.process(conn, local, xid, r, &frame, 0), Flow::Continue);
            assert_eq!(next_err(&mut rx), err.code(), "{xid}");
        }

        // A global session (one the tree knows) is refused; an unknown one is expired.
        core.tree.apply(
            &crate::server::txn::TxnHeader {
                session_id: 0x0200_0000_0000_0001,
                cxid: 0,
                zxid: 1,
                time: 0,
            },
            &crate::server::txn::Txn::CreateSession {
                session_id: 0x0200_0000_0000_0001,
                timeout_ms: 4000,
            },
        );
        let (other, _) = open(&mut core);
        let global = request(0x0200_0000_0000_0001, true);
        assert!(core.connect(other, &global, false, 0).is_none());
        let (frame, flow) = core
            .connect(other, &request(0x0200_0000_0000_0002, true), false, 0)
            .expect("an answer");
        assert_eq!(flow, Flow::Close);
        let resp = ConnectResponse::from_frame(&frame[4..]).expect("a ConnectResponse");
        assert_eq!((resp.timeout, resp.session_id), (0, 0));

        // The local session resumes on another connection of the same member...
        let (again, _) = open(&mut core);
        let (frame, _) = core
            .connect(again, &request(local, true), false, 0)
            .expect("an answer");
        let resp = ConnectResponse::from_frame(&frame[4..]).expect("a ConnectResponse");
        assert_eq!(resp.session_id, local);
        // ...and expires here when nothing touches it.
        core.expire(60_000);
        assert!(core.sessions.get(local).is_none());
        assert!(!core.connections.contains_key(&again));

        // Leaving read-only mode drops every client and every local session.
        let (conn, _) = open(&mut core);
        let (frame, _) = core
            .connect(conn, &request(0, true), false, 60_000)
            .expect("an answer");
        let id = ConnectResponse::from_frame(&frame[4..])
            .expect("a ConnectResponse")
            .session_id;
        core.set_read_only(false);
        assert!(core.connections.is_empty());
        assert!(core.sessions.get(id).is_none());
        assert_eq!(core.four_letter("isro"), "rw");
    }
}
