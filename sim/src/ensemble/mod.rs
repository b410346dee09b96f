//! A replicated simulated ensemble: N servers, each a turmoil host running the simulated
//! ZooKeeper server for clients plus a Zab-like replication protocol between servers.
//!
//! - [`log`]: each server's durable state (snapshot, log, epochs, commit point), kept in the
//!   [`Ensemble`]'s world outside the hosts so it survives `crash`/`bounce`;
//! - [`snapshot`]: a server's whole state at one committed zxid; servers take one every
//!   [`EnsembleConfig::snapshot_every`] commits and drop the log it covers;
//! - [`peer`]: the messages servers exchange and the TCP links that carry them;
//! - `election`: a server looking for a leader votes for the highest (epoch, zxid, id) among
//!   a quorum it can hear, and a new leader takes a new epoch;
//! - `leader` / `follower`: the leader syncs each follower (`DIFF` when the follower's last
//!   zxid is in its history, `TRUNC` when the follower logged entries it does not have,
//!   `SNAP` when the follower is behind its snapshot), proposes,
//!   commits on a quorum of acks; followers log, ack and apply commits in zxid order. A
//!   follower's sync lasts as long as the link it came on: when that link ends or is
//!   replaced, the follower looks again and the leader stops proposing to it until it has
//!   synced again (what was sent meanwhile may be lost);
//! - [`check`]: the invariants, fed as servers act.
//!
//! Clients talk to any server: reads are answered locally, writes and `sync` go through the
//! leader (see `server::replica`), sessions are transactions and only the leader expires
//! them. A server that cannot see a quorum stops serving and closes its client connections
//! (and, in read-only mode, serves read-only clients after a grace period).
//!
//! zxid = (epoch << 32) | counter. Everything is deterministic for a seed: time from
//! `tokio::time`, ordered maps, `biased` selects.
//!
//! # Fidelity to ZooKeeper 3.8
//!
//! The reference is ZooKeeper 3.8.0 with the project's fixture configuration (`scripts/zk`:
//! `tickTime=500`, `initLimit=20`, `syncLimit=10`). What a client can tell apart:
//!
//! Modelled:
//! - Zab's shape: election by `(current epoch, last zxid, id)`, a new epoch promised once,
//!   `DIFF` / `TRUNC` / `SNAP` sync, quorum commit, commits applied in zxid order,
//!   snapshots and log compaction, a crash losing what was not fsynced (as a fault);
//! - failure detection in ticks, as `Learner`, `LearnerHandler.synced` and `Leader.lead`
//!   do it ([`EnsembleConfig::sync_limit`], [`EnsembleConfig::init_limit`]): a follower cut
//!   off from its leader keeps serving (reads, pings, session touches) for `syncLimit`
//!   ticks, so its clients stay Connected while the leader, which no longer hears of their
//!   sessions, expires them after their timeout; a leader steps down at the first tick
//!   boundary at which fewer than a quorum were heard within `syncLimit` ticks;
//! - a server without a quorum stops serving and closes its clients' connections;
//! - sessions: created and closed as transactions, touched through the leader, expired by
//!   the leader alone in tick buckets; timeouts negotiated within 2 to 20 ticks;
//! - reads answered from the local (possibly stale) tree, writes and `sync` ordered by the
//!   leader, replies to one connection in request order, a `sync` answered once what the
//!   leader ordered before it is applied locally;
//! - a server refuses a client that has seen a newer zxid than it has applied;
//! - children and ephemerals listed in an unsorted order of each server's own
//!   ([`crate::server::order`]), as a Java `HashSet` lists them;
//! - malformed input as 3.8.0 answers it: an unknown request type gets UNIMPLEMENTED and
//!   the connection is closed, a create with unknown flags gets BADARGUMENTS (an error
//!   transaction) and the connection stays open;
//! - a commit answers only the request that asked for it, also after a restart;
//! - session ownership: a session that reconnects to a member is resumed once the leader
//!   says it lives (`REVALIDATE`; the handshake stalls on a follower cut off from its
//!   leader, and a session the follower has not applied yet is not refused), and that
//!   member becomes its owner; a request another member forwards for it later fails with
//!   `SESSIONMOVED`, which that member answers by closing the connection (ZOOKEEPER-710), so
//!   a write sent on a connection the client has left never applies after what it sends on
//!   its new one.
//! - read-only mode, opt-in ([`EnsembleConfig::read_only`]: `readonlymode.enabled=true` with
//!   `localSessionsEnabled=true`): a member that has been looking for a leader for
//!   `max(2 s, tickTime)` starts a read-only server (`QuorumPeer`'s `roZkMgr`), which accepts
//!   only clients that ask for read-only, each in a new *local* session of that member
//!   (`ConnectResponse.readOnly = true`), refuses other clients and the reconnection of a
//!   global session by closing the connection, answers reads from its tree, answers `sync`
//!   and every write with NOTREADONLY, expires its local sessions itself, and says `ro` to
//!   `isro`; when the member stops looking it shuts that server down, closing its clients'
//!   connections, and their local sessions, unknown to the quorum, are refused as expired
//!   when they reconnect (see `server::read_only`);
//!
//! - a closing session (the leader expired it, the close has not committed): the leader
//!   drops its requests unanswered, pings included (`touchSession` refuses it), and a
//!   follower forwards them, the leader failing writes with SESSIONEXPIRED; a `sync` or
//!   `closeSession` forwarded by a member the session has left is answered or applied, as
//!   `PrepRequestProcessor` lets them through;
//! - idle-connection expiry as `NIOServerCnxnFactory` does it: a connection with no traffic
//!   for its timeout (10 s before the handshake, the session timeout after) is closed, in
//!   10 s buckets;
//! - a stop-the-world pause of a member ([`Ensemble::freeze`], the `pause` fault on a
//!   server): it acts on nothing while frozen and on stale timers once thawed.
//!
//! Not modelled (a client can tell):
//! - TCP retransmission: turmoil drops what a partition catches and the stream stalls for
//!   good, so a link carrying a replication session that a partition stalled ends when
//!   `syncLimit` ticks pass even if the partition healed before (a real link resumes);
//!   a link with only election traffic is dropped and dialed again after six heartbeats;
//! - `FastLeaderElection`'s notifications and back-off: a looking server votes from the
//!   statuses it heard in the last six heartbeats, after [`EnsembleConfig::election_wait`];
//! - local sessions outside read-only mode (`localSessionsEnabled` on a member with a
//!   quorum); a create with unknown flags inside a `multi` closes the connection;
//! - a member that serves nobody still answers four-letter words as if it served (`isro`
//!   says `rw` where ZooKeeper says `null`, the others do not say "not currently serving");
//! - `SyncLimitCheck` (a follower that acks proposals too slowly), observers, dynamic
//!   reconfiguration, quotas, `leaderServes=no`, SASL and TLS.

