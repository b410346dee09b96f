//! The connected loop: pipelined requests written in batches, replies matched in order to the
//! FIFO of pending requests, notifications handed to the watch registry, pings when idle, and
//! a read timeout that declares the connection dead.
//!
//! Reads, writes, new requests, control messages and the timer are polled in one `select!`
//! (biased, so a seed replays), which keeps reading while a large batch is being written.
//!
//! Liveness is measured by what the server acknowledged, not by bytes arriving: every request
//! and ping remembers when it was sent, and a reply moves [`Session::acked`] to its request's
//! send time. The read timeout runs from there, so watch notifications (which the server sends
//! whether or not it hears from us) cannot keep a connection alive whose outgoing half is cut,
//! and replies held up in the network count for when their requests left, not for when they
//! arrive.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::handshake::Handshaken;
use super::{Control, End, Failure, Outcome, Reply, Session, Submit, WatchSlot};
use crate::error::Error;
use crate::proto::{
    encode_frame, ErrorCode, OpCode, Reader, Record, RemoveWatchesRequest, ReplyHeader, Request,
    RequestHeader, Response, WatcherEvent, WatcherType, AUTH_XID, NOTIFICATION_XID, PING_XID,
    SET_WATCHES_XID,
};
use crate::state::State;
use crate::watch::{Restore, WatchKind};

/// Stop taking new requests while this many bytes wait to be written.
const WRITE_HIGH_WATER: usize = 256 * 1024;
/// While at least this many requests already sent await their replies, new requests are held
/// back until [`WRITE_BATCH`] bytes have gathered: the server has work queued, so sending them
/// now would not answer them sooner, and one large write costs far less than many small ones.
const DEFER_WHILE_AWAITING: usize = 256;
/// Bytes of held-back requests that are written at once regardless.
const WRITE_BATCH: usize = 64 * 1024;
/// Initial capacity of the write buffer.
const WRITE_CHUNK: usize = 64 * 1024;
/// Size of the read buffer: one read takes up to this much (many replies per syscall).
const READ_BUF: usize = 256 * 1024;
/// Below this much free space at its end, the read buffer is compacted before the next read.
const READ_MIN_SPARE: usize = 16 * 1024;

/// The connection's input: one buffer, allocated once, read into at `end` and decoded in place
/// from `start` (frames are borrowed, never copied); a partial frame is moved to the front when
/// the space behind it runs low.
struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    fn new(rest: &[u8]) -> ReadBuf {
        let mut buf = vec![0; READ_BUF.max(rest.len() + READ_MIN_SPARE)];
        buf[..rest.len()].copy_from_slice(rest);
        ReadBuf {
            buf,
            start: 0,
            end: rest.len(),
        }
    }

    /// The free space to read into, made at least `READ_MIN_SPARE` (or whatever the partial
    /// frame at the front still needs) by compacting or, for a large frame, growing.
    fn spare(&mut self, need: usize) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let want = need.max(READ_MIN_SPARE);
        if self.buf.len() - self.end < want {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < want {
                self.buf.resize(self.end + want, 0);
            }
        }
        &mut self.buf[self.end..]
    }
}

/// A request awaiting its reply.
struct Pending {
    xid: i32,
    op: OpCode,
    kind: PendingKind,
    /// When it was put in the write buffer (no later than the server received it).
    sent: Instant,
}

enum PendingKind {
    /// A caller's request.
    User {
        reply: oneshot::Sender<Result<Reply, Failure>>,
        /// The watch and the server path it is on.
        watch: Option<(WatchSlot, String)>,
    },
    /// Our closeSession.
    Close,
    /// A request whose outcome nobody awaits (watch removal).
    Ignore,
}

/// Why the loop must stop.
enum Stop {
    Disconnect(Error),
    End(End),
}

impl From<crate::proto::DecodeError> for Stop {
    fn from(e: crate::proto::DecodeError) -> Stop {
        Stop::Disconnect(e.into())
    }
}

