//! One global event log keyed by simulated time: what clients believed (acquire, release,
//! loss), what the fenced resource did, which faults fired, client connection states. The
//! checkers read it; [`History::render`] turns it into a deterministic text trace.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::register::{RegisterOp, RegisterResult};
use crate::resource::FencedResource;

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Client (1-based) host started (again): a new process, believing nothing.
    Started {
        /// The client.
        client: usize,
        /// How many times its host started before.
        incarnation: u32,
    },
    /// The client's lock acquire returned: it believes it holds the lock.
    Acquired {
        /// The client.
        client: usize,
        /// The guard's fencing token.
        token: i64,
    },
    /// The client chose to release: it no longer believes it holds the lock.
    Released {
        /// The client.
        client: usize,
    },
    /// The guard's `lost()` fired: the client no longer believes it holds the lock.
    Lost {
        /// The client.
        client: usize,
    },
    /// A write to the fenced resource and its verdict.
    Write {
        /// The client.
        client: usize,
        /// The token it carried.
        token: i64,
        /// Whether the resource accepted it.
        accepted: bool,
    },
    /// The client's connection state changed.
    State {
        /// The client.
        client: usize,
        /// The new state.
        state: String,
    },
    /// A fault fired (already resolved to hosts).
    Fault {
        /// What it did.
        what: String,
    },
    /// The client's host crashed: it believes nothing any more.
    Crashed {
        /// The client.
        client: usize,
    },
    /// The harness expired the client's session on the ensemble (an `expire` fault): the
    /// client cannot know until its connection drops, so a short overlap of beliefs after
    /// this is expected, and fencing must cover it.
    Killed {
        /// The client.
        client: usize,
    },
    /// The client's application froze (a GC pause): it keeps its beliefs and checks nothing.
    Paused {
        /// The client.
        client: usize,
    },
    /// The client's application runs again after a pause.
    Resumed {
        /// The client.
        client: usize,
    },
    /// A `cancel` fault's timeout fired on one of the client's recipe calls: its future was
    /// dropped unfinished (an acquire, or a release, leave or close the recipe must now
    /// finish on its own).
    Cancelled {
        /// The client.
        client: usize,
        /// The call (`acquire`, `release`, `enter`, `leave`, `close`).
        call: &'static str,
        /// The timeout that fired.
        after: Duration,
    },
    /// Every fault has been undone: the network is whole and every crashed host is back.
    Healed,
    /// A read-write lock contender's read acquire returned: it believes it shares the lock
    /// with other readers only (ended by [`Event::Released`], [`Event::Lost`] or a crash).
    ReadAcquired {
        /// The client.
        client: usize,
        /// The guard's fencing token.
        token: i64,
    },
    /// A read-write lock contender's write acquire returned: it believes it holds the lock
    /// alone (ended like [`Event::ReadAcquired`]).
    WriteAcquired {
        /// The client.
        client: usize,
        /// The guard's fencing token.
        token: i64,
    },
    /// A semaphore acquire returned: the client believes it holds one lease (ended like
    /// [`Event::ReadAcquired`]).
    LeaseAcquired {
        /// The client.
        client: usize,
        /// The lease's token (its node's creation zxid).
        token: i64,
    },
    /// The client believes it leads its election (latch elected, or selector callback
    /// running).
    Leader {
        /// The client.
        client: usize,
        /// The leadership's epoch (latch) or fencing token (selector).
        epoch: i64,
    },
    /// The leader chose to stop leading: it no longer believes it leads.
    SteppedDown {
        /// The client.
        client: usize,
    },
    /// The recipe said leadership is gone (suspended, lost, node deleted): the client no
    /// longer believes it leads.
    LeaderLost {
        /// The client.
        client: usize,
    },
    /// A party member's join returned.
    Joined {
        /// The client.
        client: usize,
    },
    /// A party member's leave returned (or it gave up its membership after an error).
    PartyLeft {
        /// The client.
        client: usize,
    },
    /// A party member read the membership: how many members it saw.
    Members {
        /// The client.
        client: usize,
        /// The number of members listed.
        count: usize,
    },
    /// A double-barrier participant called enter.
    BarrierEntering {
        /// The client.
        client: usize,
    },
    /// A double-barrier participant's enter returned: it believes the barrier is full.
    BarrierEntered {
        /// The client.
        client: usize,
    },
    /// A double-barrier participant's leave returned: it believes everyone has left.
    BarrierLeft {
        /// The client.
        client: usize,
    },
    /// A double-barrier participant's enter or leave failed: it starts over.
    BarrierFailed {
        /// The client.
        client: usize,
        /// The error.
        error: String,
    },
    /// A configuration write was acknowledged.
    ConfigWritten {
        /// The client.
        client: usize,
        /// The value written.
        value: String,
        /// The node's modification zxid after the write.
        mzxid: i64,
        /// The node's data version after the write.
        version: i32,
    },
    /// A configuration write failed without a verdict (it may or may not have applied).
    ConfigUncertain {
        /// The client.
        client: usize,
        /// The value it tried to write.
        value: String,
    },
    /// A configuration watcher saw a (new) value.
    ConfigSeen {
        /// The client.
        client: usize,
        /// The value (`None`: the node does not exist).
        value: Option<String>,
        /// The node's modification zxid when read (0 when it does not exist).
        mzxid: i64,
        /// The node's data version when read (-1 when it does not exist).
        version: i32,
    },
    /// A writer's sequential create was acknowledged.
    Created {
        /// The client.
        client: usize,
        /// The node's name (`w{client}-{incarnation}-{n}-` plus the sequence).
        name: String,
    },
    /// A writer's create failed without a verdict (the node may or may not exist).
    CreateUncertain {
        /// The client.
        client: usize,
        /// The name it asked for (without the sequence).
        name: String,
    },
    /// A writer synced and listed the writers' directory; `names` are the children (every
    /// name without its sequence suffix), sorted.
    Listed {
        /// The client.
        client: usize,
        /// When it sent the sync that preceded the listing.
        asked_at: Duration,
        /// The children's names without their sequence suffix, sorted.
        names: Vec<String>,
    },
    /// Anything else worth a line (errors a workload retried, skipped faults).
    Note {
        /// Who (`c3`, `runner`).
        who: String,
        /// What.
        what: String,
    },
    /// The client's session changed: connected for the first time, or renewed after
    /// expiry. Every later record of the client until the next one is in this session.
    Session {
        /// The client.
        client: usize,
        /// The session id.
        session: i64,
    },
    /// The ensemble expired a session (the leader's close of a session whose deadline
    /// passed was committed and applied: its ephemeral nodes are gone). Not recorded for a
    /// session the client closed, nor for the harness's takeover-and-close.
    SessionExpired {
        /// The session id.
        session: i64,
    },
    /// A client's closeSession of `session` (its own close, a renewing client closing the
    /// session its timer gave up, or the harness's takeover-and-close) was committed and
    /// applied: its ephemeral nodes are gone.
    SessionClosed {
        /// The session id.
        session: i64,
    },
    /// The session the recipe says the belief the client just recorded (an acquisition,
    /// a lease) was made in: the session owning its node (`LockGuard::session_id`).
    HeldIn {
        /// The client.
        client: usize,
        /// The session owning the node.
        session: i64,
    },
    /// A double-barrier participant calls leave (its node goes; its leave returns, with
    /// [`Event::BarrierLeft`], once everyone's has).
    BarrierLeaving {
        /// The client.
        client: usize,
    },
    /// A counter adder called `add(1)` (its outcome follows: [`Event::CounterAdded`] or
    /// [`Event::CounterUncertain`]; none if its host crashed or the run ended first).
    CounterAdding {
        /// The client.
        client: usize,
    },
    /// A counter add was acknowledged: the value it returned.
    CounterAdded {
        /// The client.
        client: usize,
        /// The counter's value after this add.
        value: i32,
    },
    /// A counter add failed: it may or may not have applied.
    CounterUncertain {
        /// The client.
        client: usize,
    },
    /// A counter adder synced and read the counter.
    CounterRead {
        /// The client.
        client: usize,
        /// When it sent the sync that preceded the read.
        asked_at: Duration,
        /// The value read.
        value: i32,
    },
    /// A queue producer's put was acknowledged.
    QueuePut {
        /// The client.
        client: usize,
        /// The item (`c{client}.{incarnation}.{n}`, unique).
        item: String,
        /// When the put was called.
        started: Duration,
    },
    /// A queue producer's put failed: the item may or may not be in the queue.
    QueuePutUncertain {
        /// The client.
        client: usize,
        /// The item.
        item: String,
    },
    /// A queue consumer took an item (a plain queue's get returned it; a locking queue's
    /// consume of it returned true).
    QueueTaken {
        /// The client.
        client: usize,
        /// The item.
        item: String,
        /// When the get (the consumer's round) was called.
        started: Duration,
    },
    /// A queue consumer's get or consume failed: an item it was taking may be gone unrecorded.
    QueueTakeFailed {
        /// The client.
        client: usize,
    },
    /// A lease try obtained (or renewed) the lease: the client believes it holds it until
    /// `until` (its own clock; nothing else ends the belief).
    LeaseHeld {
        /// The client.
        client: usize,
        /// When its belief ends (simulated time).
        until: Duration,
    },
    /// A set partitioner's state became `Acquired`: the client believes it owns `items`.
    PartitionAcquired {
        /// The client.
        client: usize,
        /// The items of its share.
        items: Vec<String>,
    },
    /// A set partitioner left `Acquired` (or the member stopped): the client no longer
    /// believes it owns anything.
    PartitionReleased {
        /// The client.
        client: usize,
    },
    /// A multi-lock acquire returned: the client believes it holds every one of `locks`
    /// (ended by [`Event::Released`], [`Event::Lost`] or a crash).
    MultiLockAcquired {
        /// The client.
        client: usize,
        /// The lock paths.
        locks: Vec<String>,
    },
    /// A tree writer knows the state of one of its nodes: an acknowledged write, or a read
    /// after an uncertain one (`None`: the node does not exist).
    TreeWritten {
        /// The client.
        client: usize,
        /// The node's path.
        node: String,
        /// Its data.
        value: Option<String>,
    },
    /// A tree writer is about to write one of its nodes (`None`: delete it); its outcome is
    /// the next [`Event::TreeWritten`] of that node.
    TreeWriting {
        /// The client.
        client: usize,
        /// The node's path.
        node: String,
        /// The data it writes.
        value: Option<String>,
    },
    /// A tree-cache client started a new cache (its mirror starts empty).
    TreeCacheStarted {
        /// The client.
        client: usize,
    },
    /// A tree cache reported a node added or updated (`Some`) or removed (`None`).
    TreeCacheSeen {
        /// The client.
        client: usize,
        /// The node's path.
        node: String,
        /// Its data.
        value: Option<String>,
    },
    /// A (simple) barrier keeper's raise returned: the barrier node exists.
    BarrierRaised {
        /// The client.
        client: usize,
    },
    /// A barrier keeper calls remove.
    BarrierRemoving {
        /// The client.
        client: usize,
    },
    /// A barrier keeper's remove returned.
    BarrierRemoved {
        /// The client.
        client: usize,
    },
    /// A barrier waiter calls wait.
    BarrierWaiting {
        /// The client.
        client: usize,
    },
    /// A barrier waiter's wait returned: it believes the barrier is down.
    BarrierReleased {
        /// The client.
        client: usize,
    },
    /// A register client invoked an operation on its register znode; its outcome is the
    /// [`Event::RegisterReturn`] with the same `op_id` (none if its host crashed or the run
    /// ended first: then it stays open, indeterminate).
    RegisterCall {
        /// The client.
        client: usize,
        /// The operation's id, unique per client across incarnations.
        op_id: u64,
        /// What it asked.
        op: RegisterOp,
    },
    /// A register operation returned.
    RegisterReturn {
        /// The client.
        client: usize,
        /// The id of its [`Event::RegisterCall`].
        op_id: u64,
        /// The session the client was in when it returned (0: none).
        session: i64,
        /// What it returned.
        result: RegisterResult,
    },
    /// A register client holds a one-shot data watch on its register, set by its read
    /// `read` (recorded right after that read's [`Event::RegisterReturn`]).
    RegisterWatchSet {
        /// The client.
        client: usize,
        /// The op id of the read that set it.
        read: u64,
        /// The session it was set in.
        session: i64,
    },
    /// A register client's one-shot data watch fired (recorded before the next
    /// [`Event::RegisterReturn`] of that client after the notification reached it).
    RegisterWatchFired {
        /// The client.
        client: usize,
        /// The op id of the read that set it.
        read: u64,
        /// The client's session when it was seen fired (0: none).
        session: i64,
        /// What fired it (`None`: the session ended).
        event: zkit::EventType,
    },
    /// An event of a user role's own (recorded through
    /// [`Recorder::record`](crate::workload::user::Recorder::record)): no built-in checker
    /// reads it; the user's invariants do.
    User {
        /// The client.
        client: usize,
        /// What kind of event (the user's vocabulary: `job-start`, `owns`).
        key: String,
        /// Its value.
        value: String,
    },
}

