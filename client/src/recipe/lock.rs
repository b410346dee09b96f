//! An exclusive, fair distributed lock (ZooKeeper's lock recipe, Curator's
//! `InterProcessMutex`): each contender creates a protected ephemeral sequential node under the
//! lock's path; the lowest sequence holds the lock; every other contender watches only its
//! predecessor (with a getData watch, so no creation watch is left behind).
//!
//! The guard offers a fencing token (the holder node's creation zxid, strictly increasing
//! across successive holders) and [`LockGuard::lost`], which resolves as soon as the lock can
//! no longer be trusted: by default when the connection is suspended (the session may expire
//! unseen), or only when the session is lost, per [`ConnectionPolicy`].

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::participant::contender_ids;
pub use super::policy::ConnectionPolicy;
use super::policy::{wait_read_write, TrustWatch};
use super::protected::{
    at_most, create_protected, kazoo_acquire, new_guid, retry_on_loss, sorted_contenders_any,
    until_held, OwnedNode, PendingNode, PROTECTED_PREFIX,
};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::path::validate_path;
use crate::state::State;

/// How lock nodes are named, so zkit can contend with other clients on one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockNaming {
    /// Curator's `InterProcessMutex`: `_c_<guid>-lock-<seq>`.
    #[default]
    Curator,
    /// Kazoo's `Lock`: `<guid>__lock__<seq>`.
    Kazoo,
}

impl LockNaming {
    /// The marker that precedes the sequence in a contender's name.
    fn marker(self) -> &'static str {
        match self {
            LockNaming::Curator => "lock-",
            LockNaming::Kazoo => "__lock__",
        }
    }

    fn node_name(self, guid: &str) -> String {
        match self {
            LockNaming::Curator => format!("{PROTECTED_PREFIX}{guid}-lock-"),
            LockNaming::Kazoo => format!("{}__lock__", guid.replace('-', "")),
        }
    }

    fn guid_in_name(self, guid: &str) -> String {
        match self {
            LockNaming::Curator => guid.to_owned(),
            LockNaming::Kazoo => guid.replace('-', ""),
        }
    }
}

/// An exclusive lock on a path. Cheap to create; every `acquire` makes a new contender,
/// unless the lock is [re-entrant](Lock::reentrant) and its owner holds it already.
#[derive(Debug, Clone)]
pub struct Lock {
    client: Client,
    path: String,
    naming: LockNaming,
    policy: ConnectionPolicy,
    data: Vec<u8>,
    /// For a re-entrant lock: the owner's current hold, shared by this handle's clones.
    owner: Option<Arc<Mutex<Weak<Held>>>>,
    /// Whether missing parents are created as containers.
    containers: bool,
}

impl Lock {
    /// A lock on `path` (created, with parents, on first use).
    pub fn new(client: &Client, path: &str) -> Result<Lock> {
        validate_path(path)?;
        Ok(Lock {
            client: client.clone(),
            path: path.trim_end_matches('/').to_owned(),
            naming: LockNaming::default(),
            policy: ConnectionPolicy::default(),
            data: Vec::new(),
            owner: None,
            containers: false,
        })
    }

    /// Makes the lock re-entrant, as Curator's `InterProcessMutex` is: while a guard this
    /// handle (or a clone of it: together they are one owner) acquired is alive, acquiring
    /// again returns at once with a guard sharing the same node, and the node is deleted
    /// only when the last of those guards is released or dropped ([`LockGuard::holds`]
    /// counts them). The shared guards have the same fencing token and are lost together.
    ///
    /// Curator's owner is a thread; async tasks move between threads, so here the owner is
    /// the handle: tasks that must exclude each other need handles of their own
    /// ([`Lock::new`]), not clones of a re-entrant one. An acquire that was already waiting
    /// when the owner got the lock keeps waiting for its own turn.
    pub fn reentrant(mut self) -> Self {
        self.owner = Some(Arc::new(Mutex::new(Weak::new())));
        self
    }

    /// Creates the lock's path and its missing parents as container nodes (Curator's
    /// `creatingParentContainersIfNeeded`), so ZooKeeper (3.5+) deletes them once the last
    /// contender is gone instead of leaving empty directories behind. A contender arriving
    /// just as the server reaps the empty path may fail with `NoNode`; acquire again.
    pub fn container_parents(mut self) -> Self {
        self.containers = true;
        self
    }