/// Per-connection state.
struct Conn {
    wbuf: Vec<u8>,
    wpos: usize,
    pending: VecDeque<Pending>,
    /// Callers of addAuth, in the order their packets were sent (`None`: a replayed packet).
    auth_waiting: VecDeque<Option<oneshot::Sender<Result<(), Failure>>>>,
    closing: bool,
    last_send: Instant,
    /// When each ping awaiting its reply was put in the write buffer, oldest first.
    pings: VecDeque<Instant>,
    /// Callers' requests encoded since the write buffer was last empty.
    queued: usize,
    /// The write buffer holds something other than callers' requests (a ping, credentials,
    /// watches to restore, closeSession): write it now.
    urgent: bool,
}

impl Conn {
    fn unsent(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    /// Requests written (or partly written) whose replies have not arrived yet.
    fn awaiting(&self) -> usize {
        self.pending.len().saturating_sub(self.queued)
    }

    /// Whether to write what is buffered now (see [`DEFER_WHILE_AWAITING`]).
    fn should_write(&self) -> bool {
        let unsent = self.unsent();
        unsent > 0
            && (self.urgent || unsent >= WRITE_BATCH || self.awaiting() < DEFER_WHILE_AWAITING)
    }
}

impl Session {
    /// Serves one connection until it drops or the session ends.
    pub(super) async fn serve(&mut self, hs: Handshaken) -> Outcome {
        let Handshaken {
            stream,
            response,
            rest,
            sent: _,
        } = hs;
        let state = if response.read_only {
            State::ConnectedReadOnly
        } else {
            State::Connected
        };
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut control_open = true;
        let mut rbuf = ReadBuf::new(&rest);
        drop(rest);
        let now = Instant::now();
        let mut conn = Conn {
            wbuf: Vec::with_capacity(WRITE_CHUNK),
            wpos: 0,
            pending: VecDeque::new(),
            auth_waiting: VecDeque::new(),
            closing: false,
            last_send: now,
            pings: VecDeque::new(),
            queued: 0,
            urgent: true,
        };
        self.replay_session(&mut conn);
        let server = self.hosts[(self.next_host + self.hosts.len() - 1) % self.hosts.len()].clone();
        self.publish(state, Some(server));

        let read_timeout = self.negotiated * 2 / 3;
        let ping_interval = read_timeout / 2;
        let timer =
            tokio::time::sleep_until(self.next_tick(&conn, now, ping_interval, read_timeout));
        tokio::pin!(timer);

        // Frames that arrived with the handshake reply; then `need` is what the partial frame
        // at the front of `rbuf` still lacks.
        let mut need = match self.read_frames(&mut rbuf, &mut conn) {
            Ok(n) => n,
            Err(stop) => return self.stopped(stop, conn),
        };
        let stop = loop {
            let can_take = !conn.closing
                && conn.pending.len() < self.config.max_in_flight
                && conn.unsent() < WRITE_HIGH_WATER;
            let writing = conn.should_write();
            tokio::select! {
                biased;
                r = rd.read(rbuf.spare(need)) => {
                    match r {
                        Ok(0) => break Stop::Disconnect(Error::ConnectionLoss),
                        Ok(n) => {
                            rbuf.end += n;
                            match self.read_frames(&mut rbuf, &mut conn) {
                                Ok(n) => need = n,
                                Err(stop) => break stop,
                            }
                        }
                        // A reset or broken connection: nothing wrong with any reply.
                        Err(e) => {
                            tracing::debug!(error = %e, "read failed");
                            break Stop::Disconnect(Error::ConnectionLoss);
                        }
                    }
                }
                r = wr.write(&conn.wbuf[conn.wpos..]), if writing => {
                    match r {
                        Ok(0) | Err(_) => break Stop::Disconnect(Error::ConnectionLoss),
                        Ok(n) => {
                            conn.wpos += n;
                            if conn.wpos == conn.wbuf.len() {
                                conn.wbuf.clear();
                                conn.wpos = 0;
                                conn.queued = 0;
                                conn.urgent = false;
                            }
                            conn.last_send = Instant::now();
                        }
                    }
                }
                msg = self.control.recv(), if control_open => {
                    match msg {
                        Some(msg) => self.control_online(msg, &mut conn),
                        // Every client handle is gone: close the session, and stop polling a
                        // channel that would answer `None` at once forever.
                        None => {
                            control_open = false;
                            self.control_online(Control::Close { done: None }, &mut conn);
                        }
                    }
                    conn.urgent = true;
                }
                submit = self.requests.recv(), if can_take => match submit {
                    Some(submit) => {
                        self.enqueue(submit, &mut conn);
                        // Batch whatever else is already queued into the same write.
                        while conn.pending.len() < self.config.max_in_flight
                            && conn.unsent() < WRITE_HIGH_WATER
                        {
                            match self.requests.try_recv() {
                                Ok(submit) => self.enqueue(submit, &mut conn),
                                Err(_) => break,
                            }
                        }
                    }
                    None => {
                        self.control_online(Control::Close { done: None }, &mut conn);
                        conn.urgent = true;
                    }
                },
                () = &mut timer => {
                    let now = Instant::now();
                    if now >= self.acked + read_timeout {
                        break Stop::Disconnect(Error::Timeout("no reply from the server within the read timeout"));
                    }
                    // One ping at a time: when idle, and when nothing sent for a while has
                    // been answered (a reply to the ping proves the server heard us).
                    if conn.pings.is_empty()
                        && (now >= conn.last_send + ping_interval
                            || now >= self.acked + ping_interval)
                    {
                        encode_frame(&mut conn.wbuf, |o| Request::Ping.encode(PING_XID, o));
                        conn.pings.push_back(now);
                        conn.urgent = true;
                    }
                    timer.as_mut().reset(self.next_tick(&conn, now, ping_interval, read_timeout));
                }
            }
        };
        self.stopped(stop, conn)
    }

