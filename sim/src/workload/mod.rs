//! Client roles: what each simulated client host runs. Every client is a restartable turmoil
//! host (`c1`, `c2`, ...) running a real `zkit::Client` over turmoil TCP, with its own
//! rand_chacha stream derived from the seed, the client number and the incarnation.
//!
//! - [`lock`]: a lock contender writing to the fenced resource while it holds the lock;
//! - [`rwlock`]: a read-write lock contender, reader or writer at random;
//! - [`semaphore`]: a semaphore lease holder;
//! - [`leader_latch`], [`leader_selector`]: leader-election candidates;
//! - [`party`]: a group member;
//! - [`double_barrier`]: a double-barrier participant;
//! - [`config`]: a configuration writer or watcher;
//! - [`writer`]: plain acknowledged sequential creates, listed after a `sync` now and then;
//! - [`counter`]: a shared-counter adder;
//! - [`queue`], [`locking_queue`]: queue producers and consumers;
//! - [`lease`]: a time-limited lease holder;
//! - [`partitioner`]: a set-partitioner member;
//! - [`multi_lock`]: a multi-lock contender;
//! - [`tree`]: a tree writer or a tree cache;
//! - [`barrier`]: a simple barrier's keeper or waiter;
//! - [`register`]: reads, writes and compare-and-sets of one znode used as a register;
//! - [`user`]: a role of the user's own code ([`user::UserRole`]), with the [`user::Recorder`]
//!   it records its beliefs and events through.
//!
//! Every role records each belief change into the history, and passes a pause point
//! ([`History::pause_point`]) wherever a frozen application would stop before acting on what
//! it learnt.
//!
//! Cancellation: while a `cancel` fault is in force on a client ([`History::cancel_range`]),
//! the lock, read-write lock, semaphore, multi-lock, double-barrier and leader-latch roles
//! run their recipe calls through [`cancellable`]: under a timeout drawn from the client's
//! own random stream, as users wrap futures in `tokio::time::timeout`. A cancelled acquire
//! (or enter) is simply tried again later; a cancelled release, leave or close is not
//! retried: the recipe, dropped, must remove its node on its own.

pub mod config;
pub mod double_barrier;
pub mod leader_latch;
pub mod leader_selector;
pub mod lock;
pub mod party;
pub mod rwlock;
pub mod semaphore;
pub mod writer;

pub mod barrier;
pub mod counter;
pub mod lease;
pub mod locking_queue;
pub mod multi_lock;
pub mod partitioner;
pub mod queue;
pub mod register;
pub mod tree;
pub mod user;

use std::future::Future;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use zkit::recipe::{Lease, LockGuard};
use zkit::Client;

use crate::history::{Event, History};
use crate::net::TurmoilConnector;
use crate::scenario::{Role, Workload};

/// What a client host's software returns (turmoil's host result).
pub type Result = std::result::Result<(), Box<dyn std::error::Error>>;

/// Everything one client host needs.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    /// The client's number (1-based; host `c{n}`).
    pub client: usize,
    /// The workload it belongs to.
    pub workload: Workload,
    /// The ensemble's connect string.
    pub hosts: String,
    /// The session timeout to ask for.
    pub session_timeout: Duration,
    /// The run's seed.
    pub seed: u64,
    /// The shared history.
    pub history: History,
    /// Connect over the machine's TCP (real mode, through its proxies) instead of
    /// turmoil's simulated network.
    pub real: bool,
}

impl ClientSpec {
    /// The host name.
    pub fn host(&self) -> String {
        format!("c{}", self.client)
    }

    /// This incarnation's random stream (independent of every other client's).
    pub fn rng(&self, incarnation: u32) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(((self.client as u64) << 32) | u64::from(incarnation));
        rng
    }
}

