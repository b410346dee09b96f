//! The session task: one per client, it owns the connection and never runs user code.
//!
//! It finds a server (shuffled hosts, backoff with jitter between passes), handshakes with the
//! session's id, password and last zxid seen, authenticates with SASL if configured (on every
//! connection: a resumed session authenticates again), replays credentials, restores watches, then
//! pipelines requests and matches replies in order ([`connection`]). When the connection
//! drops it fails what was in flight with `ConnectionLoss`, publishes `Suspended`, and starts
//! again, until the server says the session expired, the client's own timer passes the
//! negotiated timeout, or the client is closed.
//!
//! The client's timer runs from the send time of the newest request or ping a server answered
//! (the server heard from the session then or later), so it runs out no later than the
//! server's. A renewing client whose timer ran out closes the old session through the first
//! server it reaches before opening the new one ([`handshake::close_session`]).

mod connection;
mod handshake;

use std::time::Duration;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::config::Config;
use crate::error::Error;
use crate::planted::PlantedBug;
use crate::proto::{
    AddWatchMode, AuthPacket, ConnectRequest, ErrorCode, FrameDecoder, KeeperState, OpCode,
    Response,
};
use crate::sasl::{self, DigestMd5};
use crate::state::State;
use crate::watch::{WatchRegistry, WatchedEvent};

/// A request on its way to the session task.
pub(crate) struct Submit {
    /// The request's opcode.
    pub(crate) op: OpCode,
    /// The request body, encoded by the caller (paths already carrying the chroot); the
    /// session task frames it behind a header with the xid it assigns.
    pub(crate) body: Vec<u8>,
    /// Where the outcome goes.
    pub(crate) reply: oneshot::Sender<Result<Reply, Failure>>,
    /// A watch to register if the reply allows it, and the server path it is on.
    pub(crate) watch: Option<(WatchSlot, String)>,
}

/// A watch attached to a request.
pub(crate) enum WatchSlot {
    /// getData, exists, getChildren: a one-shot watch.
    OneShot(oneshot::Sender<WatchedEvent>),
    /// addWatch: a persistent watcher.
    Persistent {
        mode: AddWatchMode,
        id: u64,
        tx: mpsc::UnboundedSender<WatchedEvent>,
    },
}

/// A successful reply.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The server's zxid when it answered.
    #[allow(dead_code)]
    pub(crate) zxid: i64,
    /// The body.
    pub(crate) response: Response,
}

/// Why a request failed: a ZooKeeper code (mapped to an [`Error`] with the client's path by
/// the caller) or a client-side error.
#[derive(Debug)]
pub(crate) enum Failure {
    Code(ErrorCode),
    Client(Error),
}

/// Messages that are handled whether or not a server is connected.
#[derive(Debug)]
pub(crate) enum Control {
    /// Close the session (send closeSession if connected); `done` hears when it is over.
    Close { done: Option<oneshot::Sender<()>> },
    /// Add credentials (kept and replayed after every reconnect).
    AddAuth {
        packet: AuthPacket,
        reply: oneshot::Sender<Result<(), Failure>>,
    },
    /// A persistent watcher was dropped.
    RemovePersistent { id: u64, mode: AddWatchMode },
}

/// What the client can read about its session at any time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The connection state.
    pub state: State,
    /// The session id (0 before the first connect).
    pub session_id: i64,
    /// The session password.
    pub password: Vec<u8>,
    /// The negotiated session timeout.
    pub timeout: Duration,
    /// The server currently connected to, if any.
    pub server: Option<String>,
}

/// How the session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Closed,
    Expired,
    AuthFailed,
}

impl End {
    fn state(self) -> State {
        match self {
            End::Closed => State::Closed,
            End::Expired => State::Lost,
            End::AuthFailed => State::AuthFailed,
        }
    }

    pub(crate) fn error(self) -> Error {
        match self {
            End::Closed => Error::Closed,
            End::Expired => Error::SessionExpired,
            End::AuthFailed => Error::AuthFailed,
        }
    }
}

/// The channels a client keeps to talk to its session task.
pub(crate) struct Handles {
    pub(crate) requests: mpsc::Sender<Submit>,
    pub(crate) control: mpsc::UnboundedSender<Control>,
    pub(crate) info: watch::Receiver<SessionInfo>,
    pub(crate) transitions: broadcast::Sender<State>,
}

