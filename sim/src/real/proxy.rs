//! An in-process TCP fault proxy on loopback, in the spirit of toxiproxy.
//!
//! A [`Proxy`] listens on `127.0.0.1:<ephemeral>` and forwards every connection it accepts to
//! one upstream address. Its faults are set per direction at run time through a
//! [`ProxyHandle`]: [`Direction::Up`] is what the connecting side sends (client to server),
//! [`Direction::Down`] what comes back. Each direction is in one [`Mode`]:
//!
//! - [`Mode::Pass`]: bytes are delivered, after the direction's added latency (toxiproxy's
//!   `latency` toxic: every chunk is delivered no earlier than `latency` after the proxy read
//!   it, in order);
//! - [`Mode::Drop`]: bytes are read and thrown away (toxiproxy's `timeout` toxic with no
//!   timeout, a blackhole). A connection that lost bytes this way is closed when its
//!   direction leaves `Drop`: a stream with a hole in it is not TCP, so the proxy models the
//!   peer's TCP giving up instead of delivering a corrupted stream. A connection accepted
//!   while `Up` drops is never connected upstream (the server sees nothing);
//! - [`Mode::Hold`]: bytes are read and buffered; when the direction leaves `Hold` they are
//!   delivered in order (`Pass`) or dropped (`Drop`).
//!
//! [`ProxyHandle::close_all`] closes every open connection (with a TCP reset, toxiproxy's
//! `reset_peer`), [`ProxyHandle::set_refusing`] makes new connections close at once (a
//! crashed or unreachable peer), and [`ProxyHandle::stats`] counts what was delivered,
//! dropped and held, so tests can assert on events rather than on wall-clock timing.
//!
//! One ZooKeeper-specific hook lives here because it must act on the first bytes of a
//! stream: [`Intercept::ElectionHello`] rewrites the address a member announces in the first
//! message on a leader-election connection (see [`Proxy::start_with`]).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Which way bytes flow through a proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the side that connected (the client) to the upstream (the server).
    Up,
    /// From the upstream back to the side that connected.
    Down,
}

/// What a proxy does with one direction's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Deliver (after the direction's latency).
    #[default]
    Pass,
    /// Read and discard; connections that lost bytes close when the direction heals.
    Drop,
    /// Read and buffer; deliver in order when the direction passes again.
    Hold,
}

/// One direction's faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirFaults {
    /// Pass, drop or hold.
    pub mode: Mode,
    /// Added latency: a chunk is delivered no earlier than this after the proxy read it.
    pub latency: Duration,
}

/// Both directions' faults plus whether new connections are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Faults {
    /// Client to server.
    pub up: DirFaults,
    /// Server to client.
    pub down: DirFaults,
    /// New connections are accepted and closed at once (no upstream connection).
    pub refusing: bool,
}

impl Faults {
    fn dir(&self, d: Direction) -> DirFaults {
        match d {
            Direction::Up => self.up,
            Direction::Down => self.down,
        }
    }

    fn dir_mut(&mut self, d: Direction) -> &mut DirFaults {
        match d {
            Direction::Up => &mut self.up,
            Direction::Down => &mut self.down,
        }
    }
}

/// A rewrite of a connection's first message, applied in the `Up` direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intercept {
    /// ZooKeeper's leader-election handshake (`QuorumCnxManager`'s initial message: protocol
    /// version, sid, then the sender's election address(es)). The receiver of a connection
    /// from a lower sid drops it and connects back to the address in that message, which is
    /// the sender's real election port and would bypass the proxies; the proxy replaces it
    /// with `advertise` (the proxy that carries the reverse link).
    ElectionHello {
        /// The address to announce instead.
        advertise: SocketAddr,
    },
}