/// Runs client `spec`'s role forever (until its host crashes or the simulation ends).
pub async fn run(spec: ClientSpec, incarnation: u32) -> Result {
    spec.history.record(Event::Started {
        client: spec.client,
        incarnation,
    });
    match spec.workload.role {
        Role::Lock => lock::run(&spec, incarnation).await,
        Role::Rwlock => rwlock::run(&spec, incarnation).await,
        Role::Semaphore => semaphore::run(&spec, incarnation).await,
        Role::LeaderLatch => leader_latch::run(&spec, incarnation).await,
        Role::LeaderSelector => leader_selector::run(&spec, incarnation).await,
        Role::Party => party::run(&spec, incarnation).await,
        Role::DoubleBarrier => double_barrier::run(&spec, incarnation).await,
        Role::ConfigWriter => config::write(&spec, incarnation).await,
        Role::ConfigWatcher => config::watch(&spec, incarnation).await,
        Role::Writer => writer::run(&spec, incarnation).await,
        Role::Counter => counter::run(&spec, incarnation).await,
        Role::QueueProducer => queue::produce(&spec, incarnation).await,
        Role::QueueConsumer => queue::consume(&spec, incarnation).await,
        Role::LockingQueueProducer => locking_queue::produce(&spec, incarnation).await,
        Role::LockingQueueConsumer => locking_queue::consume(&spec, incarnation).await,
        Role::Lease => lease::run(&spec, incarnation).await,
        Role::Partitioner => partitioner::run(&spec, incarnation).await,
        Role::MultiLock => multi_lock::run(&spec, incarnation).await,
        Role::TreeWriter => tree::write(&spec, incarnation).await,
        Role::TreeCache => tree::cache(&spec, incarnation).await,
        Role::BarrierKeeper => barrier::keep(&spec, incarnation).await,
        Role::BarrierWaiter => barrier::wait(&spec, incarnation).await,
        Role::Register => register::run(&spec, incarnation).await,
        Role::User(name) => Err(format!(
            "user role {name:?} has no code registered (run the scenario with \
             zkit_sim::check(..).role({name:?}, ..))"
        )
        .into()),
    }
}

/// The common start of every role: the incarnation's random stream, a random delay of up
/// to half a second (so clients do not start in lockstep), then a connected client.
pub async fn start(spec: &ClientSpec, incarnation: u32) -> (ChaCha8Rng, Client) {
    start_configured(spec, incarnation, |builder| builder).await
}

/// [`start`], connecting with [`connect_configured`].
pub async fn start_configured(
    spec: &ClientSpec,
    incarnation: u32,
    configure: impl Fn(zkit::Builder) -> zkit::Builder,
) -> (ChaCha8Rng, Client) {
    let mut rng = spec.rng(incarnation);
    tokio::time::sleep(Duration::from_millis(rng.random_range(0..500))).await;
    let zk = connect_configured(spec, rng.random(), configure).await;
    (rng, zk)
}

/// Connects a client (retrying until it succeeds) and logs its state changes into the
/// history.
pub async fn connect(spec: &ClientSpec, seed: u64) -> Client {
    connect_configured(spec, seed, |builder| builder).await
}

