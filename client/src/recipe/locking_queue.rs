//! A queue whose entries stay until processed (Kazoo's `LockingQueue`): entries are persistent
//! sequential nodes `{path}/entries/entry-<priority>-<seq>`; a consumer takes the first entry
//! nobody has locked by creating the ephemeral node `{path}/taken/<entry name>` (holding the
//! consumer's id), works on it, then either consumes it (entry and lock deleted in one
//! transaction) or releases it (lock deleted, entry back in the queue). A consumer that dies
//! gives its entry back by itself: its lock node goes with its session.
//!
//! A consume whose reply is lost is resolved exactly: the lock node is this session's and only
//! the transaction deletes it, so its absence afterwards means the transaction applied.

use std::time::Duration;

use super::protected::{
    at_most, catch_up, create_ephemeral_once, delete_owned_in_background, new_guid, retry_on_loss,
    OwnedNode,
};
use super::queue::{ensure_dir, put_entry, sorted_entries, DEFAULT_PRIORITY};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::op::Op;
use crate::path::validate_path;
use crate::watch::Watcher;

/// A locking queue of byte strings on a path.
#[derive(Debug, Clone)]
pub struct LockingQueue {
    client: Client,
    path: String,
    entries: String,
    taken: String,
    id: Vec<u8>,
}

impl LockingQueue {
    /// A locking queue at `path` (its `entries` and `taken` children are created on first use).
    pub fn new(client: &Client, path: &str) -> Result<LockingQueue> {
        validate_path(path)?;
        let path = path.trim_end_matches('/').to_owned();
        Ok(LockingQueue {
            client: client.clone(),
            entries: format!("{path}/entries"),
            taken: format!("{path}/taken"),
            path,
            id: new_guid(client).replace('-', "").into_bytes(),
        })
    }

    /// The queue's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// This consumer's id, stored in the lock nodes it creates.
    pub fn id(&self) -> &[u8] {
        &self.id
    }

    /// Adds `data` at the default priority; returns the entry's path.
    pub async fn put(&self, data: &[u8]) -> Result<String> {
        self.put_with_priority(data, DEFAULT_PRIORITY).await
    }

    /// Adds `data` at `priority` (0 to 999, lower is taken first); returns the entry's path.
    pub async fn put_with_priority(&self, data: &[u8], priority: u16) -> Result<String> {
        put_entry(&self.client, &self.entries, data, priority).await
    }

