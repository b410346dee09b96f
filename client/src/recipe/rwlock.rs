//! A distributed read-write lock (Curator's `InterProcessReadWriteLock`): many readers may
//! hold it together, a writer holds it alone.
//!
//! Readers and writers are protected ephemeral sequential nodes in one directory, named as
//! Curator names them so both can share a path: `_c_<guid>-__READ__<seq>` and
//! `_c_<guid>-__WRIT__<seq>`. A reader holds when no writer's node precedes its own; a writer
//! holds when its node is the first. Waiting watches exactly one node, so a release wakes one
//! waiter (or the readers that were waiting for that writer), never the whole queue:
//!
//! - a reader watches the nearest writer ahead of it;
//! - a writer watches its immediate predecessor.
//!
//! The queue is fair: a reader arriving after a waiting writer queues behind it.
//!
//! Both sides hand out a [`LockGuard`]: its fencing token (the node's creation zxid) increases
//! across conflicting holders (a writer and whoever holds before or after it), and
//! [`LockGuard::lost`] resolves when the hold can no longer be trusted, per
//! [`ConnectionPolicy`]. Dropping a guard releases; dropping a pending acquire removes its
//! node. Unlike Curator's, the lock is not re-entrant: a writer asking to [`read`] queues like
//! anyone else. What Curator's re-entrancy is mostly used for, downgrading a write hold to a
//! read hold without letting another writer in between, is explicit here:
//! [`ReadWriteLock::read_with`] takes a read hold at once on the strength of a write guard
//! (then release the write guard), and [`ReadWriteLock::downgrade`] does both. The reader
//! node such a downgrade makes is marked (`_c_<guid>-down__READ__<seq>`, still a reader to
//! Curator), and a zkit writer at the head of the queue also waits for marked readers behind
//! it, so a writer queued before the downgrade cannot take the lock while the downgraded
//! reader holds (Curator's own writers do not know the mark). The other way round (read to
//! write) is not offered: two readers upgrading would wait for each other forever.
//!
//! [`read`]: ReadWriteLock::read

use std::time::Duration;

use super::lock::{list_contenders, Blocker, ConnectionPolicy, Contention, LockGuard};
use super::participant::contender_ids;
use super::protected::{at_most, kazoo_acquire, new_guid, until_held, PROTECTED_PREFIX};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::path::validate_path;

/// The marker of a reader's node (Curator's `READ_LOCK_NAME`).
pub const READ_MARKER: &str = "__READ__";
/// The marker of a writer's node (Curator's `WRITE_LOCK_NAME`).
pub const WRITE_MARKER: &str = "__WRIT__";

const MARKERS: &[&str] = &[READ_MARKER, WRITE_MARKER];

/// What marks a reader node made by a downgrade (it also carries [`READ_MARKER`]).
const DOWNGRADED_MARKER: &str = "down__READ__";

/// Which side of the lock a contender takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Shared with other readers.
    Read,
    /// Exclusive.
    Write,
}

impl Access {
    fn marker(self) -> &'static str {
        match self {
            Access::Read => READ_MARKER,
            Access::Write => WRITE_MARKER,
        }
    }

    /// What a node's name says it is, if it is a contender at all.
    pub fn of(node: &str) -> Option<Access> {
        if node.contains(WRITE_MARKER) {
            Some(Access::Write)
        } else if node.contains(READ_MARKER) {
            Some(Access::Read)
        } else {
            None
        }
    }
}

/// A reader holds unless a writer precedes it; it then waits for the nearest such writer.
fn no_writer_ahead(contenders: &[String], ours: usize) -> Option<usize> {
    contenders
        .get(..ours)?
        .iter()
        .rposition(|c| c.contains(WRITE_MARKER))
}

/// A writer waits for its predecessor; at the head of the queue it still waits for a
/// downgraded reader (which may sit behind it, having been created after it).
fn writer_blocker(contenders: &[String], ours: usize) -> Option<usize> {
    if let Some(before) = ours.checked_sub(1) {
        return Some(before);
    }
    contenders
        .iter()
        .position(|c| c.contains(DOWNGRADED_MARKER))
}

/// A downgrading reader holds at once: the write hold it comes from excludes other writers.
fn holds_at_once(_contenders: &[String], _ours: usize) -> Option<usize> {
    None
}

/// A read-write lock on a path. Cheap to create; every acquire makes a new contender.
#[derive(Debug, Clone)]
pub struct ReadWriteLock {
    client: Client,
    path: String,
    policy: ConnectionPolicy,
    data: Vec<u8>,
    containers: bool,
}