    /// Whether [`reentrant`](Self::reentrant) was set.
    pub fn is_reentrant(&self) -> bool {
        self.owner.is_some()
    }

    /// Names nodes as `naming` does (to share the path with Curator or Kazoo).
    pub fn naming(mut self, naming: LockNaming) -> Self {
        self.naming = naming;
        self
    }

    /// When a held lock counts as lost.
    pub fn policy(mut self, policy: ConnectionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Data stored in the contender's node (e.g. who holds it).
    pub fn data(mut self, data: &[u8]) -> Self {
        self.data = data.to_vec();
        self
    }

    /// The lock's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Waits until the lock is held. Dropping the future cancels the attempt and removes
    /// its node.
    /// Re-entrant, the owner already holding it: a guard sharing that hold, at once.
    pub async fn acquire(&self) -> Result<LockGuard> {
        if let Some(guard) = self.reenter() {
            return Ok(guard);
        }
        let guard = until_held(self.acquire_inner(true)).await?;
        self.remember(&guard);
        Ok(guard)
    }

    /// Takes the lock if nobody holds it or waits for it; `None` otherwise. Re-entrant, the
    /// owner already holding it: a guard sharing that hold.
    pub async fn try_acquire(&self) -> Result<Option<LockGuard>> {
        if let Some(guard) = self.reenter() {
            return Ok(Some(guard));
        }
        let guard = self.acquire_inner(false).await?;
        if let Some(guard) = &guard {
            self.remember(guard);
        }
        Ok(guard)
    }

    /// For a re-entrant lock whose owner holds it: another guard of that hold.
    fn reenter(&self) -> Option<LockGuard> {
        let owner = self.owner.as_ref()?;
        let held = owner.lock().unwrap_or_else(|e| e.into_inner());
        let guard = LockGuard::upgrade(&held)?;
        tracing::trace!(node = %guard.node(), holds = guard.holds(), "lock re-entered");
        Some(guard)
    }

    /// For a re-entrant lock: `guard` is the owner's hold now.
    fn remember(&self, guard: &LockGuard) {
        if let Some(owner) = &self.owner {
            *owner.lock().unwrap_or_else(|e| e.into_inner()) = guard.downgrade();
        }
    }

    /// Waits at most `timeout` for the lock; `None` if it did not come (the node is removed).
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<Option<LockGuard>> {
        at_most(timeout, self.acquire()).await
    }

    /// Kazoo's `Lock.acquire(blocking, timeout)`: not `blocking`, [`try_acquire`]
    /// (`timeout` ignored); blocking with a timeout, [`acquire_timeout`]; blocking without,
    /// [`acquire`] (always `Some`).
    ///
    /// [`try_acquire`]: Self::try_acquire
    /// [`acquire_timeout`]: Self::acquire_timeout
    /// [`acquire`]: Self::acquire
    pub async fn acquire_with(
        &self,
        blocking: bool,
        timeout: Option<Duration>,
    ) -> Result<Option<LockGuard>> {
        kazoo_acquire(blocking, timeout, self.try_acquire(), self.acquire()).await
    }

    /// The contenders' node names, first (the holder) first.
    pub async fn contenders(&self) -> Result<Vec<String>> {
        list_contenders(&self.client, &self.path, &[self.naming.marker()]).await
    }

    /// The contenders' ids (the [`data`](Self::data) each one stored, read as UTF-8), first
    /// (the holder) first: Kazoo's `Lock.contenders()`. A contender that leaves while the
    /// list is read is left out.
    pub async fn contender_ids(&self) -> Result<Vec<String>> {
        contender_ids(&self.client, &self.path, &[self.naming.marker()]).await
    }

    async fn acquire_inner(&self, wait: bool) -> Result<Option<LockGuard>> {
        let guid = new_guid(&self.client);
        Contention {
            client: &self.client,
            dir: &self.path,
            name: self.naming.node_name(&guid),
            guid: self.naming.guid_in_name(&guid),
            data: &self.data,
            policy: self.policy,
            markers: &[self.naming.marker()],
            blocker: first_holds,
            containers: self.containers,
        }
        .run(wait)
        .await
    }
}

/// Which contender (an index into the sorted contenders) the one at `ours` must wait for;
/// `None` when it holds.
pub(crate) type Blocker = fn(contenders: &[String], ours: usize) -> Option<usize>;

/// The exclusive rule: the first contender holds; every other waits for its predecessor.
pub(crate) fn first_holds(_contenders: &[String], ours: usize) -> Option<usize> {
    ours.checked_sub(1)
}

/// One contender of a lock-like recipe (the lock, the read-write lock's two sides): creates
/// its protected node, then holds as soon as `blocker` says nobody blocks it, watching only
/// the one contender it names (no herd). Dropping the future removes the node.
pub(crate) struct Contention<'a> {
    pub(crate) client: &'a Client,
    /// The directory the contenders share.
    pub(crate) dir: &'a str,
    /// The node's name before its sequence (guid included).
    pub(crate) name: String,
    /// The guid as it appears in `name`.
    pub(crate) guid: String,
    /// The node's data.
    pub(crate) data: &'a [u8],
    /// When the resulting guard counts as lost.
    pub(crate) policy: ConnectionPolicy,
    /// A child of `dir` is a contender if its name carries one of these.
    pub(crate) markers: &'a [&'a str],
    /// The rule deciding who holds.
    pub(crate) blocker: Blocker,
    /// Whether missing parents are created as containers.
    pub(crate) containers: bool,
}