pub mod check;
mod election;
mod follower;
mod leader;
pub mod log;
mod node;
pub mod peer;
pub mod snapshot;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use self::check::Checker;
use self::log::Store;
use self::peer::Role;
use crate::history::{Event, History};
use crate::scenario::{DEFAULT_INIT_LIMIT, DEFAULT_SYNC_LIMIT};
use crate::server::ServerConfig;

/// How an ensemble is set up.
#[derive(Debug, Clone)]
pub struct EnsembleConfig {
    /// Number of servers (ids 1..=servers, hosts `zk1`, `zk2`, ...).
    pub servers: u8,
    /// Seed of the servers (session ids, passwords).
    pub seed: u64,
    /// How often servers send each other status (the leader's `PING`s, the followers'
    /// replies, and the election's notifications).
    pub heartbeat: Duration,
    /// `syncLimit`, in ticks of [`ServerConfig::tick_time`]: a synced follower that has not
    /// heard its leader for `sync_limit` ticks looks for another (`Learner`'s socket
    /// timeout), and a leader counts a follower towards its quorum only while it heard it
    /// within `sync_limit` ticks, checked once per tick (`LearnerHandler.synced`,
    /// `Leader.lead`): a leader that has no such quorum steps down.
    pub sync_limit: u32,
    /// `initLimit`, in ticks: how long a follower waits for its sync and a prospective
    /// leader for a quorum to sync (`Learner.connectToLeader`, `Leader.waitForEpochAck`,
    /// `waitForNewLeaderAck`); a follower still syncing counts towards its leader's quorum
    /// for `init_limit + sync_limit` ticks (`getTickOfInitialAckDeadline`).
    pub init_limit: u32,
    /// How long a looking server listens before voting.
    pub election_wait: Duration,
    /// Fault: followers ack proposals before fsyncing them, so a crash loses the tail.
    pub ack_before_fsync: bool,
    /// Each server snapshots its committed state and drops the log it covers once this many
    /// committed entries are logged (0: never).
    pub snapshot_every: usize,
    /// `readonlymode.enabled=true` with `localSessionsEnabled=true`: a member that has been
    /// looking for a leader for [`read_only_delay`](Self::read_only_delay) serves read-only
    /// clients until it leaves the election (see the module documentation). Off by default.
    pub read_only: bool,
    /// Template of each server's client-side configuration (`server_id`, `seed` and
    /// `client_port` are set per server).
    pub server: ServerConfig,
}