impl Event {
    /// The client the event is about (`None` for faults, heals and notes).
    pub fn client(&self) -> Option<usize> {
        match self {
            Event::Started { client, .. }
            | Event::Acquired { client, .. }
            | Event::Released { client }
            | Event::Lost { client }
            | Event::Write { client, .. }
            | Event::State { client, .. }
            | Event::Crashed { client }
            | Event::Killed { client }
            | Event::Paused { client }
            | Event::Resumed { client }
            | Event::Cancelled { client, .. }
            | Event::ReadAcquired { client, .. }
            | Event::WriteAcquired { client, .. }
            | Event::LeaseAcquired { client, .. }
            | Event::Leader { client, .. }
            | Event::SteppedDown { client }
            | Event::LeaderLost { client }
            | Event::Joined { client }
            | Event::PartyLeft { client }
            | Event::Members { client, .. }
            | Event::BarrierEntering { client }
            | Event::BarrierEntered { client }
            | Event::BarrierLeft { client }
            | Event::BarrierFailed { client, .. }
            | Event::ConfigWritten { client, .. }
            | Event::ConfigUncertain { client, .. }
            | Event::ConfigSeen { client, .. }
            | Event::Created { client, .. }
            | Event::CreateUncertain { client, .. }
            | Event::Listed { client, .. }
            | Event::Session { client, .. }
            | Event::HeldIn { client, .. }
            | Event::BarrierLeaving { client }
            | Event::CounterAdding { client }
            | Event::CounterAdded { client, .. }
            | Event::CounterUncertain { client }
            | Event::CounterRead { client, .. }
            | Event::QueuePut { client, .. }
            | Event::QueuePutUncertain { client, .. }
            | Event::QueueTaken { client, .. }
            | Event::QueueTakeFailed { client }
            | Event::LeaseHeld { client, .. }
            | Event::PartitionAcquired { client, .. }
            | Event::PartitionReleased { client }
            | Event::MultiLockAcquired { client, .. }
            | Event::TreeWritten { client, .. }
            | Event::TreeWriting { client, .. }
            | Event::TreeCacheStarted { client }
            | Event::TreeCacheSeen { client, .. }
            | Event::BarrierRaised { client }
            | Event::BarrierRemoving { client }
            | Event::BarrierRemoved { client }
            | Event::BarrierWaiting { client }
            | Event::BarrierReleased { client }
            | Event::RegisterCall { client, .. }
            | Event::RegisterReturn { client, .. }
            | Event::RegisterWatchSet { client, .. }
            | Event::RegisterWatchFired { client, .. }
            | Event::User { client, .. } => Some(*client),
            Event::Fault { .. }
            | Event::Healed
            | Event::Note { .. }
            | Event::SessionExpired { .. }
            | Event::SessionClosed { .. } => None,
        }
    }
}