/// Counters of one proxy, per direction (index 0 = [`Direction::Up`], 1 = `Down`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections closed by the proxy (healed after a drop, [`ProxyHandle::close_all`],
    /// refused, or upstream unreachable).
    pub closed_by_proxy: u64,
    /// Bytes delivered, per direction.
    pub delivered: [u64; 2],
    /// Bytes dropped, per direction.
    pub dropped: [u64; 2],
    /// Bytes that went into a hold buffer, per direction.
    pub held: [u64; 2],
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    closed_by_proxy: AtomicU64,
    delivered: [AtomicU64; 2],
    dropped: [AtomicU64; 2],
    held: [AtomicU64; 2],
}

fn idx(d: Direction) -> usize {
    match d {
        Direction::Up => 0,
        Direction::Down => 1,
    }
}

#[derive(Debug)]
struct Shared {
    name: String,
    upstream: Mutex<SocketAddr>,
    faults: watch::Sender<Faults>,
    /// Bumped by [`ProxyHandle::close_all`]: every connection opened before closes.
    generation: watch::Sender<u64>,
    counters: Counters,
    intercept: Mutex<Option<Intercept>>,
    /// How long to keep retrying a refused upstream connect (see
    /// [`ProxyHandle::set_connect_retry`]).
    connect_retry: Mutex<Duration>,
}

/// Controls a running [`Proxy`]; cheap to clone, usable from any task or thread.
#[derive(Debug, Clone)]
pub struct ProxyHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

/// A running proxy. Dropping it stops accepting and closes every connection.
#[derive(Debug)]
pub struct Proxy {
    handle: ProxyHandle,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy named `name` (for logs) on 127.0.0.1 in front of `upstream`.
    pub async fn start(name: &str, upstream: SocketAddr) -> std::io::Result<Proxy> {
        Self::start_with(name, upstream, None).await
    }

    /// Like [`Proxy::start`], with a rewrite of each connection's first message.
    pub async fn start_with(
        name: &str,
        upstream: SocketAddr,
        intercept: Option<Intercept>,
    ) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            upstream: Mutex::new(upstream),
            faults: watch::Sender::new(Faults::default()),
            generation: watch::Sender::new(0),
            counters: Counters::default(),
            intercept: Mutex::new(intercept),
            connect_retry: Mutex::new(Duration::ZERO),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Proxy {
            handle: ProxyHandle { shared, addr },
            accept,
        })
    }

    /// The handle that controls this proxy.
    pub fn handle(&self) -> ProxyHandle {
        self.handle.clone()
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.handle.addr
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.handle.close_all();
    }
}

impl ProxyHandle {
    /// The proxy's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where new connections go.
    pub fn upstream(&self) -> SocketAddr {
        *lock(&self.shared.upstream)
    }

