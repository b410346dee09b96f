//! A counting semaphore shared by many clients (Curator's `InterProcessSemaphoreV2`): at most
//! `max_leases` [`Lease`]s exist at once.
//!
//! Layout, as Curator's so both can share a path:
//!
//! ```text
//! {path}/locks/_c_<guid>-lock-<seq>    an internal Lock serialising acquirers
//! {path}/leases/_c_<guid>-lease-<seq>  one protected ephemeral node per lease
//! ```
//!
//! An acquirer first takes the internal lock, then creates its lease node and, still holding
//! the lock, waits (with a children watch: only the lock holder waits, so no herd) until at
//! most `max_leases` lease nodes exist, its own included; then it releases the lock and keeps
//! the lease. Since only the lock holder adds a lease and counts after adding it, the
//! semaphore never issues more than `max_leases`.
//!
//! A lease lives as long as its node: dropping the [`Lease`] (or [`Lease::release`]) deletes
//! it, a lost session deletes it too, and [`Lease::lost`] says when it can no longer be trusted
//! (per [`ConnectionPolicy`]). Dropping a pending acquire removes its lock and lease nodes.

use std::time::Duration;

use super::lock::{ConnectionPolicy, Lock, LockGuard};
use super::participant::contender_ids;
use super::protected::{
    at_most, create_protected, kazoo_acquire, new_guid, retry_on_loss, sorted_contenders,
    until_held, PendingNode, PROTECTED_PREFIX,
};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::path::validate_path;

/// The marker before the sequence in a lease node's name (Curator's `lease-`).
const LEASE_MARKER: &str = "lease-";

/// A semaphore with a fixed number of leases on a path. Cheap to create and to clone.
#[derive(Debug, Clone)]
pub struct Semaphore {
    client: Client,
    path: String,
    leases: String,
    lock: Lock,
    max_leases: usize,
    policy: ConnectionPolicy,
    data: Vec<u8>,
    containers: bool,
}

impl Semaphore {
    /// A semaphore of `max_leases` leases on `path` (created, with parents, on first use).
    /// Every participant must agree on `max_leases`.
    pub fn new(client: &Client, path: &str, max_leases: usize) -> Result<Semaphore> {
        validate_path(path)?;
        if max_leases == 0 {
            return Err(Error::InvalidArgument(
                "a semaphore needs at least one lease".into(),
            ));
        }
        let path = path.trim_end_matches('/').to_owned();
        Ok(Semaphore {
            client: client.clone(),
            leases: format!("{path}/leases"),
            // Losing the internal lock matters only through the session: the lease count is
            // re-read after every change, and a lost session takes our lease node with it.
            lock: Lock::new(client, &format!("{path}/locks"))?
                .policy(ConnectionPolicy::OnlySessionLoss),
            path,
            max_leases,
            policy: ConnectionPolicy::default(),
            data: Vec::new(),
            containers: false,
        })
    }

    /// When a held lease counts as lost.
    pub fn policy(mut self, policy: ConnectionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Data stored in each lease node (e.g. who holds it).
    pub fn data(mut self, data: &[u8]) -> Self {
        self.data = data.to_vec();
        self
    }

    /// Creates the semaphore's path, its `locks` and `leases` directories and their missing
    /// parents as container nodes (Curator's `creatingParentContainersIfNeeded`), so
    /// ZooKeeper (3.5+) deletes them once nobody uses the semaphore. An acquirer arriving just
    /// as the server reaps them may fail with `NoNode`; acquire again.
    pub fn container_parents(mut self) -> Self {
        self.lock = self.lock.container_parents();
        self.containers = true;
        self
    }

    /// The semaphore's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// How many leases the semaphore has.
    pub fn max_leases(&self) -> usize {
        self.max_leases
    }

    /// Waits for a lease. Dropping the future cancels and removes its nodes.
    pub async fn acquire(&self) -> Result<Lease> {
        until_held(self.acquire_inner(true)).await
    }

    /// Takes a lease if one is free now and no other acquirer is being served; `None`
    /// otherwise, leaving no node behind.
    pub async fn try_acquire(&self) -> Result<Option<Lease>> {
        self.acquire_inner(false).await
    }

    /// Waits at most `timeout` for a lease; `None` if none came (its nodes are removed).
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<Option<Lease>> {
        at_most(timeout, self.acquire()).await
    }

    /// Kazoo's `Semaphore.acquire(blocking, timeout)`: not `blocking`, [`try_acquire`]
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
    ) -> Result<Option<Lease>> {
        kazoo_acquire(blocking, timeout, self.try_acquire(), self.acquire()).await
    }

