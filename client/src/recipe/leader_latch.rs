//! Leader election by latch (Curator's `LeaderLatch`): each candidate keeps a protected
//! ephemeral sequential node under the election path; the lowest sequence leads. A candidate
//! watches only its predecessor. Leadership is given up as soon as the connection is
//! suspended (per [`ConnectionPolicy`]); after a reconnect the candidate re-checks its node,
//! and creates a new one if its session changed. A candidate whose node is deleted (with the
//! election path, even) creates a new one, with the parents, as Curator's does; a data change
//! of its node changes nothing. A round that fails otherwise is retried after a pause that
//! grows while the failures go on.
//!
//! The leader's epoch (its node's creation zxid) increases with every new leader and can be
//! used as a fencing token.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::participant::participants;
pub use super::participant::Participant;
use super::policy::{wait_read_write, ConnectionPolicy, TrustWatch};
use super::protected::{
    at_most, create_protected, new_guid, sorted_contenders, OwnedNode, PROTECTED_PREFIX,
};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::path::validate_path;
use crate::proto::EventType;
use crate::state::State;
use crate::watch::Watcher;

/// The marker before the sequence in a candidate's node name.
const MARKER: &str = "latch-";

/// The pause after a failed round of the candidate's loop, the first time.
const MIN_PAUSE: Duration = Duration::from_millis(100);

/// The longest pause between failed rounds.
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// A change of leadership as one candidate sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaderEvent {
    /// This candidate leads, in `epoch`.
    Elected {
        /// The fencing epoch of this leadership.
        epoch: i64,
    },
    /// This candidate does not lead (any more).
    NotLeader,
}

/// What a latch's [`events`](LeaderLatch::events) receivers are told when it closes (Curator's
/// `LeaderLatch.CloseMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CloseMode {
    /// Receivers are woken with [`LeaderEvent::NotLeader`] (if the latch led), then see the
    /// channel close (Curator's `NOTIFY_LEADER`). zkit's default.
    #[default]
    NotifyLeader,
    /// Receivers are not woken with an event: they only see the channel close (`changed()`
    /// errs), though the value they read is `NotLeader` from then on, never a stale
    /// `Elected` (Curator's `SILENT`, its default). If the latch wins leadership while it is
    /// being closed, receivers woken with that `Elected` are then told `NotLeader` too.
    Silent,
}

/// One candidate in a leader election. Dropping it (or [`LeaderLatch::close`]) leaves the
/// election and deletes its node; its [`events`](LeaderLatch::events) then read `NotLeader`,
/// announced or not per its [`CloseMode`].
#[derive(Debug)]
pub struct LeaderLatch {
    client: Client,
    path: String,
    state: watch::Receiver<LeaderEvent>,
    node: watch::Receiver<Option<String>>,
    task: JoinHandle<()>,
    /// The node being deleted by [`close`](Self::close): owned until the delete is
    /// confirmed, so a close cancelled half-way still deletes it when the latch drops.
    closing: Option<OwnedNode>,
    /// What the events' receivers are told on close.
    close_mode: CloseMode,
    /// Dropped after [`Drop::drop`] has stopped the task (so on close too): publishes
    /// `NotLeader` for every [`events`](Self::events) receiver.
    _step_down: StepDown,
}

/// Publishes [`LeaderEvent::NotLeader`] when dropped. A latch or selector holds one, and so
/// does its background task: whichever goes last, a receiver of its events never reads
/// `Elected` after the candidate is gone.
#[derive(Debug, Clone)]
pub(crate) struct StepDown(pub(crate) Arc<watch::Sender<LeaderEvent>>);

impl StepDown {
    /// Publishes `event` unless it is the current one.
    pub(crate) fn set(&self, event: LeaderEvent) {
        self.0.send_if_modified(|s| {
            let changed = *s != event;
            *s = event;
            changed
        });
    }
}

impl Drop for StepDown {
    fn drop(&mut self) {
        self.set(LeaderEvent::NotLeader);
    }
}

