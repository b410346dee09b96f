//! The simulated ZooKeeper server: one standalone ZooKeeper, in memory, speaking the real wire
//! protocol.
//!
//! Layout, after ZooKeeper's own split between ordering and applying:
//! - [`tree`]: the data tree, a pure state machine that applies transactions;
//! - [`txn`]: the transactions (what an ensemble would replicate);
//! - [`prep`]: validation of a write into a transaction (`PrepRequestProcessor`);
//! - [`acl`]: identities, schemes and permission checks;
//! - [`watches`]: the watch manager and its trigger rules;
//! - [`session`]: session ids, passwords, timeouts and expiry buckets;
//! - `core` / `process`: the state behind one lock and the answer to each request
//!   (`FinalRequestProcessor`);
//! - `replica` / `read_only`: the core as an ensemble member, and as a member without
//!   quorum serving read-only clients (`ReadOnlyZooKeeperServer`);
//! - [`order`]: the (unsorted, per-server) order of listed children and ephemerals;
//! - `connection`: the per-connection task; `four_letter`: the text commands.
//!
//! Everything is deterministic for a given [`ServerConfig::seed`] and schedule: time comes
//! from `tokio::time` only, randomness from the seed, iteration from ordered maps.

pub mod acl;
mod connection;
mod core;
pub mod four_letter;
pub mod order;
pub mod prep;
mod process;
pub(crate) mod read_only;
pub(crate) mod replica;
pub mod session;
pub mod tree;
pub mod txn;
pub mod watches;

pub use connection::ConnectionError;
pub use replica::{session_password, Origin, Submission, SubmitKind};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use self::core::Core;
use crate::net::Listener;

/// How a server is set up (the parts of `zoo.cfg` that matter here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The basic time unit (`tickTime`); session expiry is checked once per tick.
    pub tick_time: Duration,
    /// Smallest session timeout granted (`minSessionTimeout`; default 2 ticks).
    pub min_session_timeout: Option<Duration>,
    /// Largest session timeout granted (`maxSessionTimeout`; default 20 ticks).
    pub max_session_timeout: Option<Duration>,
    /// How often empty containers and expired TTL nodes are deleted
    /// (`znode.container.checkIntervalMs`, default one minute).
    pub reaper_interval: Duration,
    /// Largest frame accepted from a client (`jute.maxbuffer`); a bigger one closes the
    /// connection, so it also bounds node data.
    pub max_buffer: usize,
    /// Whether TTL nodes are enabled (`zookeeper.extendedTypesEnabled`; on by default here).
    pub extended_types: bool,
    /// Whether a watch notification's header carries the zxid of the change (ZooKeeper 3.9)
    /// instead of -1 (3.8 and before; the default).
    pub notification_zxid: bool,
    /// Seed of session ids and passwords.
    pub seed: u64,
    /// This server's id (high byte of its session ids), 1..=254.
    pub server_id: u8,
    /// Wall-clock time at server start, ms since the Unix epoch: ctime/mtime are this plus
    /// the simulated time elapsed.
    pub epoch_ms: i64,
    /// The port reported by `conf` (informational).
    pub client_port: u16,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            tick_time: Duration::from_millis(2000),
            min_session_timeout: None,
            max_session_timeout: None,
            reaper_interval: Duration::from_secs(60),
            max_buffer: zkit::proto::DEFAULT_MAX_FRAME,
            extended_types: true,
            notification_zxid: false,
            seed: 0,
            server_id: 1,
            // 2024-01-01T00:00:00Z: a fixed epoch keeps ctime/mtime reproducible.
            epoch_ms: 1_704_067_200_000,
            client_port: 2181,
        }
    }
}

fn ms_i32(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

impl ServerConfig {
    /// The smallest session timeout granted, in ms.
    pub fn min_session_timeout_ms(&self) -> i32 {
        self.min_session_timeout
            .map(ms_i32)
            .unwrap_or_else(|| ms_i32(self.tick_time).saturating_mul(2))
    }

    /// The largest session timeout granted, in ms.
    pub fn max_session_timeout_ms(&self) -> i32 {
        self.max_session_timeout
            .map(ms_i32)
            .unwrap_or_else(|| ms_i32(self.tick_time).saturating_mul(20))
    }
}

/// State shared by the server's tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    core: Mutex<Core>,
    start: Instant,
    max_buffer: usize,
    /// Whether the server is frozen (a stop-the-world pause of its process).
    frozen: AtomicBool,
    /// Wakes what waits in [`Shared::thawed`].
    thaw: Notify,
}

impl Shared {
    /// Locks the core (a poisoned lock is taken as is: the core has no invariant a panic
    /// elsewhere could break halfway, and malformed input never panics).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Milliseconds since the server started.
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn max_buffer(&self) -> usize {
        self.max_buffer
    }