    /// The number of entries, locked ones included.
    pub async fn len(&self) -> Result<usize> {
        match retry_on_loss(&self.client, || self.client.get_children(&self.entries)).await {
            Ok(children) => Ok(sorted_entries(children).len()),
            Err(Error::NoNode { .. }) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Whether the queue has no entries.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// Waits for an entry nobody holds and locks it. Each wake-up comes from a children watch
    /// on the entries or on the locks (an entry added, or one given back), set with the
    /// listing; nothing polls. Dropping the future leaves no lock behind.
    pub async fn get(&self) -> Result<LockedEntry> {
        ensure_dir(&self.client, &self.entries).await?;
        ensure_dir(&self.client, &self.taken).await?;
        loop {
            let (entries, entries_changed) = self.list_watch(&self.entries).await?;
            let (taken, taken_changed) = self.list_watch(&self.taken).await?;
            let available = sorted_entries(entries)
                .into_iter()
                .filter(|e| !taken.contains(e));
            for name in available {
                if let Some(entry) = self.take(&name).await? {
                    return Ok(entry);
                }
            }
            tokio::select! {
                biased;
                e = entries_changed => self.check_session(e.is_session_end())?,
                e = taken_changed => self.check_session(e.is_session_end())?,
            }
        }
    }

    /// Waits at most `timeout` for an entry; `None` if none came.
    pub async fn get_timeout(&self, timeout: Duration) -> Result<Option<LockedEntry>> {
        at_most(timeout, self.get()).await
    }

    fn check_session(&self, session_event: bool) -> Result<()> {
        if session_event && self.client.is_finished() {
            Err(Error::SessionExpired)
        } else {
            Ok(())
        }
    }

    async fn list_watch(&self, dir: &str) -> Result<(Vec<String>, Watcher)> {
        loop {
            match retry_on_loss(&self.client, || self.client.get_children_watch(dir)).await {
                Err(Error::NoNode { .. }) => ensure_dir(&self.client, dir).await?,
                other => return other,
            }
        }
    }

    /// Locks entry `name` and reads it; `None` if it is locked by someone else or gone.
    async fn take(&self, name: &str) -> Result<Option<LockedEntry>> {
        let lock = format!("{}/{name}", self.taken);
        let entry = format!("{}/{name}", self.entries);
        // Cancelled while the create is in flight, the lock may exist unknown to anyone: the
        // guard then removes it if this session owns it (never another consumer's).
        let mut in_flight = InFlightLock {
            client: self.client.clone(),
            path: Some(lock.clone()),
        };
        let created = create_ephemeral_once(&self.client, &lock, &self.id).await;
        in_flight.path = None;
        let stat = match created {
            Ok(stat) => stat,
            Err(Error::NodeExists { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        // From here on the lock is ours: it must not outlive a failure or a cancellation.
        let mut held = LockedEntry {
            client: self.client.clone(),
            entry,
            lock: OwnedNode::shared_name(&self.client, lock, stat.ephemeral_owner, stat.version),
            lock_version: stat.version,
            session_id: stat.ephemeral_owner,
            data: Vec::new(),
        };
        match retry_on_loss(&self.client, || self.client.get_data(&held.entry)).await {
            Ok((data, _)) => {
                held.data = data;
                Ok(Some(held))
            }
            // Consumed between the listing and the lock: the guard drops the lock.
            Err(Error::NoNode { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// An entry locked by this consumer. Dropping it without [`consume`](Self::consume) gives the
/// entry back (like [`release`](Self::release), in the background); so does a `consume` or
/// `release` whose future is dropped before its outcome is known (a consume that applied
/// meanwhile is then left as it is: its lock is gone).
#[derive(Debug)]
pub struct LockedEntry {
    client: Client,
    entry: String,
    /// The lock node: owned until its delete (by `release` or by the consume transaction) is
    /// confirmed.
    lock: OwnedNode,
    lock_version: i32,
    session_id: i64,
    data: Vec<u8>,
}

impl LockedEntry {
    /// The entry's data.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The entry's path.
    pub fn path(&self) -> &str {
        &self.entry
    }

    /// Whether the lock is still this consumer's (its node exists and belongs to the session
    /// that took it).
    pub async fn holds_lock(&self) -> Result<bool> {
        let Some(lock) = self.lock.path() else {
            return Ok(false);
        };
        let stat = retry_on_loss(&self.client, || self.client.exists(lock)).await?;
        Ok(stat.is_some_and(|s| s.ephemeral_owner == self.session_id))
    }

    /// Removes the entry from the queue for good (entry and lock in one transaction).
    /// `false` if the lock was lost first (the session ended, so the entry went back to the
    /// queue for another consumer). When the reply is lost and the session ends before the
    /// outcome can be read, the error (`SessionExpired`, or the session's end) means the
    /// entry may or may not have been consumed by this call; an entry still queued is
    /// reported as `false`.
    pub async fn consume(mut self) -> Result<bool> {
        let Some(lock) = self.lock.path().map(str::to_owned) else {
            return Ok(false);
        };
        if self.client.session_id() != self.session_id {
            // Our lock went (or goes) with the earlier session.
            self.lock.forget();
            return Ok(false);
        }
        let ops = [
            Op::delete(&self.entry, None),
            Op::delete(&lock, Some(self.lock_version)),
        ];
        // Until an outcome is known the lock stays owned: dropped half-way, this gives the
        // entry back in the background (or finds the lock gone if the transaction applied).
        let consumed = loop {
            match self.client.multi(&ops).await {
                Ok(_) => break Ok(true),
                Err(Error::ConnectionLoss) => {
                    // The transaction may have applied: until we know, the outcome is an
                    // error, never a guess.
                    if let Err(e) = self.client.wait_connected().await {
                        break Err(e);
                    }
                    if self.client.session_id() != self.session_id {
                        // Our lock went with the expired session whether or not the
                        // transaction applied, so only the entry can tell.
                        break self.outcome_in_new_session().await;
                    }
                    // In our session only this transaction deletes our lock: gone means it
                    // applied (read after a sync: a lagging follower may still show it).
                    let read = match catch_up(&self.client, &lock).await {
                        Ok(()) => retry_on_loss(&self.client, || self.client.exists(&lock)).await,
                        Err(e) => Err(e),
                    };
                    match read {
                        Ok(None) => break Ok(true),
                        Ok(Some(s)) if s.ephemeral_owner == self.session_id => continue,
                        Ok(Some(_)) => break Ok(false),
                        Err(e) => break Err(e),
                    }
                }
                Err(Error::MultiFailed { index: 1, .. }) => break Ok(false),
                Err(Error::MultiFailed { index: 0, .. }) => {
                    // The entry vanished (deleted outside the recipe): drop our lock too.
                    self.lock.delete().await?;
                    return Ok(false);
                }
                Err(Error::SessionExpired | Error::Closed) => break Ok(false),
                Err(e) => return Err(e),
            }
        };
        self.lock.forget();
        consumed
    }

    /// What a consume whose reply was lost did, once the client is in a new session (the
    /// old one, and our lock with it, expired): the entry still there means it was not
    /// consumed (`false`); gone, it was consumed by us or, after our lock expired, by another
    /// consumer, which cannot be told apart: `SessionExpired`, the outcome unknown.
    async fn outcome_in_new_session(&self) -> Result<bool> {
        catch_up(&self.client, &self.entry).await?;
        match retry_on_loss(&self.client, || self.client.exists(&self.entry)).await? {
            Some(_) => Ok(false),
            None => Err(Error::SessionExpired),
        }
    }

    /// Gives the entry back to the queue and waits until the lock is gone. Dropping this
    /// future before it finishes still gives the entry back, in the background.
    pub async fn release(mut self) -> Result<()> {
        self.lock.delete().await
    }
}

/// A lock create that has not finished.
struct InFlightLock {
    client: Client,
    path: Option<String>,
}

impl Drop for InFlightLock {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            // Whatever session the create landed in is the client's when the lookup runs.
            delete_owned_in_background(self.client.clone(), path, None);
        }
    }
}