impl Contention<'_> {
    /// Contends; with `wait` false gives up (removing the node) instead of waiting.
    pub(crate) async fn run(self, wait: bool) -> Result<Option<LockGuard>> {
        let client = self.client;
        let mut pending = PendingNode::new(client);
        pending.protect(self.dir, &self.guid);
        let (node, stat) = create_protected(
            client,
            self.dir,
            &self.name,
            &self.guid,
            self.data,
            self.containers,
        )
        .await?;
        pending.arm(&node);
        // The session that owns the node (a retried create may land in a renewed one).
        let session = stat.ephemeral_owner;
        let name = node.rsplit('/').next().unwrap_or_default().to_owned();
        loop {
            let contenders = list_contenders(client, self.dir, self.markers).await?;
            if client.session_id() != session {
                // The node belongs to a session this client no longer has: it is gone or
                // about to be, even if the server that answered has not applied that yet.
                return Err(Error::SessionExpired);
            }
            let Some(index) = contenders.iter().position(|c| *c == name) else {
                // Our node is gone: the session ended (or someone deleted it).
                return Err(
                    if client.session_id() != session
                        || client.state() == State::Lost
                        || client.is_finished()
                    {
                        Error::SessionExpired
                    } else {
                        Error::NoNode { path: node }
                    },
                );
            };
            let Some(blocker) = (self.blocker)(&contenders, index) else {
                if client.state() != State::Connected {
                    // Never acquire through a read-only server (the quorum may be expiring
                    // the session): wait for a read-write one and look again.
                    wait_read_write(client).await?;
                    continue;
                }
                pending.disarm();
                return Ok(Some(LockGuard::new(
                    client,
                    node,
                    stat.czxid,
                    session,
                    self.policy,
                )));
            };
            if !wait {
                // Not ours: the pending guard removes the node on return.
                return Ok(None);
            }
            let blocker = format!("{}/{}", self.dir, contenders[blocker]);
            match retry_on_loss(client, || client.get_data_watch(&blocker)).await {
                Ok((_, _, watcher)) => {
                    tracing::trace!(%node, %blocker, "waiting for the contender ahead");
                    let _ = watcher.await;
                }
                Err(Error::NoNode { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// The contenders under `dir` (children carrying one of `markers`), first first; none if
/// `dir` does not exist.
pub(crate) async fn list_contenders(
    client: &Client,
    dir: &str,
    markers: &[&str],
) -> Result<Vec<String>> {
    match retry_on_loss(client, || client.get_children(dir)).await {
        Ok(children) => Ok(sorted_contenders_any(children, markers)),
        Err(Error::NoNode { .. }) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// A held lock. Dropping it releases the lock (a background delete, retried through
/// connection loss); [`LockGuard::release`] does the same and waits. A release whose future is
/// dropped before the delete is confirmed (a timeout while offline) still deletes the node in
/// the background: the lock is never left held by a live session.
///
/// Guards handed out by a [re-entrant](Lock::reentrant) lock to the same owner share one node:
/// it is deleted when the last of them is released or dropped ([`holds`](Self::holds) counts
/// them).
#[derive(Debug)]
pub struct LockGuard {
    held: Arc<Held>,
}

/// What the guards of one hold share: the node and its monitor.
#[derive(Debug)]
pub(crate) struct Held {
    node: OwnedNode,
    token: i64,
    session_id: i64,
    lost: watch::Receiver<bool>,
    monitor: JoinHandle<()>,
}

impl Drop for Held {
    fn drop(&mut self) {
        // The node, unless its delete was confirmed, goes in the background (`OwnedNode`).
        self.monitor.abort();
    }
}

impl LockGuard {
    /// The guard of `node`, held in `session_id`, watched for loss per `policy`.
    pub(crate) fn new(
        client: &Client,
        node: String,
        token: i64,
        session_id: i64,
        policy: ConnectionPolicy,
    ) -> Self {
        let trust = TrustWatch::new(client, session_id, policy);
        // Known at once, not only when the monitor first runs.
        let (tx, lost) = watch::channel(trust.is_lost_now());
        let monitor = tokio::spawn(monitor(client.clone(), node.clone(), trust, tx));
        LockGuard {
            held: Arc::new(Held {
                node: OwnedNode::new(client, node),
                token,
                session_id,
                lost,
                monitor,
            }),
        }
    }

    /// A handle on the hold that does not keep it alive.
    pub(crate) fn downgrade(&self) -> Weak<Held> {
        Arc::downgrade(&self.held)
    }

    /// A guard of the hold `weak` points at, if a guard of it is still alive.
    pub(crate) fn upgrade(weak: &Weak<Held>) -> Option<Self> {
        weak.upgrade().map(|held| LockGuard { held })
    }

    /// A token strictly increasing across successive holders of this lock (the holder node's
    /// creation zxid): hand it to the resources the lock protects, which refuse older ones.
    pub fn fencing_token(&self) -> i64 {
        self.held.token
    }

    /// The holder node's path.
    pub fn node(&self) -> &str {
        self.held.node.path().unwrap_or_default()
    }

    /// The session the lock was acquired in.
    pub fn session_id(&self) -> i64 {
        self.held.session_id
    }

    /// How many guards share this hold: 1 unless a [re-entrant](Lock::reentrant) lock was
    /// acquired again by its owner (Curator's hold count).
    pub fn holds(&self) -> usize {
        Arc::strong_count(&self.held)
    }

    /// Whether the lock can no longer be trusted.
    pub fn is_lost(&self) -> bool {
        *self.held.lost.borrow()
    }

    /// Resolves when the lock can no longer be trusted: the connection was suspended (per the
    /// policy), the session was lost, or the node disappeared.
    pub async fn lost(&self) {
        let mut rx = self.held.lost.clone();
        let _ = rx.wait_for(|lost| *lost).await;
    }

    /// Releases the lock and waits until its node is deleted (or the session is gone, which
    /// deletes it too). Dropping this future before it finishes still releases the lock, in
    /// the background. A guard sharing its hold with others (re-entrancy) only gives up its
    /// share: the node stays until the last one goes.
    pub async fn release(self) -> Result<()> {
        let Some(mut held) = Arc::into_inner(self.held) else {
            return Ok(());
        };
        held.monitor.abort();
        held.node.delete().await
    }
}

/// Watches what makes a held lock untrustworthy and flips `lost` once.
async fn monitor(client: Client, node: String, mut trust: TrustWatch, lost: watch::Sender<bool>) {
    let deleted = async {
        loop {
            match client.exists_watch(&node).await {
                Ok((None, _)) => return,
                Ok((Some(_), watcher)) => {
                    let event = watcher.await;
                    if event.event_type == crate::proto::EventType::NodeDeleted
                        || event.is_session_end()
                    {
                        return;
                    }
                }
                Err(Error::ConnectionLoss) => {
                    if client.wait_connected().await.is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    };
    tokio::select! {
        biased;
        () = trust.lost() => {}
        () = deleted => {}
    }
    tracing::debug!(%node, "lock no longer trusted");
    let _ = lost.send(true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_guard_made_while_not_connected_reads_lost_at_once() {
        let client = Client::builder("127.0.0.1:1").build().unwrap();
        assert_eq!(client.state(), State::Connecting);
        let guard = LockGuard::new(&client, "/l/x".into(), 1, 0, ConnectionPolicy::default());
        assert!(guard.is_lost(), "before its monitor ever ran");
    }
}