    /// Sends new connections to `upstream` from now on (open ones stay where they are).
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *lock(&self.shared.upstream) = upstream;
    }

    /// Sets the rewrite applied to the first message of connections accepted from now on.
    pub fn set_intercept(&self, intercept: Option<Intercept>) {
        *lock(&self.shared.intercept) = intercept;
    }

    /// Keeps retrying a refused upstream connect for up to `window` before closing the
    /// accepted connection (default: no retry). The proxy accepts a connection before it
    /// knows whether the upstream listens, so without this a peer that is not listening
    /// *yet* looks like a reset after connect instead of a refused connect; ZooKeeper's
    /// follower retries the latter quietly but gives up on the former (a new election).
    pub fn set_connect_retry(&self, window: Duration) {
        *lock(&self.shared.connect_retry) = window;
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        *self.shared.faults.borrow()
    }

    /// Replaces every fault at once.
    pub fn set_faults(&self, faults: Faults) {
        tracing::debug!(proxy = %self.shared.name, ?faults, "proxy faults");
        self.shared.faults.send_replace(faults);
    }

    /// Sets one direction's mode, keeping its latency.
    pub fn set_mode(&self, dir: Direction, mode: Mode) {
        let mut f = self.faults();
        f.dir_mut(dir).mode = mode;
        self.set_faults(f);
    }

    /// Sets one direction's added latency.
    pub fn set_latency(&self, dir: Direction, latency: Duration) {
        let mut f = self.faults();
        f.dir_mut(dir).latency = latency;
        self.set_faults(f);
    }

    /// Drops both directions (a full partition of this link).
    pub fn partition(&self) {
        self.set_both(Mode::Drop);
    }

    /// Holds both directions (delivered in order on [`ProxyHandle::heal`]).
    pub fn hold(&self) {
        self.set_both(Mode::Hold);
    }

    /// Both directions pass again (latency and refusal unchanged); held bytes are delivered.
    pub fn heal(&self) {
        self.set_both(Mode::Pass);
    }

    /// Sets both directions' mode in one change (no moment with only one side healed).
    fn set_both(&self, mode: Mode) {
        let mut f = self.faults();
        f.up.mode = mode;
        f.down.mode = mode;
        self.set_faults(f);
    }

    /// Clears every fault: pass both ways, no latency, accept connections.
    pub fn reset(&self) {
        self.set_faults(Faults::default());
    }

    /// Whether new connections are closed at once.
    pub fn set_refusing(&self, refusing: bool) {
        let mut f = self.faults();
        f.refusing = refusing;
        self.set_faults(f);
    }

    /// Closes every open connection with a TCP reset (toxiproxy's `reset_peer`); new
    /// connections are unaffected.
    pub fn close_all(&self) {
        tracing::debug!(proxy = %self.shared.name, "proxy closes all connections");
        self.shared.generation.send_modify(|g| *g += 1);
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            accepted: get(&c.accepted),
            closed_by_proxy: get(&c.closed_by_proxy),
            delivered: [get(&c.delivered[0]), get(&c.delivered[1])],
            dropped: [get(&c.dropped[0]), get(&c.dropped[1])],
            held: [get(&c.held[0]), get(&c.held[1])],
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                tracing::warn!(proxy = %shared.name, "accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = client.set_nodelay(true);
        tokio::spawn(connection(client, shared.clone()));
    }
}

/// Closes `stream` with a reset (SO_LINGER 0) where the platform allows.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Why one direction of a connection ended.
enum End {
    /// EOF or an error on either side.
    Done,
    /// The proxy closes it (close_all, heal after a drop).
    Closed,
}

async fn connection(client: TcpStream, shared: Arc<Shared>) {
    let mut generation = shared.generation.subscribe();
    generation.mark_unchanged();
    let mut faults = shared.faults.subscribe();
    let initial = *faults.borrow_and_update();
    if initial.refusing {
        shared
            .counters
            .closed_by_proxy
            .fetch_add(1, Ordering::Relaxed);
        reset(client);
        return;
    }
    if initial.up.mode == Mode::Drop {
        // The connecting side's packets vanish: never reach the server. Swallow what it
        // sends until the partition heals (then close: its handshake was lost) or it hangs up.
        let end = blackhole(client, &shared, faults, generation).await;
        if let Some(client) = end {
            shared
                .counters
                .closed_by_proxy
                .fetch_add(1, Ordering::Relaxed);
            reset(client);
        }
        return;
    }
    let deadline = Instant::now() + *lock(&shared.connect_retry);
    let server = loop {
        let upstream = shared.upstream();
        match TcpStream::connect(upstream).await {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline && !generation.has_changed().unwrap_or(true) => {
                tracing::trace!(proxy = %shared.name, %upstream, "upstream connect: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                tracing::debug!(proxy = %shared.name, %upstream, "upstream connect: {e}");
                shared
                    .counters
                    .closed_by_proxy
                    .fetch_add(1, Ordering::Relaxed);
                reset(client);
                return;
            }
        }
    };
    let _ = server.set_nodelay(true);
    let (c_read, c_write) = client.into_split();
    let (s_read, s_write) = server.into_split();
    let up = pump(
        Direction::Up,
        c_read,
        s_write,
        shared.clone(),
        generation.clone(),
    );
    let down = pump(Direction::Down, s_read, c_write, shared.clone(), generation);
    tokio::pin!(up);
    tokio::pin!(down);
    // One direction closed by the proxy ends the other (its sockets are already set to
    // reset); one that ended normally lets the other finish.
    let closed = tokio::select! {
        end = &mut up => matches!(end, End::Closed) || matches!(down.await, End::Closed),
        end = &mut down => matches!(end, End::Closed) || matches!(up.await, End::Closed),
    };
    if closed {
        shared
            .counters
            .closed_by_proxy
            .fetch_add(1, Ordering::Relaxed);
    }
}

impl Shared {
    fn upstream(&self) -> SocketAddr {
        *lock(&self.upstream)
    }
}

/// Swallows `client`'s bytes while `Up` drops. Returns the socket to reset when the proxy
/// closes it, `None` when the client hung up.
async fn blackhole(
    mut client: TcpStream,
    shared: &Shared,
    mut faults: watch::Receiver<Faults>,
    mut generation: watch::Receiver<u64>,
) -> Option<TcpStream> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if faults.borrow_and_update().up.mode != Mode::Drop {
            return Some(client);
        }
        tokio::select! {
            r = client.read(&mut buf) => match r {
                Ok(0) | Err(_) => return None,
                Ok(n) => {
                    shared.counters.dropped[0].fetch_add(n as u64, Ordering::Relaxed);
                }
            },
            _ = faults.changed() => {}
            _ = generation.changed() => return Some(client),
        }
    }
}

