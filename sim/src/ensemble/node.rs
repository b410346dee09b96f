//! One server's replication task: its links to the other servers, its role (looking,
//! following, leading), and the glue to the client-facing server core: committed entries are
//! applied to the core in zxid order, submissions from the core go to the leader.
//!
//! Everything runs in one task per server: events from links, submissions from the core and
//! a heartbeat tick, in a `biased` select.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::{mpsc, Notify};
use tokio::time::{Duration, Instant, MissedTickBehavior};

use super::check::tree_digest;
use super::log::{Entry, Store};
use super::peer::{run_link, LinkEvent, LinkIds, Msg, Role, PEER_PORT};
use super::{lock, Ensemble, EnsembleConfig, ServerStatus, SharedWorld};
use crate::server::replica::Replica;
use crate::server::tree::DataTree;
use crate::server::txn::Txn;
use crate::server::{Server, Shared, Submission};

/// A live link to a peer.
#[derive(Debug)]
pub(super) struct Link {
    id: u64,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    kill: Arc<Notify>,
    heard: Instant,
}

/// What a peer last said about itself.
#[derive(Debug, Clone, Copy)]
pub(super) struct PeerStatus {
    pub(super) role: Role,
    pub(super) established: bool,
    pub(super) accepted_epoch: u32,
    pub(super) current_epoch: u32,
    pub(super) last_zxid: i64,
    pub(super) at: Instant,
}

/// A follower's state.
#[derive(Debug)]
pub(super) struct FollowerState {
    pub(super) leader: u8,
    /// The link the leader's invitation came on: the session ends with it.
    pub(super) link: u64,
    pub(super) epoch: u32,
    pub(super) synced: bool,
    pub(super) since: Instant,
}

/// A leader's state (prospective until established).
#[derive(Debug)]
pub(super) struct LeaderState {
    pub(super) epoch: u32,
    pub(super) established: bool,
    pub(super) since: Instant,
    /// Followers sent a sync: they receive proposals and commits.
    pub(super) synced: BTreeSet<u8>,
    /// The leader's last zxid when each follower's sync was sent.
    pub(super) sync_point: BTreeMap<u8, i64>,
    /// The link each follower was synced over: its session ends with it.
    pub(super) links: BTreeMap<u8, u64>,
    /// Followers that logged their sync.
    pub(super) acked_sync: BTreeSet<u8>,
    /// When each follower promised the epoch (a `Looking` status older than that is stale).
    pub(super) joined: BTreeMap<u8, Instant>,
    /// Highest zxid each follower logged.
    pub(super) acks: BTreeMap<u8, i64>,
    /// The counter of the last zxid proposed in this epoch.
    pub(super) counter: u32,
    /// The tree as every proposal so far leaves it (writes are validated against it).
    pub(super) prep: DataTree,
    /// Syncs waiting for a commit point: (zxid to reach, origin).
    pub(super) pending_syncs: Vec<(i64, crate::server::Origin)>,
    /// The member each session's client is connected to, as this leader last learnt it
    /// (ZooKeeper's session owner, set by REVALIDATE): a request of the session that another
    /// member forwards is refused (SESSIONMOVED), so a write sent on a connection the client
    /// has left is never applied after what it sends on its new one.
    pub(super) owners: BTreeMap<i64, u8>,
}

/// The role.
#[derive(Debug)]
pub(super) enum State {
    Looking { since: Instant },
    Following(FollowerState),
    Leading(Box<LeaderState>),
}

/// One server.
pub(super) struct Node {
    pub(super) id: u8,
    pub(super) config: EnsembleConfig,
    pub(super) world: SharedWorld,
    pub(super) shared: Arc<Shared>,
    links: BTreeMap<u8, Link>,
    dialing: BTreeMap<u8, u64>,
    pub(super) statuses: BTreeMap<u8, PeerStatus>,
    pub(super) state: State,
    events_tx: mpsc::UnboundedSender<LinkEvent>,
    link_ids: Arc<LinkIds>,
    pub(super) applied: i64,
    pub(super) serving: bool,
    /// When the read-only server starts if the member is still looking (`None`: it does
    /// not, or it runs already); only with [`EnsembleConfig::read_only`].
    read_only_at: Option<Instant>,
    /// Whether the read-only server runs.
    read_only: bool,
}