/// An event at a simulated instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Simulated time since the start.
    pub at: Duration,
    /// What happened.
    pub event: Event,
}

#[derive(Debug, Default)]
struct Inner {
    records: Vec<Record>,
    resource: FencedResource,
    /// Clients whose application is paused now.
    paused: BTreeSet<usize>,
    /// `cancel` faults in force: (client, fault id) → the range of timeouts its calls get.
    cancels: BTreeMap<(usize, u64), (Duration, Duration)>,
    /// Each client's current session (id and password), for `expire` faults.
    sessions: BTreeMap<usize, (i64, Vec<u8>)>,
    /// The server each client is connected to (its address as the client sees it), for
    /// `follower-of:N` targets.
    servers: BTreeMap<usize, String>,
    /// Sessions the ensemble expired or a client closed.
    ended: BTreeSet<i64>,
}

/// The shared log (cheap to clone; all clones append to one log, in the order events
/// happen in the single-threaded simulation).
#[derive(Debug, Clone, Default)]
pub struct History {
    inner: Arc<Mutex<Inner>>,
    /// Real mode: the start of the run on tokio's clock, for events recorded outside
    /// turmoil (`None`: simulated time only).
    origin: Option<tokio::time::Instant>,
}

impl History {
    /// An empty history.
    pub fn new() -> History {
        History::default()
    }

