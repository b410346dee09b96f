//! One global event log keyed by simulated time: what clients believed (acquire, release,
//! loss), what the fenced resource did, which faults fired, client connection states. The
//! checkers read it; [`History::render`] turns it into a deterministic text trace.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

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
            | Event::BarrierLeaving { client } => Some(*client),
            Event::Fault { .. }
            | Event::Healed
            | Event::Note { .. }
            | Event::SessionExpired { .. } => None,
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
    /// Each client's current session (id and password), for `expire` faults.
    sessions: BTreeMap<usize, (i64, Vec<u8>)>,
}

/// The shared log (cheap to clone; all clones append to one log, in the order events
/// happen in the single-threaded simulation).
#[derive(Debug, Clone, Default)]
pub struct History {
    inner: Arc<Mutex<Inner>>,
}

impl History {
    /// An empty history.
    pub fn new() -> History {
        History::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `event` now (inside a simulated host: the host's clock).
    pub fn record(&self, event: Event) {
        let at = turmoil::sim_elapsed().unwrap_or_default();
        self.record_at(at, event);
    }

    /// Records `event` at `at` (from the runner, outside any host).
    pub fn record_at(&self, at: Duration, event: Event) {
        self.lock().records.push(Record { at, event });
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
        let at = turmoil::sim_elapsed().unwrap_or_default();
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

    /// Records client `client`'s current session credentials.
    pub fn set_session(&self, client: usize, id: i64, password: Vec<u8>) {
        self.lock().sessions.insert(client, (id, password));
    }

    /// Client `client`'s last known session credentials.
    pub fn session(&self, client: usize) -> Option<(i64, Vec<u8>)> {
        self.lock().sessions.get(&client).cloned()
    }

    /// A copy of every record so far.
    pub fn records(&self) -> Vec<Record> {
        self.lock().records.clone()
    }

    /// The fenced resource's state.
    pub fn resource(&self) -> FencedResource {
        self.lock().resource.clone()
    }

    /// The clients that believe they hold the lock now, with their tokens.
    pub fn holders(&self) -> BTreeMap<usize, i64> {
        let inner = self.lock();
        let mut holders = BTreeMap::new();
        for r in &inner.records {
            match r.event {
                Event::Acquired { client, token } => {
                    holders.insert(client, token);
                }
                Event::Released { client }
                | Event::Lost { client }
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
        let inner = self.lock();
        let mut out = String::new();
        for r in &inner.records {
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
        Event::HeldIn { client, session } => {
            format!("c{client}: holds in session {session:#x}")
        }
        Event::BarrierLeaving { client } => format!("c{client}: leaving the barrier"),
    };
    format!("{at} {line}")
}