/// One direction of a connection: a reader that applies `Drop` at once and queues the rest
/// with their arrival time, and a writer that holds, delays and delivers in order.
async fn pump(
    dir: Direction,
    from: OwnedReadHalf,
    to: OwnedWriteHalf,
    shared: Arc<Shared>,
    mut generation: watch::Receiver<u64>,
) -> End {
    // Either socket closed by the proxy goes out with a reset (SO_LINGER 0).
    let linger = |from: &OwnedReadHalf, to: &OwnedWriteHalf| {
        let _ = from.as_ref().set_zero_linger();
        let _ = to.as_ref().set_zero_linger();
    };
    let (mut from, mut to) = (from, to);
    let end = {
        let inner = pump_inner(dir, &mut from, &mut to, &shared);
        tokio::select! {
            end = inner => end,
            _ = generation.changed() => End::Closed,
        }
    };
    if matches!(end, End::Closed) {
        linger(&from, &to);
    }
    end
}

async fn pump_inner(
    dir: Direction,
    from: &mut OwnedReadHalf,
    to: &mut OwnedWriteHalf,
    shared: &Arc<Shared>,
) -> End {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    // Set when bytes were dropped: the stream has a hole; close once the direction heals.
    let poisoned = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let i = idx(dir);
    let reader = {
        let shared = shared.clone();
        let poisoned = poisoned.clone();
        let mut faults = shared.faults.subscribe();
        async move {
            let mut buf = vec![0u8; 16 * 1024];
            let intercept = *lock(&shared.intercept);
            let mut first = dir == Direction::Up && intercept.is_some();
            loop {
                if first {
                    first = false;
                    if let Some(Intercept::ElectionHello { advertise }) = intercept {
                        match read_election_hello(from, advertise).await {
                            Ok(bytes) => {
                                if tx.send((Instant::now(), bytes)).is_err() {
                                    return;
                                }
                                continue;
                            }
                            Err(_) => return,
                        }
                    }
                }
                let n = tokio::select! {
                    r = from.read(&mut buf) => match r {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    },
                    // A heal after a drop closes the connection; wake to notice.
                    _ = faults.changed() => {
                        if poisoned.load(Ordering::Relaxed)
                            && faults.borrow_and_update().dir(dir).mode != Mode::Drop
                        {
                            return;
                        }
                        continue;
                    }
                };
                let mode = faults.borrow_and_update().dir(dir).mode;
                if mode == Mode::Drop {
                    shared.counters.dropped[i].fetch_add(n as u64, Ordering::Relaxed);
                    poisoned.store(true, Ordering::Relaxed);
                    continue;
                }
                if mode == Mode::Hold {
                    shared.counters.held[i].fetch_add(n as u64, Ordering::Relaxed);
                }
                if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                    return;
                }
            }
        }
    };
    let writer = {
        let shared = shared.clone();
        let poisoned = poisoned.clone();
        let mut faults = shared.faults.subscribe();
        async move {
            let mut pending: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
            let mut reader_done = false;
            loop {
                let f = faults.borrow_and_update().dir(dir);
                if poisoned.load(Ordering::Relaxed) && f.mode != Mode::Drop {
                    return End::Closed;
                }
                match f.mode {
                    Mode::Drop => {
                        for (_, bytes) in pending.drain(..) {
                            shared.counters.dropped[i]
                                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                            poisoned.store(true, Ordering::Relaxed);
                        }
                    }
                    Mode::Pass => {
                        if let Some((at, bytes)) = pending.pop_front() {
                            let due = at + f.latency;
                            tokio::select! {
                                _ = tokio::time::sleep_until(due) => {
                                    if to.write_all(&bytes).await.is_err() {
                                        return End::Done;
                                    }
                                    shared.counters.delivered[i].fetch_add(bytes.len() as u64, Ordering::Relaxed);
                                }
                                // The mode or latency changed while waiting: re-decide.
                                _ = faults.changed() => pending.push_front((at, bytes)),
                            }
                            continue;
                        }
                    }
                    Mode::Hold => {}
                }
                if reader_done && pending.is_empty() {
                    let _ = to.shutdown().await;
                    return End::Done;
                }
                if reader_done {
                    // Held bytes with nothing more to read: wait for the mode to change.
                    if faults.changed().await.is_err() {
                        return End::Done;
                    }
                    continue;
                }
                tokio::select! {
                    m = rx.recv() => match m {
                        Some(item) => pending.push_back(item),
                        None => reader_done = true,
                    },
                    r = faults.changed() => if r.is_err() { return End::Done },
                }
            }
        }
    };
    tokio::pin!(reader);
    tokio::pin!(writer);
    let mut reader_done = false;
    loop {
        tokio::select! {
            // Completing drops the reader's sender: the writer drains and sees the end.
            _ = &mut reader, if !reader_done => reader_done = true,
            end = &mut writer => return end,
        }
    }
}