/// What woke a member's loop.
enum Wake {
    /// Its read-only server is due.
    ReadOnly,
    /// A peer link event.
    Link(LinkEvent),
    /// Its client-facing server submitted a request.
    Submission(Submission),
    /// Its heartbeat.
    Tick,
}

/// Waits until `at` (for ever if `None`).
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Runs server `id` until its host stops: the client-facing server plus replication.
pub(super) async fn run(
    id: u8,
    config: EnsembleConfig,
    world: SharedWorld,
) -> Result<(), Box<dyn std::error::Error>> {
    let (incarnation, tree, committed) = {
        let mut w = lock(&world);
        let store = w.stores.entry(id).or_default();
        store.incarnation += 1;
        let inc = store.incarnation;
        let committed = store.committed;
        let base = store.base();
        let tree = store.replay(committed);
        w.event(
            id,
            format!("started (incarnation {inc}, snapshot 0x{base:x}, committed 0x{committed:x})"),
        );
        (inc, tree, committed)
    };
    let (sub_tx, sub_rx) = mpsc::unbounded_channel();
    let replica = Replica::new(id, incarnation, config.seed, sub_tx);
    let mut server_config = config.server.clone();
    server_config.server_id = id;
    server_config.seed = config.seed ^ u64::from(id);
    let port = server_config.client_port;
    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", port)).await?;
    let handle = Server::start_member(server_config, listener, replica);
    let shared = handle.shared();
    lock(&world).servers.insert(id, shared.clone());
    {
        let now = shared.now_ms();
        shared.lock().reset_tree(tree, now);
    }
    let peers = turmoil::net::TcpListener::bind(("0.0.0.0", PEER_PORT)).await?;
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let link_ids = Arc::new(LinkIds::default());
    let accept_tx = events_tx.clone();
    let accept_ids = link_ids.clone();
    // Every task of the ensemble is spawned on the host's `LocalSet` (turmoil runs hosts in
    // one), never with `tokio::spawn`: when a host crashes its tasks are dropped, each drop
    // closing a socket and drawing that segment's latency from the simulation's RNG, and a
    // `LocalSet` drops its tasks in spawn order, whereas the runtime's task list is sharded
    // by task ids that count across every simulation of the process, so the order (and every
    // latency after it) would depend on what ran before.
    tokio::task::spawn_local(async move {
        while let Ok((stream, _)) = peers.accept().await {
            let link = accept_ids.next();
            tokio::task::spawn_local(run_link(stream, id, None, link, accept_tx.clone()));
        }
    });
    let mut node = Node {
        id,
        config,
        world,
        shared,
        links: BTreeMap::new(),
        dialing: BTreeMap::new(),
        statuses: BTreeMap::new(),
        state: State::Looking {
            since: Instant::now(),
        },
        events_tx,
        link_ids,
        applied: committed,
        serving: false,
        read_only_at: None,
        read_only: false,
    };
    node.schedule_read_only();
    node.publish();
    node.run(events_rx, sub_rx).await;
    drop(handle);
    Ok(())
}

