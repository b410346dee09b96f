//! The core as one member of a replicated ensemble (`sim::ensemble`).
//!
//! A standalone server orders and applies a write in one step ([`Core::commit`]). A member
//! instead hands every write, session creation, session expiry and `sync` to the ensemble as
//! a [`Submission`], and answers it once the quorum has committed it and
//! [`Core::apply_committed`] applies it here. Until then the connection's later requests wait
//! in a per-connection queue, so replies to one session stay in request order; reads with
//! nothing queued ahead of them are answered at once from the local tree.
//!
//! Session ids are drawn per server (server id in the high byte, the incarnation and a
//! counter below); passwords are derived from the ensemble's secret and the id, so any member
//! can validate a session that moves to it. Only the leader expires sessions; the others
//! report which sessions were active ([`Core::take_touched`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::mpsc;
use zkit::proto::{ConnectRequest, ErrorCode, Id, Request, Response, SyncResponse};

use super::core::{connect_frame, reply_frame, Core, Flow};
use super::process::write_answer;
use super::session::{negotiate_timeout, PASSWORD_LEN};
use super::txn::{Txn, TxnHeader};

/// Where a submission came from: the server, its connection and the request's xid there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Origin {
    /// The server the client is connected to.
    pub server: u8,
    /// The connection on that server (0 for the server itself).
    pub conn: u64,
    /// The request's xid (0 for the server itself).
    pub xid: i32,
    /// The session the request belongs to.
    pub session_id: i64,
}

/// What a member asks the leader to order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitKind {
    /// A client's write: its request frame (header and body) and its identities.
    Request {
        /// The frame as received.
        frame: Vec<u8>,
        /// The connection's identities (for ACL checks at the leader).
        auth: Vec<Id>,
    },
    /// A new session (id in the origin) with its negotiated timeout.
    CreateSession {
        /// Negotiated timeout, ms.
        timeout_ms: i32,
    },
    /// The leader expiring the origin's session.
    CloseSession,
    /// The reaper deleting an empty container or expired TTL node.
    DeleteContainer {
        /// The node.
        path: String,
    },
    /// A client's `sync`: answered once everything ordered before it is applied here.
    Sync,
    /// The origin's session reconnects to the origin's server (ZooKeeper's `REVALIDATE`):
    /// the leader says whether it lives, touches it with the new timeout and records the
    /// server as its owner.
    Revalidate {
        /// The negotiated timeout, in milliseconds.
        timeout_ms: i32,
    },
}

/// One submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// Who asked.
    pub origin: Origin,
    /// What.
    pub kind: SubmitKind,
}

/// What a connection waits for, in request order.
#[derive(Debug)]
enum Queued {
    /// The handshake of a new session, until its creation commits.
    Connect {
        session_id: i64,
        timeout: i32,
        old_client: bool,
    },
    /// A write submitted to the leader.
    Write { xid: i32, close: bool },
    /// A sync submitted to the leader.
    Sync { xid: i32, path: String },
    /// The handshake of a resumed session, until the leader has revalidated it.
    Revalidate {
        session_id: i64,
        timeout: i32,
        old_client: bool,
    },
    /// A request received behind one of the above.
    Request { frame: Vec<u8> },
}

/// The ensemble member's part of the core.
#[derive(Debug)]
pub(crate) struct Replica {
    pub(crate) server_id: u8,
    /// This server's boot count (its connection ids are numbered from it).
    incarnation: u32,
    /// Whether clients are served (the member sees a quorum and is synced).
    pub(crate) serving: bool,
    /// Whether this member is the established leader (it alone expires sessions).
    pub(crate) leading: bool,
    pub(super) secret: u64,
    pub(super) next_session: i64,
    submit: mpsc::UnboundedSender<Submission>,
    queues: BTreeMap<u64, VecDeque<Queued>>,
    /// Sessions with activity since the last [`Core::take_touched`].
    pub(crate) touched: BTreeSet<i64>,
    closing: BTreeSet<i64>,
    /// Handshakes refused because the client had seen a zxid this member has not applied.
    pub(crate) refused_behind: u64,
    /// Whether this member runs its read-only server (see [`super::read_only`]).
    pub(crate) read_only: bool,
    /// The local sessions its read-only server opened (they die with it).
    pub(super) local: BTreeSet<i64>,
}