/// [`connect`], with `configure` applied to each attempt's builder last (e.g. a test
/// planting a bug in the client).
pub async fn connect_configured(
    spec: &ClientSpec,
    seed: u64,
    configure: impl Fn(zkit::Builder) -> zkit::Builder,
) -> Client {
    let who = spec.host();
    let zk = loop {
        let mut builder = Client::builder(&spec.hosts);
        if !spec.real {
            builder = builder.connector(TurmoilConnector);
        }
        let builder = builder
            .seed(seed)
            .session_timeout(spec.session_timeout)
            .renew_expired_session(true)
            .allow_read_only(spec.workload.allow_read_only);
        let attempt = configure(builder).connect().await;
        match attempt {
            Ok(zk) => break zk,
            Err(e) => {
                spec.history.note(&who, format!("connect failed: {e}"));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    let mut states = zk.state_changes();
    let history = spec.history.clone();
    let client = spec.client;
    history.record(Event::State {
        client,
        state: format!("{:?}", zk.state()),
    });
    let mut info = zk.session_info();
    let sessions = spec.history.clone();
    tokio::spawn(async move {
        let mut last = 0;
        loop {
            let (id, password, server) = {
                let i = info.borrow_and_update();
                (i.session_id, i.password.clone(), i.server.clone())
            };
            sessions.set_server(client, server);
            if id != 0 && id != last {
                last = id;
                sessions.record(Event::Session {
                    client,
                    session: id,
                });
            }
            sessions.set_session(client, id, password);
            if info.changed().await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        loop {
            let state = match states.recv().await {
                Ok(state) => format!("{state:?}"),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    format!("({n} state changes missed)")
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            history.record(Event::State { client, state });
        }
    });
    zk
}

/// Something held that can be lost (a lock guard, a semaphore lease).
pub trait Held {
    /// Whether it can no longer be trusted.
    fn is_lost(&self) -> bool;
    /// Resolves when it can no longer be trusted.
    fn lost(&self) -> impl Future<Output = ()>;
    /// Gives it back.
    fn release(self) -> impl Future<Output = zkit::Result<()>>;
}

impl Held for LockGuard {
    fn is_lost(&self) -> bool {
        LockGuard::is_lost(self)
    }
    fn lost(&self) -> impl Future<Output = ()> {
        LockGuard::lost(self)
    }
    fn release(self) -> impl Future<Output = zkit::Result<()>> {
        LockGuard::release(self)
    }
}

impl Held for Lease {
    fn is_lost(&self) -> bool {
        Lease::is_lost(self)
    }
    fn lost(&self) -> impl Future<Output = ()> {
        Lease::lost(self)
    }
    fn release(self) -> impl Future<Output = zkit::Result<()>> {
        Lease::release(self)
    }
}

/// Ends a hold: a lost one is recorded as [`Event::Lost`] and dropped (its guard cleans up
/// in the background); otherwise the client records [`Event::Released`] (its belief ends as
/// it starts to release) and releases, noting a failure. The release is
/// [`cancellable`]: one cut short is not retried (the dropped guard must delete its node
/// in the background).
pub async fn end_hold<H: Held>(spec: &ClientSpec, rng: &mut ChaCha8Rng, held: H, lost: bool) {
    let client = spec.client;
    if lost {
        spec.history.record(Event::Lost { client });
        drop(held);
    } else {
        spec.history.record(Event::Released { client });
        if let Some(Err(e)) = cancellable(spec, rng, "release", held.release()).await {
            spec.history
                .note(&spec.host(), format!("release failed: {e}"));
        }
    }
}

/// Runs the recipe call `call` (`acquire`, `release`, `enter`, `leave`, `close`: its name
/// in the history) as the client's application would. While a `cancel` fault is in force
/// on the client, under a timeout drawn from the fault's range with `rng`: `None` if the
/// timeout fired first (the call's future is dropped unfinished, and [`Event::Cancelled`]
/// recorded). Otherwise the call runs to the end and nothing is drawn, so a run without a
/// cancel fault draws exactly what it drew before the fault existed.
pub async fn cancellable<T>(
    spec: &ClientSpec,
    rng: &mut ChaCha8Rng,
    call: &'static str,
    future: impl Future<Output = T>,
) -> Option<T> {
    let Some((lo, hi)) = spec.history.cancel_range(spec.client) else {
        return Some(future.await);
    };
    let after = rng.random_range(lo..=hi);
    match tokio::time::timeout(after, future).await {
        Ok(out) => Some(out),
        Err(_) => {
            tracing::debug!(client = spec.client, call, ?after, "recipe call cancelled");
            spec.history.record(Event::Cancelled {
                client: spec.client,
                call,
                after,
            });
            None
        }
    }
}

/// Holds `held` for `hold`, watching for its loss; returns whether it was lost. Pause-aware:
/// whatever wakes the holder while its application is paused, it looks only once the pause
/// is over (until then it keeps believing it holds).
pub async fn hold<H: Held>(history: &History, client: usize, held: &H, hold: Duration) -> bool {
    let lost = tokio::select! {
        biased;
        () = held.lost() => true,
        () = tokio::time::sleep(hold) => false,
    };
    if history.is_paused(client) {
        history.pause_point(client).await;
        return held.is_lost();
    }
    lost
}