impl ReadWriteLock {
    /// A read-write lock on `path` (created, with parents, on first use).
    pub fn new(client: &Client, path: &str) -> Result<ReadWriteLock> {
        validate_path(path)?;
        Ok(ReadWriteLock {
            client: client.clone(),
            path: path.trim_end_matches('/').to_owned(),
            policy: ConnectionPolicy::default(),
            data: Vec::new(),
            containers: false,
        })
    }

    /// When a held lock counts as lost.
    pub fn policy(mut self, policy: ConnectionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Data stored in each contender's node (e.g. who holds it).
    pub fn data(mut self, data: &[u8]) -> Self {
        self.data = data.to_vec();
        self
    }

    /// Creates the lock's path and its missing parents as container nodes (Curator's
    /// `creatingParentContainersIfNeeded`), so ZooKeeper (3.5+) deletes them once the last
    /// contender is gone. A contender arriving just as the server reaps the empty path may
    /// fail with `NoNode`; acquire again.
    pub fn container_parents(mut self) -> Self {
        self.containers = true;
        self
    }

    /// The lock's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Waits for a shared hold. Dropping the future cancels and removes its node.
    pub async fn read(&self) -> Result<LockGuard> {
        self.acquire(Access::Read).await
    }

    /// Waits for the exclusive hold. Dropping the future cancels and removes its node.
    pub async fn write(&self) -> Result<LockGuard> {
        self.acquire(Access::Write).await
    }

    /// Waits until `access` is granted.
    pub async fn acquire(&self, access: Access) -> Result<LockGuard> {
        until_held(self.contend(access, true)).await
    }

    /// Takes `access` if it is free now (no writer ahead for a reader, nobody ahead for a
    /// writer); `None` otherwise, leaving no node behind.
    pub async fn try_acquire(&self, access: Access) -> Result<Option<LockGuard>> {
        self.contend(access, false).await
    }

    /// Waits at most `timeout` for `access`; `None` if it did not come (the node is removed).
    pub async fn acquire_timeout(
        &self,
        access: Access,
        timeout: Duration,
    ) -> Result<Option<LockGuard>> {
        at_most(timeout, self.acquire(access)).await
    }

    /// The contenders' node names (readers and writers), in queue order.
    pub async fn contenders(&self) -> Result<Vec<String>> {
        list_contenders(&self.client, &self.path, MARKERS).await
    }

    /// The contenders' ids (the [`data`](Self::data) each one stored, read as UTF-8), readers
    /// and writers, in queue order (Kazoo's `contenders()`). A contender that leaves while
    /// the list is read is left out.
    pub async fn contender_ids(&self) -> Result<Vec<String>> {
        contender_ids(&self.client, &self.path, MARKERS).await
    }

    /// The read side as its own handle (Kazoo's `ReadLock`).
    pub fn read_lock(&self) -> SideLock {
        SideLock {
            lock: self.clone(),
            access: Access::Read,
        }
    }

    /// The write side as its own handle (Kazoo's `WriteLock`).
    pub fn write_lock(&self) -> SideLock {
        SideLock {
            lock: self.clone(),
            access: Access::Write,
        }
    }

    /// Takes a read hold at once on the strength of `write`, a write guard of this lock held
    /// by this client (Curator's re-entrant read by the write holder): release `write`
    /// afterwards to downgrade without ever letting another writer in. Errors with
    /// `InvalidArgument` if `write` is not a live write hold of this lock in the current
    /// session.
    pub async fn read_with(&self, write: &LockGuard) -> Result<LockGuard> {
        let node = write.node();
        let ours = node
            .strip_prefix(self.path.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|name| !name.contains('/'));
        if ours.and_then(Access::of) != Some(Access::Write)
            || write.is_lost()
            || write.session_id() != self.client.session_id()
        {
            return Err(Error::InvalidArgument(format!(
                "{node} is not a live write hold of {}",
                self.path
            )));
        }
        until_held(self.contend_as(DOWNGRADED_MARKER, holds_at_once, true)).await
    }

    /// Downgrades a write hold to a read hold (Curator's write-to-read downgrade): takes the
    /// read hold with [`read_with`](Self::read_with), then releases `write`. No writer can
    /// take the lock in between, and readers waiting behind the writer get in at once. If
    /// the read hold cannot be taken, `write` is released (dropped) and the error returned.
    pub async fn downgrade(&self, write: LockGuard) -> Result<LockGuard> {
        let read = self.read_with(&write).await?;
        write.release().await?;
        Ok(read)
    }

    async fn contend(&self, access: Access, wait: bool) -> Result<Option<LockGuard>> {
        match access {
            Access::Read => {
                self.contend_as(access.marker(), no_writer_ahead, wait)
                    .await
            }
            Access::Write => self.contend_as(access.marker(), writer_blocker, wait).await,
        }
    }

    async fn contend_as(
        &self,
        marker: &str,
        blocker: Blocker,
        wait: bool,
    ) -> Result<Option<LockGuard>> {
        let guid = new_guid(&self.client);
        Contention {
            client: &self.client,
            dir: &self.path,
            name: format!("{PROTECTED_PREFIX}{guid}-{marker}"),
            guid,
            data: &self.data,
            policy: self.policy,
            markers: MARKERS,
            blocker,
            containers: self.containers,
        }
        .run(wait)
        .await
    }
}

/// One side of a [`ReadWriteLock`] as a lock of its own, shaped like Kazoo's `ReadLock` and
/// `WriteLock` (from [`ReadWriteLock::read_lock`] and [`ReadWriteLock::write_lock`]): thin
/// wrappers over the read-write lock's methods for that side.
#[derive(Debug, Clone)]
pub struct SideLock {
    lock: ReadWriteLock,
    access: Access,
}

impl SideLock {
    /// Which side this is.
    pub fn access(&self) -> Access {
        self.access
    }