    /// The lease nodes' names, oldest first.
    pub async fn leases(&self) -> Result<Vec<String>> {
        match retry_on_loss(&self.client, || self.client.get_children(&self.leases)).await {
            Ok(children) => Ok(sorted_contenders(children, LEASE_MARKER)),
            Err(Error::NoNode { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The lease holders' ids (the [`data`](Self::data) each stored in its lease node, read
    /// as UTF-8), oldest lease first: Kazoo's `Semaphore.lease_holders()`. A lease released
    /// while the list is read is left out.
    pub async fn lease_holders(&self) -> Result<Vec<String>> {
        contender_ids(&self.client, &self.leases, &[LEASE_MARKER]).await
    }

    async fn acquire_inner(&self, wait: bool) -> Result<Option<Lease>> {
        let client = &self.client;
        let lock = if wait {
            self.lock.acquire().await?
        } else {
            match self.lock.try_acquire().await? {
                Some(lock) => lock,
                None => return Ok(None),
            }
        };
        let guid = new_guid(client);
        let mut pending = PendingNode::new(client);
        pending.protect(&self.leases, &guid);
        let name = format!("{PROTECTED_PREFIX}{guid}-{LEASE_MARKER}");
        let (node, stat) = create_protected(
            client,
            &self.leases,
            &name,
            &guid,
            &self.data,
            self.containers,
        )
        .await?;
        pending.arm(&node);
        // The session that owns the node (a retried create may land in a renewed one).
        let session = stat.ephemeral_owner;
        if session != lock.session_id() {
            // The lease was made in a later session than the internal lock, which went with
            // the earlier one: another acquirer may hold it now and add its own lease, and
            // with both counting each other neither would ever get one. Start over instead.
            tracing::debug!(%node, "lease made in a session that lost the internal lock");
            return Err(Error::SessionExpired);
        }
        let name = node.rsplit('/').next().unwrap_or_default().to_owned();
        loop {
            let (children, watcher) =
                retry_on_loss(client, || client.get_children_watch(&self.leases)).await?;
            if lock.is_lost() {
                // The internal lock's node went (its session ended, or someone deleted it):
                // other acquirers may be adding leases, so counting is no longer safe.
                return Err(
                    if client.session_id() != lock.session_id() || client.is_finished() {
                        Error::SessionExpired
                    } else {
                        Error::NoNode {
                            path: lock.node().to_owned(),
                        }
                    },
                );
            }
            if client.session_id() != session {
                // The lease node belongs to a session this client no longer has.
                return Err(Error::SessionExpired);
            }
            if !children.contains(&name) {
                // Our lease node is gone: the session ended (or someone deleted it).
                return Err(if client.session_id() != session || client.is_finished() {
                    Error::SessionExpired
                } else {
                    Error::NoNode { path: node }
                });
            }
            // Every child counts, as in Curator: a stranger's node is not a free lease.
            if children.len() <= self.max_leases {
                break;
            }
            if !wait {
                // Full: the pending guard removes the lease node, the lock guard the lock's.
                return Ok(None);
            }
            tracing::trace!(%node, held = children.len(), "semaphore full, waiting");
            // Waiting is only safe while the internal lock keeps other acquirers out.
            tokio::select! {
                biased;
                // Looked at again at the top of the loop.
                () = lock.lost() => tracing::debug!(%node, "internal lock lost while waiting"),
                _ = watcher => {}
            }
        }
        pending.disarm();
        let lease = Lease {
            guard: LockGuard::new(client, node, stat.czxid, session, self.policy),
        };
        // The next acquirer may go; the lock node is deleted in the background.
        drop(lock);
        Ok(Some(lease))
    }
}

/// A held lease. Dropping it gives the lease back (a background delete, retried through
/// connection loss); [`Lease::release`] does the same and waits.
#[derive(Debug)]
pub struct Lease {
    guard: LockGuard,
}

impl Lease {
    /// The lease node's path.
    pub fn node(&self) -> &str {
        self.guard.node()
    }

    /// The session the lease was taken in.
    pub fn session_id(&self) -> i64 {
        self.guard.session_id()
    }

    /// The lease node's creation zxid: increases with every lease issued.
    pub fn token(&self) -> i64 {
        self.guard.fencing_token()
    }

    /// Whether the lease can no longer be trusted.
    pub fn is_lost(&self) -> bool {
        self.guard.is_lost()
    }

    /// Resolves when the lease can no longer be trusted: the connection was suspended (per
    /// the policy), the session was lost, or the node disappeared.
    pub async fn lost(&self) {
        self.guard.lost().await;
    }

    /// Gives the lease back and waits until its node is deleted (or the session is gone).
    pub async fn release(self) -> Result<()> {
        self.guard.release().await
    }
}