impl Default for EnsembleConfig {
    fn default() -> Self {
        EnsembleConfig {
            servers: 3,
            seed: 0,
            heartbeat: Duration::from_millis(100),
            sync_limit: DEFAULT_SYNC_LIMIT,
            init_limit: DEFAULT_INIT_LIMIT,
            election_wait: Duration::from_millis(300),
            ack_before_fsync: false,
            snapshot_every: 32,
            read_only: false,
            server: ServerConfig {
                tick_time: Duration::from_millis(500),
                ..ServerConfig::default()
            },
        }
    }
}

impl EnsembleConfig {
    /// Votes needed for a quorum.
    pub fn quorum(&self) -> usize {
        usize::from(self.servers) / 2 + 1
    }

    /// The tick (`tickTime`).
    pub fn tick(&self) -> Duration {
        self.server.tick_time
    }

    /// `syncLimit × tickTime`: how long a synced follower waits for its silent leader, and
    /// how long a link carrying a synced follower's session may stay silent.
    pub fn sync_timeout(&self) -> Duration {
        self.tick().saturating_mul(self.sync_limit)
    }

    /// `initLimit × tickTime`: how long a sync may take, and a prospective leader wait.
    pub fn init_timeout(&self) -> Duration {
        self.tick().saturating_mul(self.init_limit)
    }

    /// How long a looking member waits before it starts its read-only server
    /// (`QuorumPeer`: `Math.max(2000, tickTime)` ms after it started looking).
    pub fn read_only_delay(&self) -> Duration {
        self.tick().max(Duration::from_secs(2))
    }
}

/// What a server last said about itself (for tests and the event log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerStatus {
    /// Whether its host is running.
    pub up: bool,
    /// Its role (`None` before it started).
    pub role: Option<Role>,
    /// Whether it is an established leader.
    pub established: bool,
    /// Whether it serves clients.
    pub serving: bool,
    /// Whether it serves read-only clients (it has no quorum; see
    /// [`EnsembleConfig::read_only`]). `serving` is false meanwhile.
    pub read_only: bool,
    /// Its epoch (current, or the one it leads).
    pub epoch: u32,
    /// The last zxid applied to its tree.
    pub applied: i64,
    /// Open client connections.
    pub clients: usize,
    /// Handshakes refused (since it started) because the client had seen a newer zxid.
    pub refused_behind: u64,
}

/// Everything that outlives the hosts: durable stores, statuses, the event log, the checker.
#[derive(Debug, Default)]
pub(crate) struct World {
    pub(crate) stores: BTreeMap<u8, Store>,
    pub(crate) status: BTreeMap<u8, ServerStatus>,
    pub(crate) events: Vec<String>,
    pub(crate) checker: Checker,
    /// Where session expiries and closes go (see [`Ensemble::record_expiries`]), and the
    /// sessions already recorded there.
    pub(crate) history: Option<History>,
    pub(crate) expired: BTreeSet<i64>,
    /// Each member's client-facing server in its current incarnation (what
    /// [`Ensemble::freeze`] freezes).
    pub(crate) servers: BTreeMap<u8, Arc<crate::server::Shared>>,
}

impl World {
    /// Records in the history, once, that the ensemble expired `session` (a server applied
    /// the committed close the leader submitted for it when its deadline passed).
    pub(crate) fn session_expired(&mut self, session: i64) {
        if let Some(h) = &self.history {
            if self.expired.insert(session) {
                h.record(Event::SessionExpired { session });
            }
        }
    }

    /// Records in the history, once, that a client's closeSession of `session` applied.
    pub(crate) fn session_closed(&mut self, session: i64) {
        if let Some(h) = &self.history {
            if self.expired.insert(session) {
                h.record(Event::SessionClosed { session });
            }
        }
    }
}

impl World {
    pub(crate) fn event(&mut self, id: u8, what: String) {
        let at = turmoil::sim_elapsed().unwrap_or_default();
        self.event_at(at, id, what);
    }

    /// An event at `at` (from outside the simulation, where `sim_elapsed` is unknown).
    pub(crate) fn event_at(&mut self, at: Duration, id: u8, what: String) {
        tracing::info!(server = id, "{what}");
        let at = at.as_millis();
        self.events.push(format!("{at:>7} ms zk{id}: {what}"));
    }
}

pub(crate) type SharedWorld = Arc<Mutex<World>>;

pub(crate) fn lock(world: &SharedWorld) -> MutexGuard<'_, World> {
    world.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An ensemble of simulated servers: registers its hosts in a turmoil `Sim` and gives tests
/// the faults that need its durable state, the statuses, the event log and the checks.
#[derive(Debug, Clone)]
pub struct Ensemble {
    config: EnsembleConfig,
    world: SharedWorld,
}

impl Ensemble {
    /// An ensemble with `config` (nothing runs until [`register`](Self::register)).
    pub fn new(config: EnsembleConfig) -> Ensemble {
        Ensemble {
            config,
            world: Arc::new(Mutex::new(World::default())),
        }
    }