    /// When the connection's timer must next look at it: the read timeout, or the next ping.
    fn next_tick(
        &self,
        conn: &Conn,
        now: Instant,
        ping_interval: Duration,
        read_timeout: Duration,
    ) -> Instant {
        let mut next = self.acked + read_timeout;
        if conn.pings.is_empty() {
            next = next.min(conn.last_send.min(self.acked) + ping_interval);
        }
        next.max(now + Duration::from_millis(1))
    }

    /// The server answered something sent at `sent`: it heard from the session then or later.
    fn acknowledged(&mut self, sent: Instant) {
        self.acked = self.acked.max(sent);
    }

    /// Fails what is in flight as `stop` says and tells the caller how the connection ended.
    fn stopped(&mut self, stop: Stop, mut conn: Conn) -> Outcome {
        let error = match stop {
            Stop::End(end) => {
                self.fail_pending(&mut conn, end.error());
                return Outcome::End(end);
            }
            Stop::Disconnect(e) => e,
        };
        tracing::info!(error = %e_display(&error), in_flight = conn.pending.len(), "connection lost");
        if conn.closing {
            self.fail_pending(&mut conn, Error::Closed);
            return Outcome::End(End::Closed);
        }
        // The first caller learns what broke the connection when it is about its own reply
        // (an oversized or malformed frame); everyone else hears ConnectionLoss.
        if matches!(error, Error::FrameTooLarge { .. } | Error::Protocol(_)) {
            if let Some(p) = conn.pending.pop_front() {
                reply_failure(p, Failure::Client(error));
            }
        }
        self.fail_pending(&mut conn, Error::ConnectionLoss);
        Outcome::Disconnected
    }

    /// Credentials and watches a new connection must carry before anything else.
    fn replay_session(&mut self, conn: &mut Conn) {
        let replayed = self.auth.len() - self.new_auth.len();
        for (i, packet) in self.auth.iter().enumerate() {
            encode_frame(&mut conn.wbuf, |o| {
                Request::Auth(packet.clone()).encode(AUTH_XID, o)
            });
            conn.auth_waiting.push_back(None);
            if i >= replayed {
                // Filled below from the callers who added it while disconnected.
            }
        }
        // Callers who added credentials while disconnected wait for the tail packets.
        let tail = conn.auth_waiting.len() - self.new_auth.len();
        for (slot, waiter) in conn
            .auth_waiting
            .iter_mut()
            .skip(tail)
            .zip(self.new_auth.drain(..))
        {
            *slot = Some(waiter);
        }
        if !self.watches.is_empty()
            && !self
                .config
                .planted(crate::planted::PlantedBug::WatchesNotRestored)
        {
            for restore in self.watches.restore_requests(self.last_zxid) {
                let request = match restore {
                    Restore::V1(r) => Request::SetWatches(r),
                    Restore::V2(r) => Request::SetWatches2(r),
                };
                encode_frame(&mut conn.wbuf, |o| request.encode(SET_WATCHES_XID, o));
            }
        }
    }