impl Replica {
    /// A member `server_id` in its `incarnation` (boot count), submitting to `submit`.
    pub(crate) fn new(
        server_id: u8,
        incarnation: u32,
        secret: u64,
        submit: mpsc::UnboundedSender<Submission>,
    ) -> Replica {
        let next_session =
            (i64::from(server_id) << 56) | (i64::from(incarnation & 0xff_ffff) << 24) | 1;
        Replica {
            server_id,
            incarnation,
            serving: false,
            leading: false,
            secret,
            next_session,
            submit,
            queues: BTreeMap::new(),
            touched: BTreeSet::new(),
            closing: BTreeSet::new(),
            refused_behind: 0,
            read_only: false,
            local: BTreeSet::new(),
        }
    }
}

impl Replica {
    /// Whether a request of `session_id` that reaches this member is dropped unanswered. The
    /// leader's session tracker refuses to touch a session it is closing
    /// (`SessionTrackerImpl.touchSession`), and `ZooKeeperServer.submitRequestNow` then drops
    /// the request ("Dropping request"), pings included, until the close commits and the
    /// connection goes. A follower touches any global session (`LearnerSessionTracker`) and
    /// forwards the request; the leader then fails a write with SESSIONEXPIRED.
    pub(crate) fn drops_requests_of(&self, session_id: i64) -> bool {
        self.leading && self.closing.contains(&session_id)
    }
}

/// The password of session `id` in an ensemble with `secret`.
pub fn session_password(secret: u64, id: i64) -> [u8; PASSWORD_LEN] {
    let mut rng = ChaCha8Rng::seed_from_u64(secret ^ id as u64);
    let mut pw = [0u8; PASSWORD_LEN];
    rng.fill_bytes(&mut pw);
    pw
}

impl Core {
    /// Makes this core an ensemble member (it serves nobody until told to).
    ///
    /// A committed write is matched to the request waiting for it by its [`Origin`]
    /// (server, connection, xid), and a commit can arrive after the server restarted (the
    /// leader answers what it ordered before): connection ids are therefore numbered from
    /// the incarnation up (`incarnation << 32`), so that no connection of one boot has the
    /// id of one of an earlier boot.
    pub(crate) fn set_replica(&mut self, replica: Replica) {
        self.number_connections_from(u64::from(replica.incarnation) << 32 | 1);
        self.replica = Some(replica);
    }

    fn submit(&mut self, origin: Origin, kind: SubmitKind) {
        if let Some(r) = &self.replica {
            let _ = r.submit.send(Submission { origin, kind });
        }
    }

    fn origin(&self, conn: u64, xid: i32, session_id: i64) -> Origin {
        Origin {
            server: self.replica.as_ref().map_or(0, |r| r.server_id),
            conn,
            xid,
            session_id,
        }
    }

    /// The handshake of a member: refused when not serving or behind the client; a new
    /// session is answered once its creation commits, a resumed one once the leader has
    /// revalidated it (an empty reply means "pending").
    pub(crate) fn replica_connect(
        &mut self,
        conn: u64,
        req: &ConnectRequest,
        old_client: bool,
    ) -> Option<(Vec<u8>, Flow)> {
        let r = self.replica.as_mut()?;
        if !r.serving {
            tracing::debug!(conn, "member refuses session (not serving)");
            return None;
        }
        if req.last_zxid_seen > self.tree.last_zxid() {
            // As ZooKeeper: the client has seen a newer state; it must try another server.
            r.refused_behind += 1;
            tracing::info!(
                conn,
                client_zxid = format_args!("0x{:x}", req.last_zxid_seen),
                our_zxid = format_args!("0x{:x}", self.tree.last_zxid()),
                "member refuses session: client has seen a newer zxid"
            );
            return None;
        }
        let timeout = negotiate_timeout(
            req.timeout,
            self.config.min_session_timeout_ms(),
            self.config.max_session_timeout_ms(),
        );
        if req.session_id == 0 {
            let id = r.next_session;
            r.next_session = r.next_session.wrapping_add(1);
            r.queues
                .entry(conn)
                .or_default()
                .push_back(Queued::Connect {
                    session_id: id,
                    timeout,
                    old_client,
                });
            let origin = self.origin(conn, 0, id);
            self.submit(
                origin,
                SubmitKind::CreateSession {
                    timeout_ms: timeout,
                },
            );
            return Some((Vec::new(), Flow::Continue));
        }
        let id = req.session_id;
        let secret = r.secret;
        let closing = r.closing.contains(&id);
        if let Some(old) = self.session_conn.get(&id).copied() {
            if old != conn {
                self.close_connection(old);
            }
        }
        if closing || session_password(secret, id)[..] != req.passwd[..] {
            return Some((
                connect_frame(0, 0, vec![0; PASSWORD_LEN], old_client),
                Flow::Close,
            ));
        }
        // As ZooKeeper's `Learner.validateSession`: the password is checked here, whether
        // the session lives is the leader's to say (`REVALIDATE`), and the handshake waits
        // for its answer; the leader also makes this member the session's owner.
        if let Some(r) = self.replica.as_mut() {
            r.queues
                .entry(conn)
                .or_default()
                .push_back(Queued::Revalidate {
                    session_id: id,
                    timeout,
                    old_client,
                });
        }
        let origin = self.origin(conn, 0, id);
        self.submit(
            origin,
            SubmitKind::Revalidate {
                timeout_ms: timeout,
            },
        );
        Some((Vec::new(), Flow::Continue))
    }