    /// An empty history for a run against a real ensemble: events recorded outside a
    /// simulation are stamped with the time since now.
    pub fn real_time() -> History {
        History {
            origin: Some(tokio::time::Instant::now()),
            ..History::default()
        }
    }

    /// Whether this history stamps real time ([`History::real_time`]).
    pub fn is_real_time(&self) -> bool {
        self.origin.is_some()
    }

    /// The time events are stamped with: the simulated time inside turmoil; in real mode
    /// ([`History::real_time`]) the time since the run started; else zero.
    pub fn now(&self) -> Duration {
        turmoil::sim_elapsed()
            .or_else(|| self.origin.map(|o| o.elapsed()))
            .unwrap_or_default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `event` now (inside a simulated host: the host's clock; see [`History::now`]).
    pub fn record(&self, event: Event) {
        let at = self.now();
        self.record_at(at, event);
    }

    /// Records `event` at `at` (from the runner, outside any host).
    pub fn record_at(&self, at: Duration, event: Event) {
        let mut inner = self.lock();
        if let Event::SessionExpired { session } | Event::SessionClosed { session } = event {
            inner.ended.insert(session);
        }
        inner.records.push(Record { at, event });
    }

    /// Marks `session` as ended without recording anything yet: real mode's monitor saw it
    /// leave the leader's tracker and files the expiry once it is sure (see
    /// `runner::real`), while an `expire` fault waiting for it may end now.
    pub fn mark_session_ended(&self, session: i64) {
        self.lock().ended.insert(session);
    }

    /// Whether the ensemble has expired `session`, or a client closed it.
    pub fn session_ended(&self, session: i64) -> bool {
        self.lock().ended.contains(&session)
    }

    /// Records a note by `who`.
    pub fn note(&self, who: &str, what: impl Into<String>) {
        self.record(Event::Note {
            who: who.to_owned(),
            what: what.into(),
        });
    }

    /// Client `client` writes to the fenced resource with `token`; returns whether it was
    /// accepted. The write and its verdict are recorded together.
    pub fn write(&self, client: usize, token: i64) -> bool {
        let at = self.now();
        let mut inner = self.lock();
        let accepted = inner.resource.write(token);
        inner.records.push(Record {
            at,
            event: Event::Write {
                client,
                token,
                accepted,
            },
        });
        accepted
    }

    /// Pauses (or resumes) client `client`'s application, recording it at `at`.
    pub fn set_paused(&self, at: Duration, client: usize, paused: bool) {
        let mut inner = self.lock();
        let changed = if paused {
            inner.paused.insert(client)
        } else {
            inner.paused.remove(&client)
        };
        if changed {
            let event = if paused {
                Event::Paused { client }
            } else {
                Event::Resumed { client }
            };
            inner.records.push(Record { at, event });
        }
    }

    /// Whether client `client`'s application is paused now.
    pub fn is_paused(&self, client: usize) -> bool {
        self.lock().paused.contains(&client)
    }

    /// Waits (in simulated time) while client `client`'s application is paused: a workload
    /// calls this where a frozen process would stop, and carries on with its old beliefs.
    pub async fn pause_point(&self, client: usize) {
        while self.is_paused(client) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Starts (`Some(range)`) or ends (`None`) `cancel` fault `id` on client `client`: while
    /// one is in force, the client's workload wraps its recipe calls in timeouts drawn from
    /// `range` ([`History::cancel_range`]).
    pub fn set_cancel(&self, client: usize, id: u64, range: Option<(Duration, Duration)>) {
        let mut inner = self.lock();
        match range {
            Some(r) => inner.cancels.insert((client, id), r),
            None => inner.cancels.remove(&(client, id)),
        };
    }

    /// The range of timeouts client `client`'s recipe calls get now (the earliest `cancel`
    /// fault in force on it), or `None`: its calls run to the end.
    pub fn cancel_range(&self, client: usize) -> Option<(Duration, Duration)> {
        self.lock()
            .cancels
            .range((client, 0)..=(client, u64::MAX))
            .next()
            .map(|(_, r)| *r)
    }

    /// Records client `client`'s current session credentials.
    pub fn set_session(&self, client: usize, id: i64, password: Vec<u8>) {
        self.lock().sessions.insert(client, (id, password));
    }

    /// Records the server client `client` is connected to (`None`: none now).
    pub fn set_server(&self, client: usize, server: Option<String>) {
        let mut inner = self.lock();
        match server {
            Some(s) => inner.servers.insert(client, s),
            None => inner.servers.remove(&client),
        };
    }

    /// The server client `client` is connected to, as the client names it.
    pub fn server(&self, client: usize) -> Option<String> {
        self.lock().servers.get(&client).cloned()
    }

    /// Client `client`'s last known session credentials.
    pub fn session(&self, client: usize) -> Option<(i64, Vec<u8>)> {
        self.lock().sessions.get(&client).cloned()
    }

    /// A copy of every record so far, in time order. In simulation that is the order they
    /// were recorded in; in real mode threads stamp and append concurrently, and an expiry
    /// is filed after the fact with the time it was last known alive, so the copy is sorted
    /// by time (stably: equal times keep their order).
    pub fn records(&self) -> Vec<Record> {
        let mut records = self.lock().records.clone();
        if self.is_real_time() {
            records.sort_by_key(|r| r.at);
        }
        records
    }

    /// The fenced resource's state.
    pub fn resource(&self) -> FencedResource {
        self.lock().resource.clone()
    }

    /// The clients that believe they hold a lock now (an exclusive lock, a side of a
    /// read-write lock, a semaphore lease, a multi-lock, a partition share), with their
    /// tokens (0 where the recipe has none).
    pub fn holders(&self) -> BTreeMap<usize, i64> {
        let inner = self.lock();
        let mut holders = BTreeMap::new();
        for r in &inner.records {
            match r.event {
                Event::Acquired { client, token }
                | Event::ReadAcquired { client, token }
                | Event::WriteAcquired { client, token }
                | Event::LeaseAcquired { client, token } => {
                    holders.insert(client, token);
                }
                Event::MultiLockAcquired { client, .. }
                | Event::PartitionAcquired { client, .. } => {
                    holders.insert(client, 0);
                }
                Event::Released { client }
                | Event::Lost { client }
                | Event::PartitionReleased { client }
                | Event::Crashed { client }
                | Event::Started { client, .. } => {
                    holders.remove(&client);
                }
                _ => {}
            }
        }
        holders
    }

    /// The clients that believe they lead (an election) now, with their epochs.
    pub fn leaders(&self) -> BTreeMap<usize, i64> {
        let inner = self.lock();
        let mut leaders = BTreeMap::new();
        for r in &inner.records {
            match r.event {
                Event::Leader { client, epoch } => {
                    leaders.insert(client, epoch);
                }
                Event::SteppedDown { client }
                | Event::LeaderLost { client }
                | Event::Crashed { client }
                | Event::Started { client, .. } => {
                    leaders.remove(&client);
                }
                _ => {}
            }
        }
        leaders
    }

    /// The deterministic text trace: one line per event.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for r in &self.records() {
            let _ = writeln!(out, "{}", render_record(r));
        }
        out
    }
}

/// One trace line: `  12.345678 s who: what`.
pub fn render_record(r: &Record) -> String {
    let at = format!("{:>4}.{:06} s", r.at.as_secs(), r.at.subsec_micros());
    let line = match &r.event {
        Event::Started {
            client,
            incarnation,
        } => format!("c{client}: started (incarnation {incarnation})"),
        Event::Acquired { client, token } => format!("c{client}: acquired token {token:#x}"),
        Event::Released { client } => format!("c{client}: released"),
        Event::Lost { client } => format!("c{client}: lost the lock"),
        Event::Write {
            client,
            token,
            accepted,
        } => format!(
            "c{client}: fenced write token {token:#x} {}",
            if *accepted { "accepted" } else { "REJECTED" }
        ),
        Event::State { client, state } => format!("c{client}: state {state}"),
        Event::Fault { what } => format!("fault: {what}"),
        Event::Crashed { client } => format!("c{client}: crashed"),
        Event::Killed { client } => format!("c{client}: session expired by the harness"),
        Event::Paused { client } => format!("c{client}: application paused"),
        Event::Resumed { client } => format!("c{client}: application resumed"),
        Event::Cancelled {
            client,
            call,
            after,
        } => format!("c{client}: {call} cancelled after {} ms", after.as_millis()),
        Event::Healed => "every fault undone".to_owned(),
        Event::ReadAcquired { client, token } => {
            format!("c{client}: read-acquired token {token:#x}")
        }
        Event::WriteAcquired { client, token } => {
            format!("c{client}: write-acquired token {token:#x}")
        }
        Event::LeaseAcquired { client, token } => {
            format!("c{client}: lease acquired token {token:#x}")
        }
        Event::Leader { client, epoch } => format!("c{client}: leads, epoch {epoch:#x}"),
        Event::SteppedDown { client } => format!("c{client}: stepped down"),
        Event::LeaderLost { client } => format!("c{client}: lost leadership"),
        Event::Joined { client } => format!("c{client}: joined the party"),
        Event::PartyLeft { client } => format!("c{client}: left the party"),
        Event::Members { client, count } => format!("c{client}: sees {count} members"),
        Event::BarrierEntering { client } => format!("c{client}: entering the barrier"),
        Event::BarrierEntered { client } => format!("c{client}: entered the barrier"),
        Event::BarrierLeft { client } => format!("c{client}: left the barrier"),
        Event::BarrierFailed { client, error } => {
            format!("c{client}: barrier failed: {error}")
        }
        Event::ConfigWritten {
            client,
            value,
            mzxid,
            version,
        } => format!("c{client}: wrote {value:?} (mzxid {mzxid:#x}, version {version})"),
        Event::ConfigUncertain { client, value } => {
            format!("c{client}: write of {value:?} uncertain")
        }
        Event::ConfigSeen {
            client,
            value,
            mzxid,
            version,
        } => match value {
            Some(v) => format!("c{client}: saw {v:?} (mzxid {mzxid:#x}, version {version})"),
            None => format!("c{client}: saw no node"),
        },
        Event::Created { client, name } => format!("c{client}: created {name}"),
        Event::CreateUncertain { client, name } => {
            format!("c{client}: create of {name} uncertain")
        }
        Event::Listed {
            client,
            asked_at,
            names,
        } => format!(
            "c{client}: listed {} nodes (synced at {}.{:06} s)",
            names.len(),
            asked_at.as_secs(),
            asked_at.subsec_micros()
        ),
        Event::Note { who, what } => format!("{who}: {what}"),
        Event::Session { client, session } => format!("c{client}: in session {session:#x}"),
        Event::SessionExpired { session } => format!("ensemble: session {session:#x} expired"),
        Event::SessionClosed { session } => format!("ensemble: session {session:#x} closed"),
        Event::HeldIn { client, session } => {
            format!("c{client}: holds in session {session:#x}")
        }
        Event::BarrierLeaving { client } => format!("c{client}: leaving the barrier"),
        Event::CounterAdding { client } => format!("c{client}: adds 1 to the counter"),
        Event::CounterAdded { client, value } => format!("c{client}: add acknowledged: {value}"),
        Event::CounterUncertain { client } => format!("c{client}: add uncertain"),
        Event::CounterRead {
            client,
            asked_at,
            value,
        } => format!(
            "c{client}: read counter {value} (synced at {}.{:06} s)",
            asked_at.as_secs(),
            asked_at.subsec_micros()
        ),
        Event::QueuePut { client, item, .. } => format!("c{client}: put {item}"),
        Event::QueuePutUncertain { client, item } => format!("c{client}: put of {item} uncertain"),
        Event::QueueTaken { client, item, .. } => format!("c{client}: took {item}"),
        Event::QueueTakeFailed { client } => format!("c{client}: take failed"),
        Event::LeaseHeld { client, until } => format!(
            "c{client}: holds the lease until {}.{:06} s",
            until.as_secs(),
            until.subsec_micros()
        ),
        Event::PartitionAcquired { client, items } => {
            format!("c{client}: owns [{}]", items.join(", "))
        }
        Event::PartitionReleased { client } => format!("c{client}: released its share"),
        Event::MultiLockAcquired { client, locks } => {
            format!("c{client}: multi-locked [{}]", locks.join(", "))
        }
        Event::TreeWritten {
            client,
            node,
            value,
        } => match value {
            Some(v) => format!("c{client}: {node} = {v:?}"),
            None => format!("c{client}: {node} absent"),
        },
        Event::TreeWriting {
            client,
            node,
            value,
        } => match value {
            Some(v) => format!("c{client}: writes {node} = {v:?}"),
            None => format!("c{client}: deletes {node}"),
        },
        Event::TreeCacheStarted { client } => format!("c{client}: tree cache started"),
        Event::TreeCacheSeen {
            client,
            node,
            value,
        } => match value {
            Some(v) => format!("c{client}: cache has {node} = {v:?}"),
            None => format!("c{client}: cache dropped {node}"),
        },
        Event::BarrierRaised { client } => format!("c{client}: raised the barrier"),
        Event::BarrierRemoving { client } => format!("c{client}: removing the barrier"),
        Event::BarrierRemoved { client } => format!("c{client}: removed the barrier"),
        Event::BarrierWaiting { client } => format!("c{client}: waits at the barrier"),
        Event::BarrierReleased { client } => format!("c{client}: released by the barrier"),
        Event::RegisterCall { client, op_id, op } => {
            format!("c{client}: register op {op_id:#x} calls {op}")
        }
        Event::RegisterReturn {
            client,
            op_id,
            result,
            ..
        } => format!("c{client}: register op {op_id:#x} returns {result}"),
        Event::RegisterWatchSet { client, read, .. } => {
            format!("c{client}: register op {read:#x} left a data watch")
        }
        Event::RegisterWatchFired {
            client,
            read,
            event,
            ..
        } => format!("c{client}: data watch of register op {read:#x} fired: {event:?}"),
        Event::User { client, key, value } => format!("c{client}: {key} {value}"),
    };
    format!("{at} {line}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn real_time_history_stamps_time_since_its_start() {
        let history = History::real_time();
        tokio::time::advance(Duration::from_secs(3)).await;
        history.note("test", "three seconds in");
        assert_eq!(history.records()[0].at, Duration::from_secs(3));
        // Outside real mode and outside turmoil, events are stamped zero (as before).
        let sim = History::new();
        sim.note("test", "no clock");
        assert_eq!(sim.records()[0].at, Duration::ZERO);
    }
}