    /// Freezes or thaws the server, as a JVM's stop-the-world pause does: while frozen, none
    /// of its tasks acts (each waits in [`Shared::thawed`] before acting), and once thawed
    /// each acts on what it finds, timers long due included.
    pub(crate) fn set_frozen(&self, frozen: bool) {
        self.frozen.store(frozen, Ordering::SeqCst);
        if !frozen {
            self.thaw.notify_waiters();
        }
    }

    /// Returns at once unless the server is frozen, else once it is thawed.
    pub(crate) async fn thawed(&self) {
        loop {
            let thaw = self.thaw.notified();
            if !self.frozen.load(Ordering::SeqCst) {
                return;
            }
            thaw.await;
        }
    }
}

/// A running server's entry points.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Starts a server on `listener`: an accept loop, and timers for session expiry and the
    /// reaper. Must be called inside a tokio runtime (or a turmoil host). The server runs
    /// until the returned handle is shut down or dropped.
    pub fn start<L: Listener>(config: ServerConfig, listener: L) -> ServerHandle {
        Server::start_with(config, listener, None)
    }

    /// Starts an ensemble member: like [`Server::start`], but writes go through the quorum.
    pub(crate) fn start_member<L: Listener>(
        config: ServerConfig,
        listener: L,
        replica: replica::Replica,
    ) -> ServerHandle {
        Server::start_with(config, listener, Some(replica))
    }

    fn start_with<L: Listener>(
        config: ServerConfig,
        listener: L,
        replica: Option<replica::Replica>,
    ) -> ServerHandle {
        let local_addr = listener.local_addr().ok();
        let tick = config.tick_time.max(Duration::from_millis(1));
        let reaper = config.reaper_interval.max(Duration::from_millis(1));
        let mut core = Core::new(config.clone());
        if let Some(replica) = replica {
            core.set_replica(replica);
        }
        let shared = Arc::new(Shared {
            max_buffer: config.max_buffer,
            frozen: AtomicBool::new(false),
            thaw: Notify::new(),
            core: Mutex::new(core),
            start: Instant::now(),
        });
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        tracing::info!(addr = ?local_addr, "zkit-sim server starting");
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), shutdown_rx.clone()));
        let timers = tokio::spawn(timer_loop(shared.clone(), tick, reaper, shutdown_rx));
        ServerHandle {
            local_addr,
            shutdown: shutdown_tx,
            tasks: vec![accept, timers],
            shared,
        }
    }

    /// Binds a tokio TCP listener on `addr` (e.g. `127.0.0.1:0`) and starts a server on it;
    /// the handle knows the real address.
    pub async fn bind(addr: &str, config: ServerConfig) -> std::io::Result<ServerHandle> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        Ok(Server::start(config, listener))
    }
}

async fn accept_loop<L: Listener>(
    listener: L,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            biased;
            r = shutdown.changed() => {
                if r.is_err() || *shutdown.borrow() {
                    break;
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(connection::serve(stream, peer, shared.clone(), shutdown.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
    tracing::info!("zkit-sim server stopped accepting");
}

async fn timer_loop(
    shared: Arc<Shared>,
    tick: Duration,
    reaper: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let start = shared.start;
    let mut expiry = tokio::time::interval_at(start + tick, tick);
    expiry.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut reap = tokio::time::interval_at(start + reaper, reaper);
    reap.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            r = shutdown.changed() => {
                if r.is_err() || *shutdown.borrow() {
                    break;
                }
            }
            _ = expiry.tick() => {
                shared.thawed().await;
                let now = shared.now_ms();
                shared.lock().expire(now);
            }
            _ = reap.tick() => {
                shared.thawed().await;
                let now = shared.now_ms();
                shared.lock().reap(now);
            }
        }
    }
}

/// Controls a running server; dropping it shuts the server down.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl ServerHandle {
    /// The address the server listens on (`None` if the listener could not tell).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The address as `host:port`, handy for clients; empty if unknown.
    pub fn connect_string(&self) -> String {
        self.local_addr.map(|a| a.to_string()).unwrap_or_default()
    }

    /// The state shared with the server's tasks (for the ensemble layer).
    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// The last applied zxid.
    pub fn last_zxid(&self) -> i64 {
        self.shared.lock().tree.last_zxid()
    }

    /// Number of live sessions.
    pub fn session_count(&self) -> usize {
        self.shared.lock().sessions.sessions().len()
    }

    /// A snapshot of the data tree (for checkers and tests).
    pub fn tree(&self) -> tree::DataTree {
        self.shared.lock().tree.clone()
    }

    /// Answers a four-letter word without a connection.
    pub fn four_letter(&self, cmd: &str) -> String {
        self.shared.lock().four_letter(cmd)
    }

    /// Stops accepting, stops the timers and closes every connection; returns when the
    /// server's own tasks have finished.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }

    /// Waits for the server's tasks, which only a shutdown ends: in practice this parks the
    /// caller for good, which is what a turmoil host serving forever wants.
    pub async fn wait(mut self) {
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