    /// The leader's answer to the `REVALIDATE` of `(conn, session_id)`: the handshake
    /// completes (the session resumes here) or is refused as expired.
    pub(crate) fn revalidated(&mut self, conn: u64, session_id: i64, valid: bool, now: u64) {
        let head = self
            .replica
            .as_mut()
            .and_then(|r| r.queues.get_mut(&conn))
            .and_then(|q| q.front());
        let (timeout, old_client) = match head {
            Some(&Queued::Revalidate {
                session_id: id,
                timeout,
                old_client,
            }) if id == session_id => (timeout, old_client),
            _ => return,
        };
        self.pop_head(conn);
        if !valid {
            tracing::info!(
                conn,
                session = format_args!("0x{session_id:x}"),
                "the leader says the session is gone: refused as expired"
            );
            self.send(conn, connect_frame(0, 0, vec![0; PASSWORD_LEN], old_client));
            self.close_connection(conn);
            return;
        }
        let Some(r) = self.replica.as_mut() else {
            return;
        };
        r.touched.insert(session_id);
        let pw = session_password(r.secret, session_id).to_vec();
        self.sessions.set_timeout(session_id, timeout, now);
        self.session_conn.insert(session_id, conn);
        if let Some(c) = self.connections.get_mut(&conn) {
            c.session_id = session_id;
        }
        tracing::info!(
            conn,
            session = format_args!("0x{session_id:x}"),
            "session resumed on member"
        );
        self.send(conn, connect_frame(timeout, session_id, pw, old_client));
        self.drain(conn, now);
    }

    /// Routes a request of a member: queued behind pending work, submitted (writes, sync),
    /// or `None` to answer it locally now.
    pub(crate) fn replica_process(
        &mut self,
        conn: u64,
        xid: i32,
        request: &Request,
        frame: &[u8],
    ) -> Option<Flow> {
        let session_id = self.connections.get(&conn).map_or(0, |c| c.session_id);
        let auth = self
            .connections
            .get(&conn)
            .map(|c| c.auth.ids().to_vec())
            .unwrap_or_default();
        let origin = self.origin(conn, xid, session_id);
        let r = self.replica.as_mut()?;
        let queue = r.queues.entry(conn).or_default();
        if !queue.is_empty() {
            queue.push_back(Queued::Request {
                frame: frame.to_vec(),
            });
            return Some(Flow::Continue);
        }
        let kind = match request {
            Request::Sync(s) => {
                queue.push_back(Queued::Sync {
                    xid,
                    path: s.path.clone(),
                });
                SubmitKind::Sync
            }
            r if r.is_write() => {
                queue.push_back(Queued::Write {
                    xid,
                    close: matches!(r, Request::CloseSession),
                });
                SubmitKind::Request {
                    frame: frame.to_vec(),
                    auth,
                }
            }
            _ => return None,
        };
        self.submit(origin, kind);
        Some(Flow::Continue)
    }