impl LeaderLatch {
    /// Joins the election at `path` as `id` and starts competing in the background.
    pub fn start(client: &Client, path: &str, id: &str) -> Result<LeaderLatch> {
        Self::start_with_policy(client, path, id, ConnectionPolicy::default())
    }

    /// Like [`LeaderLatch::start`], choosing when leadership is given up.
    pub fn start_with_policy(
        client: &Client,
        path: &str,
        id: &str,
        policy: ConnectionPolicy,
    ) -> Result<LeaderLatch> {
        validate_path(path)?;
        let path = path.trim_end_matches('/').to_owned();
        let (state_tx, state) = watch::channel(LeaderEvent::NotLeader);
        let step_down = StepDown(Arc::new(state_tx));
        let (node_tx, node) = watch::channel(None);
        let candidate = Candidate {
            client: client.clone(),
            path: path.clone(),
            id: id.to_owned(),
            policy,
            state: step_down.clone(),
            node: node_tx,
        };
        let task = tokio::spawn(candidate.run());
        Ok(LeaderLatch {
            client: client.clone(),
            path,
            state,
            node,
            task,
            closing: None,
            close_mode: CloseMode::default(),
            _step_down: step_down,
        })
    }

    /// Sets what the [`events`](Self::events) receivers are told when the latch is closed or
    /// dropped (default [`CloseMode::NotifyLeader`]); [`close_with`](Self::close_with)
    /// overrides it for one close.
    pub fn set_close_mode(&mut self, mode: CloseMode) {
        self.close_mode = mode;
    }

    /// The latch's current [`CloseMode`].
    pub fn close_mode(&self) -> CloseMode {
        self.close_mode
    }

    /// Whether this candidate leads now.
    pub fn has_leadership(&self) -> bool {
        matches!(*self.state.borrow(), LeaderEvent::Elected { .. })
    }

    /// The epoch of the current leadership, if this candidate leads.
    pub fn epoch(&self) -> Option<i64> {
        match *self.state.borrow() {
            LeaderEvent::Elected { epoch } => Some(epoch),
            LeaderEvent::NotLeader => None,
        }
    }

    /// Waits until this candidate leads; returns the epoch. Fails if the session ends first.
    pub async fn wait_for_leadership(&self) -> Result<i64> {
        let mut rx = self.state.clone();
        loop {
            if let LeaderEvent::Elected { epoch } = *rx.borrow_and_update() {
                return Ok(epoch);
            }
            if self.client.is_finished() {
                return Err(Error::SessionExpired);
            }
            if rx.changed().await.is_err() {
                return Err(Error::Closed);
            }
        }
    }

    /// Waits at most `timeout` for this candidate to lead (Curator's `await(timeout)`):
    /// `Some(epoch)` if it does, `None` if the time ran out first. Fails if the session ends
    /// first.
    pub async fn wait_for_leadership_timeout(&self, timeout: Duration) -> Result<Option<i64>> {
        at_most(timeout, self.wait_for_leadership()).await
    }

    /// Every change of this candidate's leadership (the latest value; `changed()` wakes on each).
    pub fn events(&self) -> watch::Receiver<LeaderEvent> {
        self.state.clone()
    }

    /// This candidate's node, once created.
    pub fn node(&self) -> Option<String> {
        self.node.borrow().clone()
    }

    /// Every candidate of the election at `path`, the leader first.
    pub async fn participants(client: &Client, path: &str) -> Result<Vec<Participant>> {
        participants(client, path, MARKER).await
    }

    /// The id of the current leader of the election at `path`.
    pub async fn leader(client: &Client, path: &str) -> Result<Option<String>> {
        Ok(Self::participants(client, path)
            .await?
            .into_iter()
            .next()
            .map(|p| p.id))
    }

    /// The election's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Leaves the election and waits until the node is deleted, telling the
    /// [`events`](Self::events) receivers per the latch's [`CloseMode`]. Dropping this future
    /// before it finishes still deletes the node, in the background.
    pub async fn close(self) -> Result<()> {
        let mode = self.close_mode;
        self.close_with(mode).await
    }

