//! One global event log keyed by simulated time: what clients believed (acquire, release,
//! loss), what the fenced resource did, which faults fired, client connection states. The
//! checkers read it; [`History::render`] turns it into a deterministic text trace.

use std::collections::BTreeMap;
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
    /// Anything else worth a line (errors a workload retried, skipped faults).
    Note {
        /// Who (`c3`, `runner`).
        who: String,
        /// What.
        what: String,
    },
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
        Event::Note { who, what } => format!("{who}: {what}"),
    };
    format!("{at} {line}")
}