/// Starts the session task for `config`.
pub(crate) fn spawn(config: Config) -> Handles {
    let (session, handles) = Session::new(config);
    tokio::spawn(session.run());
    handles
}

impl Session {
    /// A session task for `config` that has not started, and the client's ends of its
    /// channels.
    fn new(config: Config) -> (Session, Handles) {
        let (req_tx, req_rx) = mpsc::channel(config.request_queue);
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let (session_id, password) = config.resume.clone().unwrap_or((0, vec![0; 16]));
        let (info_tx, info_rx) = watch::channel(SessionInfo {
            state: State::Connecting,
            session_id,
            password: password.clone(),
            timeout: config.session_timeout,
            server: None,
        });
        let (trans_tx, _) = broadcast::channel(64);
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut hosts = config.connect.hosts.clone();
        hosts.shuffle(&mut rng);
        let auth = config
            .auth
            .iter()
            .map(|(scheme, auth)| AuthPacket {
                auth_type: 0,
                scheme: scheme.clone(),
                auth: auth.clone(),
            })
            .collect();
        let session = Session {
            watches: WatchRegistry::new(&config.connect.chroot),
            decoder: FrameDecoder::new(config.max_frame),
            config,
            rng,
            hosts,
            next_host: 0,
            requests: req_rx,
            control: ctl_rx,
            info: info_tx,
            transitions: trans_tx.clone(),
            session_id,
            password,
            negotiated: Duration::ZERO,
            last_zxid: 0,
            acked: Instant::now(),
            auth,
            new_auth: Vec::new(),
            xid: 0,
            closing: Vec::new(),
            timer_expired: false,
            stale: None,
        };
        let handles = Handles {
            requests: req_tx,
            control: ctl_tx,
            info: info_rx,
            transitions: trans_tx,
        };
        (session, handles)
    }
}

/// The session task's state.
struct Session {
    config: Config,
    decoder: FrameDecoder,
    rng: ChaCha8Rng,
    hosts: Vec<String>,
    next_host: usize,
    requests: mpsc::Receiver<Submit>,
    control: mpsc::UnboundedReceiver<Control>,
    info: watch::Sender<SessionInfo>,
    transitions: broadcast::Sender<State>,
    watches: WatchRegistry,
    session_id: i64,
    password: Vec<u8>,
    negotiated: Duration,
    last_zxid: i64,
    /// When the newest request or ping that a server answered was sent (or the handshake
    /// that opened the connection): the server heard from the session no earlier, so its
    /// expiry timer runs at least from here. Notifications, and replies to older requests,
    /// prove nothing newer. The client's read timeout and its expiry timer start here.
    acked: Instant,
    /// Credentials replayed on every connect.
    auth: Vec<AuthPacket>,
    /// Credentials added while disconnected: their callers wait for the next connect.
    new_auth: Vec<oneshot::Sender<Result<(), Failure>>>,
    xid: i32,
    /// Callers of `close()` waiting for the end.
    closing: Vec<oneshot::Sender<()>>,
    /// The client's own timer (not a server) declared the session expired.
    timer_expired: bool,
    /// A session the client's timer gave up while a server may still keep it (its id and
    /// password): a renewing client closes it once it reaches a server, before it opens the
    /// new one, so that its ephemeral nodes go at once rather than when the servers expire it.
    stale: Option<(i64, Vec<u8>)>,
}

/// What ended a connection.
enum Outcome {
    Disconnected,
    End(End),
}

impl Session {
    async fn run(mut self) {
        let end = loop {
            let outcome = match self.connect().await {
                Ok(conn) => self.serve(conn).await,
                Err(end) => Outcome::End(end),
            };
            match outcome {
                Outcome::Disconnected if self.config.planted(PlantedBug::SuspendedNotPublished) => {
                }
                Outcome::Disconnected => self.publish(State::Suspended, None),
                Outcome::End(End::Expired) if self.config.renew_session => self.renew(),
                Outcome::End(end) => break end,
            }
        };
        self.finish(end).await;
    }

