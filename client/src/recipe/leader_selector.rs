//! Leader election that runs your code while leading (Curator's `LeaderSelector`).
//!
//! Each participant contends for a [`Lock`] on the election's path, its node holding the
//! participant's id (so [`LeaderSelector::participants`] and [`LeaderSelector::leader`] can
//! tell who is who, as Curator's do). The lock holder is the leader: it calls your callback
//! with a [`LeadershipContext`] and leads while the returned future runs. Leadership ends when
//!
//! - the future completes (the leader gives it up), or
//! - the lock is lost ([`LockGuard::lost`](super::LockGuard::lost): by default as soon as the
//!   connection is suspended, per [`ConnectionPolicy`]): the future is dropped, so your code
//!   stops at its next `.await`, before anyone else can be elected, or
//! - [`LeaderSelector::interrupt_leadership`] is called (the future is dropped too).
//!
//! Then the lock is released, and the participant queues again if
//! [`auto_requeue`](SelectorBuilder::auto_requeue) is set (or when
//! [`LeaderSelector::requeue`] is called). Everything runs on a task of its own, never on the
//! session task; dropping the selector stops it and removes its node.
//!
//! ```no_run
//! # async fn f(client: zkit::Client) -> zkit::Result<()> {
//! use zkit::recipe::LeaderSelector;
//! let selector = LeaderSelector::builder(&client, "/app/leader", "worker-1")?
//!     .auto_requeue(true)
//!     .start(|ctx| async move {
//!         println!("leading with token {}", ctx.fencing_token());
//!         // ... work; dropped at once if leadership is lost ...
//!     });
//! # selector.close().await; Ok(()) }
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::leader_latch::StepDown;
pub use super::leader_latch::{LeaderEvent, Participant};
use super::lock::{ConnectionPolicy, Lock};
use super::participant::participants;
use crate::client::Client;
use crate::error::Result;

/// The marker of the lock's contender nodes (Curator's `lock-`).
const MARKER: &str = "lock-";

/// What the leader's callback gets: who and what it leads with.
#[derive(Debug, Clone)]
pub struct LeadershipContext {
    client: Client,
    id: String,
    path: String,
    node: String,
    token: i64,
    term: u64,
}

impl LeadershipContext {
    /// The client the selector runs on.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// This participant's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The election's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The leader's lock node.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// A token strictly increasing across successive leaders (the lock node's creation zxid).
    pub fn fencing_token(&self) -> i64 {
        self.token
    }

    /// How many times this participant has led, this term included (1 for the first).
    pub fn term(&self) -> u64 {
        self.term
    }
}

/// Options of a [`LeaderSelector`] before it starts.
#[derive(Debug, Clone)]
pub struct SelectorBuilder {
    client: Client,
    lock: Lock,
    id: String,
    policy: ConnectionPolicy,
    auto_requeue: bool,
}

impl SelectorBuilder {
    /// Queue again after every term (Curator's `autoRequeue`). Default false: the
    /// participant leads once, until [`LeaderSelector::requeue`].
    pub fn auto_requeue(mut self, yes: bool) -> Self {
        self.auto_requeue = yes;
        self
    }

    /// When leadership counts as lost (default: as soon as the connection is suspended).
    pub fn policy(mut self, policy: ConnectionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Joins the election and runs `leading` each time this participant is elected, on a
    /// task of its own.
    pub fn start<F, Fut>(self, leading: F) -> LeaderSelector
    where
        F: FnMut(LeadershipContext) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (state_tx, state) = watch::channel(LeaderEvent::NotLeader);
        let step_down = StepDown(Arc::new(state_tx));
        let queued = Arc::new(watch::Sender::new(true));
        let (stop, stop_rx) = watch::channel(false);
        let interrupt = Arc::new(Notify::new());
        let runner = Runner {
            client: self.client.clone(),
            lock: self
                .lock
                .clone()
                .policy(self.policy)
                .data(self.id.as_bytes()),
            id: self.id.clone(),
            auto_requeue: self.auto_requeue,
            state: step_down.clone(),
            queued: queued.clone(),
            stop: stop_rx,
            interrupt: interrupt.clone(),
        };
        let task = tokio::spawn(runner.run(leading));
        LeaderSelector {
            client: self.client,
            path: self.lock.path().to_owned(),
            id: self.id,
            state,
            queued,
            stop,
            interrupt,
            task: Some(task),
            _step_down: step_down,
        }
    }
}

/// A participant in a leader election that runs a callback while it leads. Dropping it (or
/// [`LeaderSelector::close`]) leaves the election: the callback is dropped, the node removed.
#[derive(Debug)]
pub struct LeaderSelector {
    client: Client,
    path: String,
    id: String,
    state: watch::Receiver<LeaderEvent>,
    queued: Arc<watch::Sender<bool>>,
    stop: watch::Sender<bool>,
    interrupt: Arc<Notify>,
    task: Option<JoinHandle<()>>,
    /// Dropped after [`Drop::drop`] has stopped the task (so on close too): publishes
    /// `NotLeader` for every [`events`](Self::events) receiver.
    _step_down: StepDown,
}

impl LeaderSelector {
    /// Options for participant `id` in the election at `path`; [`SelectorBuilder::start`]
    /// joins it.
    pub fn builder(client: &Client, path: &str, id: &str) -> Result<SelectorBuilder> {
        Ok(SelectorBuilder {
            client: client.clone(),
            lock: Lock::new(client, path)?,
            id: id.to_owned(),
            policy: ConnectionPolicy::default(),
            auto_requeue: false,
        })
    }