    /// Applies a transaction the quorum committed, and answers it if a client of this member
    /// asked for it.
    pub(crate) fn apply_committed(
        &mut self,
        header: &TxnHeader,
        txn: &Txn,
        origin: Option<Origin>,
        now: u64,
    ) {
        let applied = self.apply_txn(header, txn);
        let me = self.replica.as_ref().map_or(0, |r| r.server_id);
        let mine = origin.filter(|o| o.server == me && o.conn != 0);
        match txn {
            Txn::CreateSession {
                session_id,
                timeout_ms,
            } => {
                let secret = self.replica.as_ref().map_or(0, |r| r.secret);
                self.sessions.insert(
                    *session_id,
                    *timeout_ms,
                    session_password(secret, *session_id),
                    now,
                );
            }
            Txn::CloseSession { session_id } => {
                self.sessions.remove(*session_id);
                if let Some(r) = self.replica.as_mut() {
                    r.closing.remove(session_id);
                }
                if let Some(conn) = self.session_conn.get(session_id).copied() {
                    if mine.map(|o| o.conn) != Some(conn) {
                        self.close_connection(conn);
                    }
                }
            }
            _ => {}
        }
        let Some(o) = mine else { return };
        let head = self
            .replica
            .as_mut()
            .and_then(|r| r.queues.get_mut(&o.conn))
            .and_then(|q| q.front());
        match head {
            Some(&Queued::Connect {
                session_id,
                timeout,
                old_client,
            }) if session_id == o.session_id => {
                self.pop_head(o.conn);
                let secret = self.replica.as_ref().map_or(0, |r| r.secret);
                self.session_conn.insert(session_id, o.conn);
                if let Some(c) = self.connections.get_mut(&o.conn) {
                    c.session_id = session_id;
                }
                let pw = session_password(secret, session_id).to_vec();
                self.send(o.conn, connect_frame(timeout, session_id, pw, old_client));
                self.drain(o.conn, now);
            }
            Some(&Queued::Write { xid, close })
                if xid == o.xid
                    && self
                        .connections
                        .get(&o.conn)
                        .is_some_and(|c| c.session_id == o.session_id) =>
            {
                self.pop_head(o.conn);
                if matches!(txn, Txn::Error(ErrorCode::SessionMoved)) {
                    // ZooKeeper answers SESSIONMOVED by closing the connection, not with a
                    // reply (ZOOKEEPER-710): the client reconnects and learns its state anew.
                    self.close_connection(o.conn);
                    return;
                }
                let frame = match write_answer(applied.result) {
                    Ok(body) => reply_frame(xid, header.zxid, ErrorCode::Ok, Some(&body)),
                    Err(code) => reply_frame(xid, header.zxid, code, None),
                };
                if let Some(c) = self.connections.get_mut(&o.conn) {
                    c.last_zxid = header.zxid;
                }
                self.send(o.conn, frame);
                if close {
                    self.close_connection(o.conn);
                } else {
                    self.drain(o.conn, now);
                }
            }
            _ => {}
        }
    }

    /// The leader has ordered everything before the sync `(conn, xid)` and this member has
    /// applied it: answer the sync.
    pub(crate) fn sync_done(&mut self, conn: u64, xid: i32, now: u64) {
        let head = self
            .replica
            .as_mut()
            .and_then(|r| r.queues.get_mut(&conn))
            .and_then(|q| q.front());
        let path = match head {
            Some(Queued::Sync { xid: x, path }) if *x == xid => path.clone(),
            _ => return,
        };
        self.pop_head(conn);
        let zxid = self.tree.last_zxid();
        let body = Response::Sync(SyncResponse { path });
        self.send(conn, reply_frame(xid, zxid, ErrorCode::Ok, Some(&body)));
        self.drain(conn, now);
    }

    fn pop_head(&mut self, conn: u64) {
        if let Some(q) = self.replica.as_mut().and_then(|r| r.queues.get_mut(&conn)) {
            q.pop_front();
        }
    }

    /// Processes the requests queued behind a finished one, in order, until the next one
    /// that must wait.
    fn drain(&mut self, conn: u64, now: u64) {
        let waiting = match self.replica.as_mut().and_then(|r| r.queues.remove(&conn)) {
            Some(q) => q,
            None => return,
        };
        for item in waiting {
            let Queued::Request { frame } = item else {
                continue;
            };
            if !self.connections.contains_key(&conn) {
                return;
            }
            match Request::decode_frame(&frame) {
                Ok((header, request)) => {
                    let session_id = self.connections.get(&conn).map_or(0, |c| c.session_id);
                    if self.process(conn, session_id, header.xid, request, &frame, now)
                        == Flow::Close
                    {
                        return;
                    }
                }
                Err(_) => {
                    self.close_connection(conn);
                    return;
                }
            }
        }
    }