    fn control_online(&mut self, msg: Control, conn: &mut Conn) {
        match msg {
            Control::Close { done } => {
                self.closing.extend(done);
                if !conn.closing {
                    conn.closing = true;
                    let xid = self.next_xid();
                    encode_frame(&mut conn.wbuf, |o| Request::CloseSession.encode(xid, o));
                    conn.pending.push_back(Pending {
                        xid,
                        op: OpCode::CloseSession,
                        kind: PendingKind::Close,
                        sent: Instant::now(),
                    });
                }
            }
            Control::AddAuth { packet, reply } => {
                encode_frame(&mut conn.wbuf, |o| {
                    Request::Auth(packet.clone()).encode(AUTH_XID, o)
                });
                self.auth.push(packet);
                conn.auth_waiting.push_back(Some(reply));
            }
            Control::RemovePersistent { id, mode } => {
                if let Some(path) = self.watches.remove_persistent(mode, id) {
                    let request = Request::RemoveWatches(RemoveWatchesRequest {
                        path,
                        watcher_type: WatcherType::Any,
                    });
                    let xid = self.next_xid();
                    encode_frame(&mut conn.wbuf, |o| request.encode(xid, o));
                    conn.pending.push_back(Pending {
                        xid,
                        op: OpCode::RemoveWatches,
                        kind: PendingKind::Ignore,
                        sent: Instant::now(),
                    });
                }
            }
        }
    }

    /// Writes a caller's request into the outgoing buffer and queues its reply slot.
    fn enqueue(&mut self, submit: Submit, conn: &mut Conn) {
        if submit.reply.is_closed() {
            // The caller gave up before it was sent: sending it now would surprise them.
            return;
        }
        let xid = self.next_xid();
        let op = submit.op;
        conn.queued += 1;
        encode_frame(&mut conn.wbuf, |o| {
            RequestHeader { xid, op: op.code() }.encode(o);
            o.extend_from_slice(&submit.body);
        });
        conn.pending.push_back(Pending {
            xid,
            op,
            kind: PendingKind::User {
                reply: submit.reply,
                watch: submit.watch,
            },
            sent: Instant::now(),
        });
    }

    /// Handles every whole frame in `rbuf`; returns how many more bytes the partial frame left
    /// at its front needs (0 if it does not know yet).
    fn read_frames(&mut self, rbuf: &mut ReadBuf, conn: &mut Conn) -> Result<usize, Stop> {
        let mut need = 0;
        while rbuf.end - rbuf.start >= 4 {
            let at = rbuf.start;
            let prefix = [
                rbuf.buf[at],
                rbuf.buf[at + 1],
                rbuf.buf[at + 2],
                rbuf.buf[at + 3],
            ];
            let len = self.decoder.check_length(prefix)?;
            if rbuf.end - at < 4 + len {
                need = 4 + len - (rbuf.end - at);
                break;
            }
            rbuf.start = at + 4 + len;
            self.on_frame(&rbuf.buf[at + 4..at + 4 + len], conn)?;
        }
        Ok(need)
    }