impl Node {
    async fn run(
        &mut self,
        mut events: mpsc::UnboundedReceiver<LinkEvent>,
        mut submissions: mpsc::UnboundedReceiver<Submission>,
    ) {
        let mut tick = tokio::time::interval(self.config.heartbeat);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let read_only_at = self.read_only_at;
            let wake = tokio::select! {
                biased;
                () = until(read_only_at), if read_only_at.is_some() => Wake::ReadOnly,
                ev = events.recv() => match ev {
                    Some(ev) => Wake::Link(ev),
                    None => return,
                },
                sub = submissions.recv() => match sub {
                    Some(sub) => Wake::Submission(sub),
                    None => return,
                },
                _ = tick.tick() => Wake::Tick,
            };
            // A frozen member (a stop-the-world pause) acts on nothing; once thawed it acts
            // on what woke it, a heartbeat long due included.
            let frozen_at = Instant::now();
            self.shared.thawed().await;
            let frozen_for = frozen_at.elapsed();
            if !frozen_for.is_zero() {
                self.thawed_after(frozen_for);
            }
            match wake {
                Wake::ReadOnly => self.start_read_only(),
                Wake::Link(ev) => self.on_link(ev),
                Wake::Submission(sub) => self.on_submission(sub),
                Wake::Tick => self.on_tick(),
            }
        }
    }

    /// After a freeze of `frozen_for`: ZooKeeper counts a quorum peer's deadlines in ticks
    /// of its own loop (`Leader.lead`'s `tick`, `LearnerHandler.synced`), and a frozen JVM
    /// counts none, while what its peers sent meanwhile sits unread in its sockets. So the
    /// frozen time does not count against anyone: every stamp of when a peer was last heard
    /// (and since when a role or a join runs) moves forward by it. A resumed leader leads
    /// on until it reads that its followers have gone, and meanwhile its session tracker,
    /// which runs on elapsed time, expires every session it has not heard from.
    fn thawed_after(&mut self, frozen_for: Duration) {
        let now = Instant::now();
        let shift = |at: &mut Instant| *at = (*at + frozen_for).min(now);
        for l in self.links.values_mut() {
            shift(&mut l.heard);
        }
        for s in self.statuses.values_mut() {
            shift(&mut s.at);
        }
        match &mut self.state {
            State::Looking { since } => shift(since),
            State::Following(f) => shift(&mut f.since),
            State::Leading(l) => {
                shift(&mut l.since);
                for at in l.joined.values_mut() {
                    shift(at);
                }
            }
        }
        self.event(format!(
            "resumed after {} ms frozen",
            frozen_for.as_millis()
        ));
    }

    /// The durable store (locked with the world).
    pub(super) fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let mut w = lock(&self.world);
        f(w.stores.entry(self.id).or_default())
    }

    /// Records an event.
    pub(super) fn event(&self, what: String) {
        lock(&self.world).event(self.id, what);
    }

    pub(super) fn now_ms(&self) -> u64 {
        self.shared.now_ms()
    }

    /// Sends to a peer (dropped if there is no link: the protocol recovers by timeouts).
    pub(super) fn send(&self, peer: u8, msg: &Msg) {
        if let Some(link) = self.links.get(&peer) {
            let _ = link.tx.send(msg.to_frame());
        }
    }

    /// Sends to every linked peer.
    pub(super) fn broadcast(&self, msg: &Msg) {
        let frame = msg.to_frame();
        for link in self.links.values() {
            let _ = link.tx.send(frame.clone());
        }
    }

    /// When `peer` was last heard on the current link (`None`: there is no link).
    pub(super) fn heard_at(&self, peer: u8) -> Option<Instant> {
        self.links.get(&peer).map(|l| l.heard)
    }

    /// Whether `peer` was heard on the current link within `within`.
    pub(super) fn heard_within(&self, peer: u8, within: Duration) -> bool {
        self.heard_at(peer).is_some_and(|at| at.elapsed() <= within)
    }

    /// How long a peer's status counts for the election (six heartbeats). This is not
    /// ZooKeeper's failure detection (that is [`link_timeout`](Self::link_timeout)): it
    /// only keeps a looking server from voting with servers it no longer hears.
    fn status_timeout(&self) -> Duration {
        self.config.heartbeat.saturating_mul(6)
    }

    /// How long the link to `peer` may stay silent before it is dropped. A link carrying
    /// a replication session lives as long as ZooKeeper's socket would: `initLimit` ticks
    /// while the follower syncs, `syncLimit` ticks once it has (`Learner`, `LearnerHandler`
    /// set those socket timeouts). Any other link carries only election traffic and is
    /// dropped and dialed again after the status timeout: turmoil's TCP never retransmits,
    /// so a stream stalled by a partition stays stalled, where a real one would resume.
    fn link_timeout(&self, peer: u8) -> Duration {
        match &self.state {
            State::Following(f) if f.leader == peer && f.synced => self.config.sync_timeout(),
            State::Following(f) if f.leader == peer => self.config.init_timeout(),
            State::Leading(l) if l.acked_sync.contains(&peer) => self.config.sync_timeout(),
            State::Leading(l) if l.synced.contains(&peer) => self.config.init_timeout(),
            _ => self.status_timeout(),
        }
    }

    /// Peer statuses heard within the status timeout, on a live link.
    pub(super) fn fresh_statuses(&self) -> Vec<(u8, PeerStatus)> {
        let fresh = self.status_timeout();
        self.statuses
            .iter()
            .filter(|(id, s)| s.at.elapsed() <= fresh && self.heard_within(**id, fresh))
            .map(|(id, s)| (*id, *s))
            .collect()
    }

    fn on_link(&mut self, ev: LinkEvent) {
        match ev {
            LinkEvent::Up {
                peer,
                link,
                tx,
                kill,
            } => {
                if self.dialing.get(&peer) == Some(&link) {
                    self.dialing.remove(&peer);
                }
                if let Some(old) = self.links.insert(
                    peer,
                    Link {
                        id: link,
                        tx,
                        kill,
                        heard: Instant::now(),
                    },
                ) {
                    old.kill.notify_one();
                }
            }
            LinkEvent::Down { peer, link } => {
                if self.dialing.get(&peer) == Some(&link) {
                    self.dialing.remove(&peer);
                }
                if self.links.get(&peer).is_some_and(|l| l.id == link) {
                    self.links.remove(&peer);
                }
            }
            LinkEvent::Msg { peer, link, msg } => {
                match self.links.get_mut(&peer) {
                    Some(l) if l.id == link => l.heard = Instant::now(),
                    _ => return,
                }
                self.check_session_link(peer, Some(link));
                self.on_msg(peer, msg);
            }
        }
    }

    /// The id of the current link to `peer`.
    pub(super) fn link_id(&self, peer: u8) -> Option<u64> {
        self.links.get(&peer).map(|l| l.id)
    }

    /// Ends the replication session with `peer` if it does not live on `current`, the link
    /// to `peer` now (`None`: there is none).
    ///
    /// A session lives on one link, as a ZooKeeper learner's lives on one socket: frames
    /// queued on an old link may never arrive (a stalled stream delivers nothing more) and
    /// [`send`](Self::send) drops frames while there is no link, so the first proposal to
    /// arrive on a new link may not follow the last one logged. A follower whose leader's
    /// link changed looks again; a leader stops proposing to, and counting, a follower whose
    /// link changed, until it has synced again (it is re-invited once heard looking).
    ///
    /// Checked for every session on each tick (a link that went down is noticed there, as a
    /// silent one is), and for the sender's session when a message arrives, before the
    /// message is handled (a replaced link is noticed before its first message counts).
    fn check_session_link(&mut self, peer: u8, current: Option<u64>) {
        let session = match &self.state {
            State::Following(f) if f.leader == peer => Some(f.link),
            State::Leading(l) if l.synced.contains(&peer) => {
                Some(l.links.get(&peer).copied().unwrap_or(0))
            }
            _ => None,
        };
        if session.is_none() || session == current {
            return;
        }
        match self.state {
            State::Following(_) => self.look("link to the leader lost"),
            _ => self.follower_link_lost(peer),
        }
    }

    fn on_msg(&mut self, peer: u8, msg: Msg) {
        match msg {
            Msg::Hello { .. } => {}
            Msg::Status {
                role,
                established,
                accepted_epoch,
                current_epoch,
                last_zxid,
            } => {
                self.statuses.insert(
                    peer,
                    PeerStatus {
                        role,
                        established,
                        accepted_epoch,
                        current_epoch,
                        last_zxid,
                        at: Instant::now(),
                    },
                );
            }
            Msg::NewEpoch { epoch, established } => self.on_new_epoch(peer, epoch, established),
            Msg::AckEpoch {
                epoch,
                current_epoch,
                last_zxid,
                snapshot_zxid,
            } => self.on_ack_epoch(peer, epoch, current_epoch, last_zxid, snapshot_zxid),
            Msg::Sync {
                epoch,
                kind,
                entries,
                commit,
            } => self.on_sync(peer, epoch, kind, entries, commit),
            Msg::AckSync { epoch } => self.on_ack_sync(peer, epoch),
            Msg::Propose { epoch, entry } => self.on_propose(peer, epoch, entry),
            Msg::Ack { epoch, zxid } => self.on_ack(peer, epoch, zxid),
            Msg::Commit { epoch, zxid } => self.on_commit(peer, epoch, zxid),
            Msg::Forward(sub) => self.on_forward(peer, sub),
            Msg::SyncDone { conn, xid } => self.on_sync_done(peer, conn, xid),
            Msg::Revalidated {
                conn,
                session_id,
                valid,
            } => self.on_revalidated(peer, conn, session_id, valid),
            Msg::Touch(ids) => self.on_touch(peer, &ids),
        }
    }

    fn on_submission(&mut self, sub: Submission) {
        match &self.state {
            State::Leading(l) if l.established => self.lead_submission(sub),
            State::Following(f) if f.synced && self.serving => {
                let leader = f.leader;
                self.send(leader, &Msg::Forward(sub));
            }
            // Not serving: the client's connection has been (or is being) closed.
            _ => {}
        }
    }

    fn on_tick(&mut self) {
        self.maintain_links();
        for peer in 1..=self.config.servers {
            self.check_session_link(peer, self.link_id(peer));
        }
        let (accepted_epoch, current_epoch, last_zxid) =
            self.with_store(|s| (s.accepted_epoch, s.current_epoch, s.last_zxid()));
        let (role, established) = match &self.state {
            State::Looking { .. } => (Role::Looking, false),
            State::Following(_) => (Role::Following, false),
            State::Leading(l) => (Role::Leading, l.established),
        };
        self.broadcast(&Msg::Status {
            role,
            established,
            accepted_epoch,
            current_epoch,
            last_zxid,
        });
        match self.state {
            State::Looking { .. } => self.election_tick(),
            State::Following(_) => self.follower_tick(),
            State::Leading(_) => self.leader_tick(),
        }
        self.publish();
    }

    /// Drops silent links and dials the higher-id peers we have no link to.
    fn maintain_links(&mut self) {
        let silent: Vec<u8> = self
            .links
            .iter()
            .filter(|(id, l)| l.heard.elapsed() > self.link_timeout(**id))
            .map(|(id, _)| *id)
            .collect();
        // A dial that gets no answer is given up after the status timeout and tried again
        // (turmoil drops a SYN sent into a partition, where TCP would send it again).
        let timeout = self.status_timeout();
        for peer in silent {
            if let Some(l) = self.links.remove(&peer) {
                l.kill.notify_one();
            }
        }
        for peer in self.id.saturating_add(1)..=self.config.servers {
            if peer == self.id || self.links.contains_key(&peer) || self.dialing.contains_key(&peer)
            {
                continue;
            }
            let link = self.link_ids.next();
            self.dialing.insert(peer, link);
            let events = self.events_tx.clone();
            let me = self.id;
            tokio::task::spawn_local(async move {
                let addr = (Ensemble::host(peer), PEER_PORT);
                match tokio::time::timeout(timeout, turmoil::net::TcpStream::connect(addr)).await {
                    Ok(Ok(stream)) => run_link(stream, me, Some(peer), link, events).await,
                    _ => {
                        // Try again on a later tick, not at once.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        let _ = events.send(LinkEvent::Down { peer, link });
                    }
                }
            });
        }
    }

    /// Applies committed entries up to `zxid` to the core, in order, records digests, and
    /// compacts the log when it has grown enough.
    pub(super) fn apply_to(&mut self, zxid: i64) {
        let applied = self.applied;
        let entries: Vec<Entry> = self.with_store(|s| {
            let upto = zxid.min(s.last_zxid());
            s.committed = s.committed.max(upto);
            s.log
                .iter()
                .filter(|e| e.zxid() > applied && e.zxid() <= upto)
                .cloned()
                .collect()
        });
        if entries.is_empty() {
            return;
        }
        let now = self.now_ms();
        let mut digests = Vec::with_capacity(entries.len());
        {
            let mut core = self.shared.lock();
            for e in &entries {
                core.apply_committed(&e.header, &e.txn, e.origin, now);
                digests.push((e.zxid(), tree_digest(&core.tree)));
            }
        }
        if let Some((last, _)) = digests.last() {
            self.applied = *last;
        }
        let every = self.config.snapshot_every;
        let snapshot = {
            let mut w = lock(&self.world);
            for e in &entries {
                // The leader's own close of a session past its deadline (connection 0):
                // an expiry, not a client's closeSession.
                if let Txn::CloseSession { session_id } = e.txn {
                    if e.origin.is_some_and(|o| o.conn == 0) {
                        w.session_expired(session_id);
                    } else {
                        w.session_closed(session_id);
                    }
                }
            }
            for (z, d) in digests {
                w.checker.applied(self.id, z, d);
            }
            w.stores.get_mut(&self.id).and_then(|s| s.compact(every))
        };
        if let Some(z) = snapshot {
            self.event(format!("snapshot at 0x{z:x}, log compacted"));
        }
    }

    /// Replaces the core's tree (a snapshot that does not extend what was applied).
    pub(super) fn reset_tree(&mut self, tree: DataTree) {
        let now = self.now_ms();
        self.applied = tree.last_zxid();
        self.shared.lock().reset_tree(tree, now);
    }

    /// Changes role, telling the core whether to serve and lead.
    pub(super) fn become_state(&mut self, state: State, why: &str) {
        let desc = match &state {
            State::Looking { .. } => "looking".to_owned(),
            State::Following(f) => format!("following zk{} in epoch {}", f.leader, f.epoch),
            State::Leading(l) => format!(
                "{} leader of epoch {}",
                if l.established {
                    "established"
                } else {
                    "prospective"
                },
                l.epoch
            ),
        };
        self.event(format!("{desc} ({why})"));
        self.state = state;
        let (serving, leading) = match &self.state {
            State::Leading(l) if l.established => (true, true),
            _ => (false, false),
        };
        self.set_serving(serving, leading);
        self.schedule_read_only();
    }

    /// With [`EnsembleConfig::read_only`]: a member that starts looking starts its
    /// read-only server once it has looked for [`EnsembleConfig::read_only_delay`]
    /// (`QuorumPeer`'s `roZkMgr`); a member that stops looking shuts it down, closing its
    /// clients' connections (`ReadOnlyZooKeeperServer.shutdown`).
    fn schedule_read_only(&mut self) {
        if !self.config.read_only {
            return;
        }
        if let State::Looking { since } = self.state {
            if !self.read_only && self.read_only_at.is_none() {
                self.read_only_at = Some(since + self.config.read_only_delay());
            }
            return;
        }
        self.read_only_at = None;
        if self.read_only {
            self.read_only = false;
            self.shared.lock().set_read_only(false);
            self.event("read-only server shut down: clients dropped".to_owned());
            self.publish();
        }
    }

    /// The grace period passed: a member still looking serves read-only clients.
    fn start_read_only(&mut self) {
        self.read_only_at = None;
        if !matches!(self.state, State::Looking { .. }) || self.read_only {
            return;
        }
        self.read_only = true;
        self.shared.lock().set_read_only(true);
        self.event("read-only server started (no quorum)".to_owned());
        self.publish();
    }

    /// Starts or stops serving clients.
    pub(super) fn set_serving(&mut self, serving: bool, leading: bool) {
        if self.serving != serving {
            self.event(
                if serving {
                    "serving clients"
                } else {
                    "not serving: clients dropped"
                }
                .to_owned(),
            );
        }
        self.serving = serving;
        let now = self.now_ms();
        self.shared.lock().set_role(serving, leading, now);
        self.publish();
    }

    pub(super) fn look(&mut self, why: &str) {
        self.become_state(
            State::Looking {
                since: Instant::now(),
            },
            why,
        );
    }

    fn publish(&self) {
        let (role, established, epoch) = match &self.state {
            State::Looking { .. } => (Role::Looking, false, 0),
            State::Following(f) => (Role::Following, false, f.epoch),
            State::Leading(l) => (Role::Leading, l.established, l.epoch),
        };
        let (clients, refused_behind) = {
            let core = self.shared.lock();
            let refused = core.replica.as_ref().map_or(0, |r| r.refused_behind);
            (core.connections.len(), refused)
        };
        let status = ServerStatus {
            clients,
            refused_behind,
            up: true,
            role: Some(role),
            established,
            serving: self.serving,
            read_only: self.read_only,
            epoch,
            applied: self.applied,
        };
        let mut w = lock(&self.world);
        let before = w.status.get(&self.id).map_or(0, |s| s.refused_behind);
        if refused_behind > before {
            let at = self.applied;
            w.event(
                self.id,
                format!("refused a client that has seen a newer zxid (applied 0x{at:x})"),
            );
        }
        w.status.insert(self.id, status);
    }
}