    /// Like [`close`](Self::close), telling the receivers per `mode` (Curator's
    /// `close(CloseMode)`).
    pub async fn close_with(mut self, mode: CloseMode) -> Result<()> {
        self.close_mode = mode;
        self.quiet_if_silent();
        self.task.abort();
        // Once the task has stopped it creates no node any more: the last one published is
        // the only one (a create it was cancelled in removes its own node).
        let _ = (&mut self.task).await;
        let Some(node) = self.node.borrow().clone() else {
            return Ok(());
        };
        self.closing
            .insert(OwnedNode::new(&self.client, node))
            .delete()
            .await
    }
}

impl LeaderLatch {
    /// With [`CloseMode::Silent`]: reads `NotLeader` from now on without waking anyone, so
    /// the step-down published as the task and latch go is no change and wakes nobody.
    fn quiet_if_silent(&self) {
        if self.close_mode == CloseMode::Silent {
            self._step_down.0.send_if_modified(|s| {
                *s = LeaderEvent::NotLeader;
                false
            });
        }
    }
}

impl Drop for LeaderLatch {
    fn drop(&mut self) {
        // Done by `close_with` already if it ran; harmless twice.
        self.quiet_if_silent();
        self.task.abort();
        if self.closing.is_none() {
            if let Some(node) = self.node.borrow().clone() {
                // Deleted in the background as it drops.
                drop(OwnedNode::new(&self.client, node));
            }
        }
        // A node `close` was deleting goes with `closing` unless its delete was confirmed.
    }
}

/// The background side of a latch.
struct Candidate {
    client: Client,
    path: String,
    id: String,
    policy: ConnectionPolicy,
    /// The events; dropped with the task (aborted or ended), it publishes `NotLeader`.
    state: StepDown,
    node: watch::Sender<Option<String>>,
}

/// What ended one round of the candidate's loop.
enum Round {
    /// Look again (a predecessor went, the connection came back, ...).
    Again,
    /// The session is over: nothing more to do.
    Done,
}