    fn on_frame(&mut self, frame: &[u8], conn: &mut Conn) -> Result<(), Stop> {
        let mut r = Reader::new(frame);
        let header = ReplyHeader::decode(&mut r)?;
        match header.xid {
            NOTIFICATION_XID => {
                let event = WatcherEvent::decode(&mut r)?;
                tracing::trace!(path = %event.path, kind = ?event.event_type, "notification");
                self.watches.dispatch(&event);
            }
            PING_XID => {
                if let Some(sent) = conn.pings.pop_front() {
                    self.acknowledged(sent);
                }
            }
            AUTH_XID => {
                let waiter = conn.auth_waiting.pop_front().flatten();
                if header.err == ErrorCode::AuthFailed.code() {
                    if let Some(w) = waiter {
                        let _ = w.send(Err(Failure::Code(ErrorCode::AuthFailed)));
                    }
                    return Err(Stop::End(End::AuthFailed));
                }
                if let Some(w) = waiter {
                    let _ = w.send(code_result(header.err).map(|_| ()));
                }
            }
            SET_WATCHES_XID => {
                if header.err != 0 {
                    tracing::warn!(err = header.err, "server refused to restore watches");
                }
            }
            xid => {
                let Some(p) = conn.pending.pop_front() else {
                    return Err(Stop::Disconnect(Error::Protocol(format!(
                        "reply with xid {xid} to no pending request"
                    ))));
                };
                if p.xid != xid {
                    let msg = format!(
                        "reply xid {xid} does not match pending request xid {}",
                        p.xid
                    );
                    conn.pending.push_front(p);
                    return Err(Stop::Disconnect(Error::Protocol(msg)));
                }
                if header.zxid > 0 {
                    self.last_zxid = header.zxid;
                }
                self.acknowledged(p.sent);
                self.complete(p, header, &mut r)?;
            }
        }
        Ok(())
    }

    /// Delivers a matched reply and registers the watch it carries.
    fn complete(
        &mut self,
        p: Pending,
        header: ReplyHeader,
        r: &mut Reader<'_>,
    ) -> Result<(), Stop> {
        let (reply, watch) = match p.kind {
            PendingKind::Close => return Err(Stop::End(End::Closed)),
            PendingKind::Ignore => return Ok(()),
            PendingKind::User { reply, watch } => (reply, watch),
        };
        if header.err != 0 {
            let outcome = code_result(header.err);
            if let (
                Some((WatchSlot::OneShot(tx), path)),
                OpCode::Exists,
                Err(Failure::Code(ErrorCode::NoNode)),
            ) = (watch, p.op, &outcome)
            {
                self.watches.add(WatchKind::Exist, &path, tx);
            }
            let _ = reply.send(outcome.map(|_| unreachable_reply()));
            return Ok(());
        }
        match Response::decode(p.op, r) {
            Ok(response) => {
                if let Some((slot, path)) = watch {
                    match slot {
                        WatchSlot::OneShot(tx) => {
                            let kind = match p.op {
                                OpCode::GetChildren | OpCode::GetChildren2 => WatchKind::Child,
                                _ => WatchKind::Data,
                            };
                            self.watches.add(kind, &path, tx);
                        }
                        WatchSlot::Persistent { mode, id, tx } => {
                            self.watches.add_persistent(mode, &path, id, tx);
                        }
                    }
                }
                let _ = reply.send(Ok(Reply {
                    zxid: header.zxid,
                    response,
                }));
            }
            Err(e) => {
                let _ = reply.send(Err(Failure::Client(Error::Protocol(format!(
                    "malformed reply to {:?}: {e}",
                    p.op
                )))));
            }
        }
        Ok(())
    }

    fn fail_pending(&mut self, conn: &mut Conn, error: Error) {
        for p in conn.pending.drain(..) {
            reply_failure(p, Failure::Client(error.clone()));
        }
        for w in conn.auth_waiting.drain(..).flatten() {
            let _ = w.send(Err(Failure::Client(error.clone())));
        }
    }
}

fn reply_failure(p: Pending, failure: Failure) {
    if let PendingKind::User { reply, .. } = p.kind {
        let _ = reply.send(Err(failure));
    }
}

/// The outcome a non-zero reply code stands for (an unknown code is a protocol error).
fn code_result(err: i32) -> Result<(), Failure> {
    if err == 0 {
        return Ok(());
    }
    match ErrorCode::try_from(err) {
        Ok(code) => Err(Failure::Code(code)),
        Err(_) => Err(Failure::Client(Error::Protocol(format!(
            "unknown error code {err}"
        )))),
    }
}

/// `code_result` never yields `Ok` for a non-zero code; this keeps the types aligned.
fn unreachable_reply() -> Reply {
    Reply {
        zxid: 0,
        response: Response::Empty,
    }
}

fn e_display(e: &Error) -> String {
    e.to_string()
}