    /// The session expired and the client renews it: everything of the old session ends as
    /// in [`Session::finish`], then the next connect starts a new session.
    fn renew(&mut self) {
        if std::mem::take(&mut self.timer_expired) {
            // The servers may still keep it: close it once one is reached.
            self.stale = Some((self.session_id, self.password.clone()));
        }
        self.publish(State::Lost, None);
        self.watches.end_session(KeeperState::Expired);
        while let Ok(submit) = self.requests.try_recv() {
            let _ = submit
                .reply
                .send(Err(Failure::Client(Error::SessionExpired)));
        }
        tracing::info!(
            old = format_args!("{:#x}", self.session_id),
            "starting a new session"
        );
        self.session_id = 0;
        self.password = vec![0; 16];
        self.negotiated = Duration::ZERO;
    }

    fn publish(&mut self, state: State, server: Option<String>) {
        let changed = self.info.borrow().state != state;
        self.info.send_modify(|info| {
            info.state = state;
            info.session_id = self.session_id;
            info.password.clone_from(&self.password);
            info.timeout = self.negotiated;
            info.server = server;
        });
        if changed {
            tracing::info!(session = format_args!("{:#x}", self.session_id), %state, "session state");
            let _ = self.transitions.send(state);
        }
    }

    fn next_xid(&mut self) -> i32 {
        self.xid = if self.xid >= i32::MAX - 1 {
            1
        } else {
            self.xid + 1
        };
        self.xid
    }

    /// When the client's own timer declares a suspended session lost.
    fn expiry_deadline(&self) -> Option<Instant> {
        let timeout = if self.config.planted(PlantedBug::LateExpiryTimer) {
            self.negotiated * 3
        } else {
            self.negotiated
        };
        (self.session_id != 0 && !self.negotiated.is_zero()).then(|| self.acked + timeout)
    }

    /// Handles a control message while no server is connected; `Some` ends the session.
    fn control_offline(&mut self, msg: Control) -> Option<End> {
        match msg {
            Control::Close { done } => {
                self.closing.extend(done);
                Some(End::Closed)
            }
            Control::AddAuth { packet, reply } => {
                self.auth.push(packet);
                self.new_auth.push(reply);
                None
            }
            Control::RemovePersistent { id, mode } => {
                self.watches.remove_persistent(mode, id);
                None
            }
        }
    }