impl Candidate {
    async fn run(self) {
        // (node path, its czxid, the session that made it)
        let mut mine: Option<(String, i64, i64)> = None;
        // The pause after a failed round: doubled on each failure in a row (a path this
        // client may not create under, say), so a persistent failure is retried, not spun on.
        let mut pause = MIN_PAUSE;
        loop {
            let round = self.round(&mut mine).await;
            if round.is_ok() {
                pause = MIN_PAUSE;
            }
            match round {
                Ok(Round::Again) => {}
                Ok(Round::Done) => break,
                Err(Error::ConnectionLoss) => {}
                // A lost session ends the candidate unless the client starts a new one (then
                // the next round re-creates the node in it).
                Err(Error::SessionExpired) if !self.client.is_finished() => {}
                Err(Error::SessionExpired) | Err(Error::Closed) | Err(Error::AuthFailed) => break,
                Err(e) => {
                    tracing::warn!(path = %self.path, error = %e, ?pause, "leader latch round failed");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
            }
        }
        self.set(LeaderEvent::NotLeader);
    }

    fn set(&self, event: LeaderEvent) {
        self.state.set(event);
    }

    async fn round(&self, mine: &mut Option<(String, i64, i64)>) -> Result<Round> {
        let client = &self.client;
        // Never through a read-only server: the quorum may be expiring the session.
        if wait_read_write(client).await.is_err() {
            return Ok(Round::Done);
        }
        let session = client.session_id();
        // Watching starts before anything is decided, so a blip during the round counts.
        let mut trust = TrustWatch::new(client, session, self.policy);
        if mine.as_ref().is_some_and(|(_, _, s)| *s != session) {
            // A new session: the old node is gone (or going); this one needs its own.
            *mine = None;
        }
        let (node, czxid) = match mine {
            Some((node, czxid, _)) => (node.clone(), *czxid),
            None => {
                let guid = new_guid(client);
                let name = format!("{PROTECTED_PREFIX}{guid}-{MARKER}");
                let (node, stat) =
                    create_protected(client, &self.path, &name, &guid, self.id.as_bytes(), false)
                        .await?;
                // The create may have been retried into a new session (the client renewed an
                // expired one meanwhile): the node belongs to the session that owns it, and
                // this round's trust watch to an older one, so look again in that session.
                *mine = Some((node.clone(), stat.czxid, stat.ephemeral_owner));
                self.node.send_replace(Some(node.clone()));
                if stat.ephemeral_owner != session {
                    return Ok(Round::Again);
                }
                (node, stat.czxid)
            }
        };
        let name = node.rsplit('/').next().unwrap_or_default();
        let children = match client.get_children(&self.path).await {
            Ok(children) => children,
            // The election path was deleted, and this candidate's node with it: the next
            // round creates a new one (with the parents), as Curator's latch does.
            Err(Error::NoNode { .. }) => {
                tracing::debug!(path = %self.path, "election path gone: joining again");
                *mine = None;
                return Ok(Round::Again);
            }
            Err(e) => return Err(e),
        };
        let contenders = sorted_contenders(children, MARKER);
        let Some(index) = contenders.iter().position(|c| c == name) else {
            *mine = None;
            return Ok(Round::Again);
        };
        if index == 0 {
            // Lead until the connection or the node says otherwise.
            let (exists, watcher) = client.exists_watch(&node).await?;
            if exists.is_none() {
                *mine = None;
                return Ok(Round::Again);
            }
            if client.state() != State::Connected || client.session_id() != session {
                // Moved to a read-only server (or a new session) meanwhile: look again.
                return Ok(Round::Again);
            }
            self.set(LeaderEvent::Elected { epoch: czxid });
            tracing::info!(path = %self.path, id = %self.id, epoch = czxid, "elected");
            self.lead(client, &node, &mut trust, watcher, mine).await;
            self.set(LeaderEvent::NotLeader);
            tracing::info!(path = %self.path, id = %self.id, "leadership given up");
            return Ok(Round::Again);
        }
        self.set(LeaderEvent::NotLeader);
        let predecessor = format!("{}/{}", self.path, contenders[index - 1]);
        match client.get_data_watch(&predecessor).await {
            Ok((_, _, watcher)) => {
                tokio::select! {
                    biased;
                    () = trust.lost() => {
                        // Wait for the connection to settle before looking again.
                        let _ = client.wait_connected().await;
                    }
                    _ = watcher => {}
                }
                Ok(Round::Again)
            }
            Err(Error::NoNode { .. }) => Ok(Round::Again),
            Err(e) => Err(e),
        }
    }

    /// Leads until the connection or the node says otherwise: returns once the trust in the
    /// session is lost, or the node is deleted (then `mine` is cleared) or cannot be watched
    /// any more. A data change of the node (a `set_data` on it) fires its watch but changes
    /// nothing about the leadership: the node is watched again.
    async fn lead(
        &self,
        client: &Client,
        node: &str,
        trust: &mut TrustWatch,
        mut watcher: Watcher,
        mine: &mut Option<(String, i64, i64)>,
    ) {
        loop {
            let event = tokio::select! {
                biased;
                () = trust.lost() => return,
                event = &mut watcher => event,
            };
            if event.event_type == EventType::NodeDeleted {
                *mine = None;
                return;
            }
            if event.event_type != EventType::NodeDataChanged {
                // A session event (or anything unexpected): look again.
                return;
            }
            tracing::debug!(path = %node, "leader's node changed: watching it again");
            match client.exists_watch(node).await {
                Ok((Some(_), next)) => watcher = next,
                Ok((None, _)) => {
                    *mine = None;
                    return;
                }
                Err(e) => {
                    tracing::debug!(path = %node, error = %e, "leader's node not watched again");
                    return;
                }
            }
        }
    }
}