/// Reads ZooKeeper's election initial message from `from` and returns it with the
/// announced address replaced by `advertise`. Messages of the old protocol (a bare sid) and
/// unexpected shapes pass unchanged.
async fn read_election_hello(
    from: &mut OwnedReadHalf,
    advertise: SocketAddr,
) -> std::io::Result<Vec<u8>> {
    // protocol version (i64), sid (i64), length (i32), addresses ("host:port|host:port").
    let mut head = [0u8; 8];
    from.read_exact(&mut head).await?;
    let version = i64::from_be_bytes(head);
    if version >= 0 {
        return Ok(head.to_vec());
    }
    let mut rest = [0u8; 12];
    from.read_exact(&mut rest).await?;
    let len = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
    let mut out = head.to_vec();
    if !(0..=4096).contains(&len) {
        out.extend_from_slice(&rest);
        return Ok(out);
    }
    let mut addrs = vec![0u8; len as usize];
    from.read_exact(&mut addrs).await?;
    let new = advertise.to_string().into_bytes();
    out.extend_from_slice(&rest[..8]);
    out.extend_from_slice(&(new.len() as i32).to_be_bytes());
    out.extend_from_slice(&new);
    tracing::trace!(
        from = %String::from_utf8_lossy(&addrs),
        to = %advertise,
        "election hello rewritten"
    );
    Ok(out)
}