    /// Joins the election at `path` as `id` with the default options (no auto-requeue) and
    /// runs `leading` when elected.
    pub fn start<F, Fut>(client: &Client, path: &str, id: &str, leading: F) -> Result<Self>
    where
        F: FnMut(LeadershipContext) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Ok(Self::builder(client, path, id)?.start(leading))
    }

    /// This participant's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The election's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether this participant leads now (its callback is running).
    pub fn has_leadership(&self) -> bool {
        matches!(*self.state.borrow(), LeaderEvent::Elected { .. })
    }

    /// Every change of this participant's leadership (the latest value; `changed()` wakes on
    /// each).
    pub fn events(&self) -> watch::Receiver<LeaderEvent> {
        self.state.clone()
    }

    /// Queues this participant again after a term ended without auto-requeue. `false` if it
    /// is already queued or leading (Curator's `requeue`).
    pub fn requeue(&self) -> bool {
        self.queued
            .send_if_modified(|q| !std::mem::replace(q, true))
    }

    /// Ends the current term, if any: the callback is dropped and the lock released. A call
    /// made once [`events`](Self::events) reads `Elected` always ends that term.
    pub fn interrupt_leadership(&self) {
        self.interrupt.notify_waiters();
    }

    /// Every participant of this election, the leader first.
    pub async fn participants(&self) -> Result<Vec<Participant>> {
        Self::participants_of(&self.client, &self.path).await
    }

    /// The current leader of this election, if any.
    pub async fn leader(&self) -> Result<Option<Participant>> {
        Self::leader_of(&self.client, &self.path).await
    }

    /// Every participant of the election at `path`, the leader first (ids read from the
    /// nodes' data).
    pub async fn participants_of(client: &Client, path: &str) -> Result<Vec<Participant>> {
        participants(client, path.trim_end_matches('/'), MARKER).await
    }

    /// The current leader of the election at `path`, if any.
    pub async fn leader_of(client: &Client, path: &str) -> Result<Option<Participant>> {
        Ok(Self::participants_of(client, path)
            .await?
            .into_iter()
            .next())
    }

    /// Leaves the election: drops a running callback, waits until the lock node is deleted
    /// (or the session is gone) and the selector's task has ended.
    pub async fn close(mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for LeaderSelector {
    fn drop(&mut self) {
        // Aborting drops the callback and the lock guard, whose drop deletes the node.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The selector's task.
struct Runner {
    client: Client,
    lock: Lock,
    id: String,
    auto_requeue: bool,
    /// The events; dropped with the task (aborted or ended), it publishes `NotLeader`.
    state: StepDown,
    queued: Arc<watch::Sender<bool>>,
    stop: watch::Receiver<bool>,
    interrupt: Arc<Notify>,
}

/// Why a term ended.
#[derive(Debug)]
enum TermEnd {
    Returned,
    Lost,
    Interrupted,
    Stopped,
}

impl Runner {
    async fn run<F, Fut>(self, mut leading: F)
    where
        F: FnMut(LeadershipContext) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut queued = self.queued.subscribe();
        let mut stop = self.stop.clone();
        let mut term = 0;
        loop {
            let acquired = tokio::select! {
                biased;
                () = stopped(&mut stop) => break,
                r = async {
                    let _ = queued.wait_for(|q| *q).await;
                    self.lock.acquire().await
                } => r,
            };
            let guard = match acquired {
                Ok(guard) => guard,
                Err(e) if self.client.is_finished() => {
                    tracing::debug!(id = %self.id, error = %e, "selector ends with the session");
                    break;
                }
                Err(e) => {
                    tracing::warn!(id = %self.id, error = %e, "selector could not contend");
                    if self.client.wait_connected().await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            term += 1;
            let ctx = LeadershipContext {
                client: self.client.clone(),
                id: self.id.clone(),
                path: self.lock.path().to_owned(),
                node: guard.node().to_owned(),
                token: guard.fencing_token(),
                term,
            };
            // Listening before `Elected` is published: an interrupt issued by whoever sees
            // it ends this term (`notify_waiters` wakes a `Notified` from its creation on,
            // polled or not; one made after the publication could miss it).
            let interrupted = self.interrupt.notified();
            self.state.set(LeaderEvent::Elected {
                epoch: ctx.fencing_token(),
            });
            tracing::info!(id = %self.id, term, token = ctx.fencing_token(), "leading");
            let work = leading(ctx);
            // Biased: a lock already lost (or a stop) wins before the work is polled again.
            let end = tokio::select! {
                biased;
                () = guard.lost() => TermEnd::Lost,
                () = stopped(&mut stop) => TermEnd::Stopped,
                () = interrupted => TermEnd::Interrupted,
                () = work => TermEnd::Returned,
            };
            // The callback's future is dropped by now: nothing of the term runs any more.
            if !self.auto_requeue {
                self.queued.send_replace(false);
            }
            self.state.set(LeaderEvent::NotLeader);
            tracing::info!(id = %self.id, term, ?end, "leadership ended");
            if let Err(e) = guard.release().await {
                tracing::debug!(id = %self.id, error = %e, "lock node left to the session");
            }
            if matches!(end, TermEnd::Stopped) {
                break;
            }
        }
        self.state.set(LeaderEvent::NotLeader);
    }
}

/// Resolves once the selector is told to stop (or is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