    /// The read-write lock this is a side of.
    pub fn lock(&self) -> &ReadWriteLock {
        &self.lock
    }

    /// Waits until this side is granted ([`ReadWriteLock::acquire`]).
    pub async fn acquire(&self) -> Result<LockGuard> {
        self.lock.acquire(self.access).await
    }

    /// Takes this side if it is free now ([`ReadWriteLock::try_acquire`]).
    pub async fn try_acquire(&self) -> Result<Option<LockGuard>> {
        self.lock.try_acquire(self.access).await
    }

    /// Kazoo's `acquire(blocking, timeout)`: not `blocking`, one try (`timeout` ignored);
    /// blocking, waits at most `timeout`, or for good without one (always `Some`).
    pub async fn acquire_with(
        &self,
        blocking: bool,
        timeout: Option<Duration>,
    ) -> Result<Option<LockGuard>> {
        kazoo_acquire(blocking, timeout, self.try_acquire(), self.acquire()).await
    }

    /// Kazoo's `contenders()`: the ids of every contender of the lock (both sides), in queue
    /// order ([`ReadWriteLock::contender_ids`]).
    pub async fn contenders(&self) -> Result<Vec<String>> {
        self.lock.contender_ids().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::lock::first_holds;

    fn names(kinds: &str) -> Vec<String> {
        kinds
            .chars()
            .enumerate()
            .map(|(i, k)| {
                let marker = if k == 'w' { WRITE_MARKER } else { READ_MARKER };
                format!("_c_g{i}-{marker}{i:010}")
            })
            .collect()
    }

    #[test]
    fn readers_wait_only_for_the_nearest_writer_ahead() {
        let c = names("rrwrrwr");
        assert_eq!(no_writer_ahead(&c, 0), None);
        assert_eq!(no_writer_ahead(&c, 1), None);
        assert_eq!(no_writer_ahead(&c, 3), Some(2));
        assert_eq!(no_writer_ahead(&c, 4), Some(2));
        assert_eq!(no_writer_ahead(&c, 6), Some(5));
        assert_eq!(first_holds(&c, 0), None);
        assert_eq!(first_holds(&c, 2), Some(1));
        assert_eq!(Access::of(&c[2]), Some(Access::Write));
        assert_eq!(Access::of(&c[0]), Some(Access::Read));
        assert_eq!(Access::of("other"), None);
        assert_eq!(writer_blocker(&c, 0), None);
        assert_eq!(writer_blocker(&c, 2), Some(1));
    }

    #[test]
    fn a_writer_at_the_head_waits_for_a_downgraded_reader_behind_it() {
        let mut c = names("wr");
        c.push(format!("_c_gd-{DOWNGRADED_MARKER}0000000009"));
        assert_eq!(Access::of(&c[2]), Some(Access::Read));
        assert_eq!(writer_blocker(&c, 0), Some(2));
        assert_eq!(no_writer_ahead(&c[1..], 0), None);
    }
}