    /// Finds a server and handshakes, until one answers or the session ends.
    async fn connect(&mut self) -> Result<handshake::Handshaken, End> {
        let per_host = self.config.connect_timeout.unwrap_or_else(|| {
            let base = if self.negotiated.is_zero() {
                self.config.session_timeout
            } else {
                self.negotiated
            };
            (base / self.hosts.len().max(1) as u32).max(Duration::from_millis(100))
        });
        let connector = self.config.connector.clone();
        loop {
            let host = self.hosts[self.next_host].clone();
            self.next_host = (self.next_host + 1) % self.hosts.len();
            // Until the old session is closed (or known gone), no new one is opened.
            if self.close_stale(&*connector, &host, per_host).await? {
                let request = ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: if self.config.planted(PlantedBug::NoLastZxidSeen) {
                        0
                    } else {
                        self.last_zxid
                    },
                    timeout: i32::try_from(self.config.session_timeout.as_millis())
                        .unwrap_or(i32::MAX),
                    session_id: self.session_id,
                    passwd: self.password.clone(),
                    read_only: self.config.read_only,
                };
                let attempt = tokio::time::timeout(
                    per_host,
                    handshake::handshake(&*connector, &host, &request, self.decoder),
                );
                match self.offline(attempt).await? {
                    Ok(Ok(hs)) => {
                        let resp = &hs.response;
                        if resp.timeout <= 0
                            || (self.session_id != 0 && resp.session_id != self.session_id)
                        {
                            tracing::warn!(host, "server says the session expired");
                            return Err(End::Expired);
                        }
                        self.session_id = resp.session_id;
                        self.password.clone_from(&resp.passwd);
                        self.negotiated = Duration::from_millis(resp.timeout as u64);
                        self.acked = hs.sent;
                        tracing::debug!(host, timeout = resp.timeout, "handshake done");
                        let mut hs = hs;
                        if self.authenticate(&mut hs, &host, per_host).await? {
                            return Ok(hs);
                        }
                    }
                    Ok(Err(e)) => tracing::debug!(host, error = %e, "connection attempt failed"),
                    Err(_) => tracing::debug!(host, "connection attempt timed out"),
                }
            }
            if self.next_host == 0 {
                // A full pass failed: back off before the next one.
                let max = self.config.backoff_max.as_millis().max(1) as u64;
                let pause = Duration::from_millis(self.rng.random_range(0..=max));
                self.offline(tokio::time::sleep(pause)).await?;
            }
        }
    }

    /// Runs the SASL exchange on a connection just handshaken, if the client has SASL
    /// credentials: true once authenticated (or without credentials), false if the connection
    /// failed on the way (try another); the session ends with [`End::AuthFailed`] if the
    /// server refused the credentials or the exchange cannot succeed.
    async fn authenticate(
        &mut self,
        hs: &mut handshake::Handshaken,
        host: &str,
        wait: Duration,
    ) -> Result<bool, End> {
        let Some(credentials) = self.config.sasl.clone() else {
            return Ok(true);
        };
        // The client nonce comes from the session's seeded generator: a seeded run replays.
        let cnonce = format!(
            "{:016x}{:016x}",
            self.rng.random::<u64>(),
            self.rng.random::<u64>()
        );
        let mut mech = DigestMd5::new(&credentials, sasl::PROTOCOL, sasl::SERVER_NAME, cnonce);
        let mut xid = self.xid;
        let decoder = self.decoder;
        let attempt = tokio::time::timeout(wait, handshake::sasl(hs, decoder, &mut mech, &mut xid));
        let outcome = self.offline(attempt).await;
        self.xid = xid;
        match outcome? {
            Ok(Ok(())) => {
                tracing::debug!(host, user = %credentials.user, "SASL DIGEST-MD5 authenticated");
                Ok(true)
            }
            Ok(Err(handshake::SaslFailure::Refused(why))) => {
                tracing::warn!(host, user = %credentials.user, %why, "SASL authentication failed");
                Err(End::AuthFailed)
            }
            Ok(Err(handshake::SaslFailure::Connection(e))) => {
                tracing::debug!(host, error = %e, "connection failed during SASL");
                Ok(false)
            }
            Err(_) => {
                tracing::debug!(host, "SASL exchange timed out");
                Ok(false)
            }
        }
    }

    /// Closes the session the client's own timer gave up ([`Session::stale`]), if any,
    /// through `host`. True once there is none left to close: the server answered (it had
    /// expired the session, or closed it now); false if `host` could not be reached.
    async fn close_stale(
        &mut self,
        connector: &dyn crate::connector::Connector,
        host: &str,
        wait: Duration,
    ) -> Result<bool, End> {
        let Some((id, passwd)) = self.stale.clone() else {
            return Ok(true);
        };
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            timeout: i32::try_from(self.config.session_timeout.as_millis()).unwrap_or(i32::MAX),
            session_id: id,
            passwd,
            read_only: self.config.read_only,
        };
        let attempt = handshake::close_session(connector, host, &request, self.decoder, wait);
        match self.offline(attempt).await? {
            Ok(outcome) => {
                tracing::info!(
                    old = format_args!("{id:#x}"),
                    ?outcome,
                    "closed the session the client's timer gave up"
                );
                self.stale = None;
                Ok(true)
            }
            Err(e) => {
                tracing::debug!(host, error = %e, "could not reach a server to close the old session");
                Ok(false)
            }
        }
    }

    /// Runs `work` while no server is connected, handling control messages meanwhile;
    /// fails if the session ends first (closed, or the client's expiry timer ran out).
    async fn offline<F: std::future::Future>(&mut self, work: F) -> Result<F::Output, End> {
        tokio::pin!(work);
        loop {
            let expiry = self.expiry_deadline();
            // A handshake that completed wins over the expiry timer: the server's word that
            // the session lives beats the client's estimate that it may not.
            tokio::select! {
                biased;
                msg = self.control.recv() => match msg {
                    Some(msg) => if let Some(end) = self.control_offline(msg) { return Err(end) },
                    None => return Err(End::Closed),
                },
                out = &mut work => return Ok(out),
                _ = sleep_until_opt(expiry) => {
                    tracing::warn!("session timeout passed while disconnected");
                    self.timer_expired = true;
                    return Err(End::Expired);
                }
            }
        }
    }

    /// Ends the session: every waiter hears the outcome, every watch a session event.
    async fn finish(mut self, end: End) {
        self.publish(end.state(), None);
        let keeper = match end {
            End::Closed => KeeperState::Closed,
            End::Expired => KeeperState::Expired,
            End::AuthFailed => KeeperState::AuthFailed,
        };
        self.watches.end_session(keeper);
        for waiter in self.new_auth.drain(..) {
            let _ = waiter.send(Err(Failure::Client(end.error())));
        }
        self.requests.close();
        while let Ok(submit) = self.requests.try_recv() {
            let _ = submit.reply.send(Err(Failure::Client(end.error())));
        }
        self.control.close();
        while let Ok(msg) = self.control.try_recv() {
            match msg {
                Control::Close { done } => self.closing.extend(done),
                Control::AddAuth { reply, .. } => {
                    let _ = reply.send(Err(Failure::Client(end.error())));
                }
                Control::RemovePersistent { .. } => {}
            }
        }
        for done in self.closing.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Sleeps until `deadline`, or forever if there is none.
async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted DIGEST-MD5 server for the SASL tests: each connection is a duplex pipe
    /// whose server end a task plays ZooKeeper on (handshake, SASL, then `exists` answered
    /// with NONODE). It records every client nonce, and the opcodes of the requests that
    /// followed the SASL exchange.
    mod sasl_server {
        use std::sync::{Arc, Mutex};

        use bytes::BytesMut;
        use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

        use crate::connector::{BoxStream, ConnectFuture, Connector};
        use crate::proto::{
            encode_frame, ConnectRequest, ConnectResponse, ErrorCode, FrameDecoder, OpCode, Reader,
            Record, ReplyHeader, RequestHeader, SaslToken,
        };
        use crate::sasl;

        /// What the server saw.
        #[derive(Default, Debug)]
        pub(super) struct Seen {
            pub(super) cnonces: Vec<String>,
            /// Opcodes in arrival order, per connection.
            pub(super) ops: Vec<Vec<i32>>,
        }

        pub(super) struct Script {
            pub(super) password: &'static str,
            pub(super) seen: Arc<Mutex<Seen>>,
        }

        impl Connector for Script {
            fn connect<'a>(&'a self, _addr: &'a str) -> ConnectFuture<'a> {
                let (client, server) = tokio::io::duplex(64 * 1024);
                tokio::spawn(serve(server, self.password, self.seen.clone()));
                Box::pin(async move { Ok(Box::new(client) as BoxStream) })
            }
        }

        async fn frame(io: &mut DuplexStream, buf: &mut BytesMut) -> Option<BytesMut> {
            let decoder = FrameDecoder::default();
            loop {
                if let Some(f) = decoder.decode(buf).ok()? {
                    return Some(f);
                }
                if io.read_buf(buf).await.ok()? == 0 {
                    return None;
                }
            }
        }

        async fn reply(io: &mut DuplexStream, xid: i32, err: i32, token: Option<&[u8]>) {
            let mut out = Vec::new();
            encode_frame(&mut out, |o| {
                ReplyHeader { xid, zxid: 1, err }.encode(o);
                if let Some(t) = token {
                    SaslToken { token: t.to_vec() }.encode(o);
                }
            });
            let _ = io.write_all(&out).await;
        }

        async fn serve(mut io: DuplexStream, password: &str, seen: Arc<Mutex<Seen>>) {
            let mut buf = BytesMut::new();
            let Some(f) = frame(&mut io, &mut buf).await else {
                return;
            };
            let request = ConnectRequest::from_frame(&f).expect("connect request");
            let mut out = Vec::new();
            let response = ConnectResponse {
                protocol_version: 0,
                timeout: 4000,
                session_id: if request.session_id == 0 {
                    0x5a51
                } else {
                    request.session_id
                },
                passwd: vec![7; 16],
                read_only: false,
            };
            encode_frame(&mut out, |o| response.encode(o));
            let _ = io.write_all(&out).await;
            let index = {
                let mut s = seen.lock().unwrap();
                s.ops.push(Vec::new());
                s.ops.len() - 1
            };
            let nonce = "srv-nonce";
            let mut expected = None;
            while let Some(f) = frame(&mut io, &mut buf).await {
                let mut r = Reader::new(&f);
                let header = RequestHeader::decode(&mut r).expect("request header");
                seen.lock().unwrap().ops[index].push(header.op);
                if header.op == OpCode::Sasl.code() {
                    let token = SaslToken::decode(&mut r).expect("sasl token").token;
                    if token.is_empty() {
                        let challenge = format!(
                            "realm=\"{}\",nonce=\"{nonce}\",qop=\"auth\",charset=utf-8,algorithm=md5-sess",
                            sasl::SERVER_NAME
                        );
                        reply(&mut io, header.xid, 0, Some(challenge.as_bytes())).await;
                        continue;
                    }
                    let fields = sasl::parse_directives(&token).expect("digest-response");
                    let get = |k| sasl::find(&fields, k).expect(k).to_owned();
                    let cnonce = get("cnonce");
                    seen.lock().unwrap().cnonces.push(cnonce.clone());
                    let (response, rspauth) = sasl::digests(
                        &get("username"),
                        &get("realm"),
                        password,
                        nonce,
                        &cnonce,
                        &get("nc"),
                        &get("digest-uri"),
                    );
                    assert_eq!(get("digest-uri"), "zookeeper/zk-sasl-md5");
                    if get("response") == response {
                        expected = Some(());
                        let token = format!("rspauth={rspauth}");
                        reply(&mut io, header.xid, 0, Some(token.as_bytes())).await;
                    } else {
                        let code = ErrorCode::AuthFailed.code();
                        reply(&mut io, header.xid, code, None).await;
                        return;
                    }
                } else {
                    assert!(expected.is_some(), "request before SASL completed");
                    reply(&mut io, header.xid, ErrorCode::NoNode.code(), None).await;
                }
            }
        }
    }

    fn sasl_client(
        seed: u64,
        password: &'static str,
    ) -> (
        crate::Client,
        std::sync::Arc<std::sync::Mutex<sasl_server::Seen>>,
    ) {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(sasl_server::Seen::default()));
        let client = crate::Client::builder("zk:2181")
            .seed(seed)
            .session_timeout(Duration::from_secs(4))
            .sasl_digest("alice", "secret")
            .connector(sasl_server::Script {
                password,
                seen: seen.clone(),
            })
            .build()
            .expect("client");
        (client, seen)
    }

    /// The exchange comes first on every connection; the client nonce is drawn from the
    /// seeded generator, so a seed replays it and another seed does not.
    #[tokio::test]
    async fn sasl_runs_first_and_its_nonce_follows_the_seed() {
        let mut nonces = Vec::new();
        for seed in [5, 5, 6] {
            let (client, seen) = sasl_client(seed, "secret");
            assert_eq!(client.exists("/x").await, Ok(None));
            client.close().await;
            let seen = seen.lock().unwrap();
            let sasl = OpCode::Sasl.code();
            assert_eq!(
                seen.ops[0][..3],
                [sasl, sasl, OpCode::Exists.code()],
                "{seen:?}"
            );
            assert_eq!(seen.cnonces.len(), 1);
            assert_eq!(seen.cnonces[0].len(), 32);
            nonces.push(seen.cnonces[0].clone());
        }
        assert_eq!(nonces[0], nonces[1], "same seed, same nonce");
        assert_ne!(nonces[0], nonces[2], "another seed, another nonce");
    }

    #[tokio::test]
    async fn a_refused_sasl_password_ends_the_client() {
        let (client, _seen) = sasl_client(1, "not-secret");
        let state = tokio::time::timeout(
            Duration::from_secs(10),
            client.wait_for_state(|s| s.is_terminal()),
        )
        .await
        .expect("no hang");
        assert_eq!(state, State::AuthFailed);
        assert_eq!(client.exists("/x").await, Err(Error::AuthFailed));
    }

    /// When the handshake completes in the same instant as the client's expiry timer runs
    /// out, the session lives: the server said so.
    #[tokio::test(start_paused = true)]
    async fn a_completed_handshake_wins_over_the_expiry_timer() {
        let config = crate::Client::builder("127.0.0.1:1")
            .seed(1)
            .into_config()
            .expect("config");
        let (mut session, _handles) = Session::new(config);
        session.session_id = 1;
        session.negotiated = Duration::from_secs(1);
        session.acked = Instant::now();
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(session.expiry_deadline().expect("deadline") <= Instant::now());
        let out = session.offline(std::future::ready(7)).await;
        assert_eq!(out, Ok(7));
        assert!(!session.timer_expired);
    }
}