    /// The leader expires sessions by submitting their close; the others do nothing.
    pub(crate) fn replica_expire(&mut self, now: u64) {
        let Some(r) = self.replica.as_ref() else {
            return;
        };
        if !r.leading {
            return;
        }
        for id in self.sessions.expired(now) {
            let fresh = self.replica.as_mut().is_some_and(|r| r.closing.insert(id));
            if fresh {
                tracing::info!(session = format_args!("0x{id:x}"), "leader expires session");
                let origin = self.origin(0, 0, id);
                self.submit(origin, SubmitKind::CloseSession);
            }
        }
    }

    /// The leader reaps containers and TTL nodes through the quorum.
    pub(crate) fn replica_reap(&mut self, wall: i64) {
        if !self.replica.as_ref().is_some_and(|r| r.leading) {
            return;
        }
        for path in self.tree.reap_candidates(wall, 0) {
            let origin = self.origin(0, 0, 0);
            self.submit(origin, SubmitKind::DeleteContainer { path });
        }
    }

    /// Sessions active on this member since the last call (reported to the leader).
    pub(crate) fn take_touched(&mut self) -> Vec<i64> {
        match self.replica.as_mut() {
            Some(r) => std::mem::take(&mut r.touched).into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// The leader pushes back the deadlines of sessions active on another member.
    /// The leader's side of `REVALIDATE`: whether the session lives here (the leader's
    /// tracker); if so it is touched with its new timeout.
    pub(crate) fn revalidate_session(&mut self, id: i64, timeout_ms: i32, now: u64) -> bool {
        self.sessions.set_timeout(id, timeout_ms, now)
    }

    pub(crate) fn touch_sessions(&mut self, ids: &[i64], now: u64) {
        for id in ids {
            self.sessions.touch(*id, now);
        }
    }

    /// Starts or stops serving clients. Stopping closes every connection (their sessions
    /// live on in the ensemble). Becoming the leader restarts every session's clock, as a
    /// new ZooKeeper leader does.
    pub(crate) fn set_role(&mut self, serving: bool, leading: bool, now: u64) {
        let Some(r) = self.replica.as_mut() else {
            return;
        };
        let was_leading = r.leading;
        r.serving = serving;
        r.leading = leading;
        if !serving {
            r.queues.clear();
            let conns: Vec<u64> = self.connections.keys().copied().collect();
            for conn in conns {
                self.close_connection(conn);
            }
        }
        if leading && !was_leading {
            if let Some(r) = self.replica.as_mut() {
                r.closing.clear();
            }
            let secret = self.replica.as_ref().map_or(0, |r| r.secret);
            let live: Vec<(i64, i32)> =
                self.tree.sessions().iter().map(|(a, b)| (*a, *b)).collect();
            let known: Vec<i64> = self.sessions.sessions().keys().copied().collect();
            for id in known {
                if !self.tree.has_session(id) {
                    self.sessions.remove(id);
                }
            }
            for (id, timeout) in live {
                if !self.sessions.set_timeout(id, timeout, now) {
                    self.sessions
                        .insert(id, timeout, session_password(secret, id), now);
                }
            }
        }
    }

    /// Replaces the tree (a member rebuilt from its log or a snapshot): sessions follow it.
    pub(crate) fn reset_tree(&mut self, tree: super::tree::DataTree, now: u64) {
        self.tree = tree;
        let secret = self.replica.as_ref().map_or(0, |r| r.secret);
        let known: Vec<i64> = self.sessions.sessions().keys().copied().collect();
        for id in known {
            self.sessions.remove(id);
        }
        let live: Vec<(i64, i32)> = self.tree.sessions().iter().map(|(a, b)| (*a, *b)).collect();
        for (id, timeout) in live {
            self.sessions
                .insert(id, timeout, session_password(secret, id), now);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::{mpsc, Notify};
    use zkit::proto::{Request, SetDataRequest};

    use super::super::core::{Core, Flow, Outbound};
    use super::{Origin, Replica};
    use crate::server::txn::{Txn, TxnHeader};
    use crate::server::ServerConfig;

    /// A member core in boot `incarnation`, with one connection of session `session` whose
    /// `setData` (xid 1) waits for its commit; the connection's id and its outbound frames.
    fn member_waiting(
        incarnation: u32,
        session: i64,
    ) -> (Core, u64, mpsc::UnboundedReceiver<Outbound>) {
        let (submit, _) = mpsc::unbounded_channel();
        let mut core = Core::new(ServerConfig::default());
        core.set_replica(Replica::new(1, incarnation, 7, submit));
        let (tx, rx) = mpsc::unbounded_channel();
        let peer = "127.0.0.1:1".parse().expect("an address");
        let conn = core.register(peer, tx, Arc::new(Notify::new()));
        if let Some(c) = core.connections.get_mut(&conn) {
            c.session_id = session;
        }
        let request = Request::SetData(SetDataRequest {
            path: "/".into(),
            data: vec![],
            version: -1,
        });
        let mut frame = Vec::new();
        request.encode(1, &mut frame);
        assert_eq!(
            core.replica_process(conn, 1, &request, &frame),
            Some(Flow::Continue)
        );
        (core, conn, rx)
    }

    fn commit(core: &mut Core, zxid: i64, origin: Origin) {
        let header = TxnHeader {
            session_id: origin.session_id,
            cxid: origin.xid,
            zxid,
            time: 0,
        };
        let txn = Txn::Check { path: "/".into() };
        core.apply_committed(&header, &txn, Some(origin), 0);
    }

    /// A write ordered before the server restarted commits after: it must not answer the
    /// request of a new connection that happens to wait for the same xid.
    #[test]
    fn a_commit_for_a_connection_of_an_earlier_boot_answers_nobody() {
        let (_, old_conn, _) = member_waiting(1, 0xa);
        let (mut core, conn, mut rx) = member_waiting(2, 0xb);
        assert_ne!(conn, old_conn, "connection ids do not repeat across boots");
        let old = Origin {
            server: 1,
            conn: old_conn,
            xid: 1,
            session_id: 0xa,
        };
        commit(&mut core, 5, old);
        assert!(
            rx.try_recv().is_err(),
            "the new connection got the old answer"
        );
        // The same connection id and xid from another session answer nobody either.
        commit(&mut core, 6, Origin { conn, ..old });
        assert!(rx.try_recv().is_err(), "another session's commit answered");
        commit(
            &mut core,
            7,
            Origin {
                conn,
                session_id: 0xb,
                ..old
            },
        );
        assert!(
            matches!(rx.try_recv(), Ok(Outbound::Bytes(_))),
            "its own commit answers it"
        );
    }

    /// A request of a session the leader is closing (it expired it, the close has not
    /// committed) is dropped unanswered, pings included, as ZooKeeper's
    /// `ZooKeeperServer.submitRequestNow` drops what `touchSession` refuses; a follower
    /// still answers the same session's ping (its tracker touches any global session).
    #[test]
    fn the_leader_drops_requests_of_a_session_it_is_closing() {
        let session = 0x0100_0000_0000_0001;
        let mut ping = Vec::new();
        Request::Ping.encode(-2, &mut ping);
        for leading in [true, false] {
            let (submit, _) = mpsc::unbounded_channel();
            let mut core = Core::new(ServerConfig::default());
            core.set_replica(Replica::new(1, 1, 7, submit));
            let (tx, mut rx) = mpsc::unbounded_channel();
            let peer = "127.0.0.1:1".parse().expect("an address");
            let conn = core.register(peer, tx, Arc::new(Notify::new()));
            if let Some(c) = core.connections.get_mut(&conn) {
                c.session_id = session;
            }
            core.sessions.insert(session, 4000, [0; 16], 0);
            if let Some(r) = core.replica.as_mut() {
                r.leading = leading;
            }
            core.expire(60_000);
            assert_eq!(
                core.replica
                    .as_ref()
                    .is_some_and(|r| r.drops_requests_of(session)),
                leading
            );
            assert_eq!(
                core.handle_frame(conn, &ping, 60_000)
                    .expect("a valid frame"),
                Flow::Continue
            );
            assert_eq!(
                rx.try_recv().is_ok(),
                !leading,
                "leading: {leading}: a ping of a closing session is dropped by the leader only"
            );
        }
    }
}