    /// The host name of server `id`.
    pub fn host(id: u8) -> String {
        format!("zk{id}")
    }

    /// The configuration.
    pub fn config(&self) -> &EnsembleConfig {
        &self.config
    }

    /// The client connect string: every server's client port.
    pub fn connect_string(&self) -> String {
        (1..=self.config.servers)
            .map(|id| format!("{}:{}", Ensemble::host(id), self.config.server.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Registers one turmoil host per server. A host restarted by `bounce` starts again from
    /// its durable store.
    pub fn register(&self, sim: &mut turmoil::Sim<'_>) {
        for id in 1..=self.config.servers {
            let config = self.config.clone();
            let world = self.world.clone();
            sim.host(Ensemble::host(id), move || {
                let config = config.clone();
                let world = world.clone();
                async move { node::run(id, config, world).await }
            });
        }
    }

    /// Crashes server `id`: its host stops, and with
    /// [`ack_before_fsync`](EnsembleConfig::ack_before_fsync) its log loses what was not
    /// fsynced.
    pub fn crash(&self, sim: &mut turmoil::Sim<'_>, id: u8) {
        sim.crash(Ensemble::host(id));
        let mut w = lock(&self.world);
        if let Some(store) = w.stores.get_mut(&id) {
            store.crash();
        }
        if let Some(s) = w.status.get_mut(&id) {
            *s = ServerStatus::default();
        }
        w.servers.remove(&id);
        w.event_at(sim.elapsed(), id, "crashed".to_owned());
    }

    /// Freezes server `id`, or thaws it: a stop-the-world pause of its process (a JVM's
    /// garbage collection). While frozen it acts on nothing: no request, no replication, no
    /// heartbeat, no session expiry; what its peers and clients send waits for it (the
    /// caller holds its links, as the kernel would buffer it). Once thawed it acts on what
    /// it finds, timers long due included: a leader expires every session it has not heard
    /// from, as ZooKeeper's `SessionTrackerImpl` does when it wakes up late. Nothing happens
    /// to a server that is down.
    pub fn freeze(&self, sim: &turmoil::Sim<'_>, id: u8, frozen: bool) {
        let mut w = lock(&self.world);
        let Some(server) = w.servers.get(&id).cloned() else {
            return;
        };
        server.set_frozen(frozen);
        let what = if frozen { "frozen" } else { "thawed" };
        w.event_at(sim.elapsed(), id, what.to_owned());
    }

    /// Restarts server `id` (after a crash, or in place).
    pub fn bounce(&self, sim: &mut turmoil::Sim<'_>, id: u8) {
        sim.bounce(Ensemble::host(id));
    }

    /// Records every session the ensemble expires ([`Event::SessionExpired`]) or a client
    /// closes ([`Event::SessionClosed`]) into `history`, for the checkers that hold clients'
    /// beliefs against it.
    pub fn record_expiries(&self, history: History) {
        lock(&self.world).history = Some(history);
    }

    /// Every server's last status.
    pub fn status(&self) -> BTreeMap<u8, ServerStatus> {
        lock(&self.world).status.clone()
    }

    /// The established leader that serves, if exactly one does.
    pub fn leader(&self) -> Option<u8> {
        let w = lock(&self.world);
        let mut leaders = w
            .status
            .iter()
            .filter(|(_, s)| s.up && s.established && s.serving)
            .map(|(id, _)| *id);
        match (leaders.next(), leaders.next()) {
            (Some(id), None) => Some(id),
            _ => None,
        }
    }

    /// Whether every running server serves, under one leader, with the same applied zxid.
    pub fn converged(&self) -> bool {
        let w = lock(&self.world);
        let up: Vec<&ServerStatus> = w.status.values().filter(|s| s.up).collect();
        up.len() == usize::from(self.config.servers)
            && up.iter().all(|s| s.serving)
            && up.iter().filter(|s| s.established).count() == 1
            && up.windows(2).all(|p| p[0].applied == p[1].applied)
    }

    /// The event log (role changes, epochs, crashes), in simulated time.
    pub fn events(&self) -> Vec<String> {
        lock(&self.world).events.clone()
    }

    /// A copy of server `id`'s durable store.
    pub fn store(&self, id: u8) -> Option<Store> {
        lock(&self.world).stores.get(&id).cloned()
    }

    /// Number of transactions committed so far.
    pub fn commit_count(&self) -> usize {
        lock(&self.world).checker.commit_count()
    }

    /// Runs the invariant checks over the durable logs and returns every violation seen so
    /// far (empty: all invariants hold).
    pub fn check(&self) -> Vec<String> {
        let mut w = lock(&self.world);
        let World {
            stores, checker, ..
        } = &mut *w;
        checker.stores(stores);
        checker.violations().to_vec()
    }
}
