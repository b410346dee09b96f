//! A distributed queue (Kazoo's `Queue`): each entry is a persistent sequential node
//! `entry-<priority>-<seq>` under the queue's path (priority 0 to 999, lower first, 100 by
//! default), so sorting the names gives priority order, then arrival order. A consumer takes
//! the first entry by deleting it; if someone else deleted it first (`NoNode`), it tries the
//! next one.
//!
//! Delivery is at least once when a reply is lost: a delete whose reply was lost and whose
//! node is gone afterwards (read after a `sync`, so a lagging follower cannot hide the
//! delete) counts as taken by this consumer (it may have been another's).
//! Use [`LockingQueue`](super::LockingQueue) when an entry must be processed before it leaves
//! the queue.

use std::time::Duration;

use super::protected::{at_most, catch_up, retry_on_loss};
use crate::client::{Client, CreateOptions};
use crate::error::{Error, Result};
use crate::path::validate_path;
use crate::proto::CreateMode;
use crate::watch::Watcher;

/// The prefix of every entry's name.
pub(crate) const ENTRY_PREFIX: &str = "entry-";

/// The priority [`Queue::put`] uses.
pub const DEFAULT_PRIORITY: u16 = 100;

/// The name prefix of an entry of `priority` (`entry-042-`), checking the range.
pub(crate) fn entry_name(priority: u16) -> Result<String> {
    if priority > 999 {
        return Err(Error::InvalidArgument(format!(
            "queue priority {priority} is not within 0..=999"
        )));
    }
    Ok(format!("{ENTRY_PREFIX}{priority:03}-"))
}

/// The entries among `children`, first to take first.
pub(crate) fn sorted_entries(children: Vec<String>) -> Vec<String> {
    let mut entries: Vec<String> = children
        .into_iter()
        .filter(|c| c.starts_with(ENTRY_PREFIX))
        .collect();
    entries.sort();
    entries
}

/// Creates `dir` (with parents) unless it exists, through connection loss.
pub(crate) async fn ensure_dir(client: &Client, dir: &str) -> Result<()> {
    retry_on_loss(client, || client.ensure_path(dir)).await
}

/// Adds an entry of `priority` holding `data` under `dir`; returns its path. A create whose
/// reply is lost is sent again (a sequential create cannot be looked up), so an entry may be
/// enqueued twice in that case.
pub(crate) async fn put_entry(
    client: &Client,
    dir: &str,
    data: &[u8],
    priority: u16,
) -> Result<String> {
    let path = format!("{dir}/{}", entry_name(priority)?);
    let opts = CreateOptions::new(CreateMode::PersistentSequential).create_parents();
    retry_on_loss(client, || client.create_with(&path, data, &opts))
        .await
        .map(|(path, _)| path)
}

/// A queue of byte strings on a path.
#[derive(Debug, Clone)]
pub struct Queue {
    client: Client,
    path: String,
}

impl Queue {
    /// A queue at `path` (created, with parents, on first use).
    pub fn new(client: &Client, path: &str) -> Result<Queue> {
        validate_path(path)?;
        Ok(Queue {
            client: client.clone(),
            path: path.trim_end_matches('/').to_owned(),
        })
    }

    /// The queue's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Adds `data` at the default priority; returns the entry's path.
    pub async fn put(&self, data: &[u8]) -> Result<String> {
        self.put_with_priority(data, DEFAULT_PRIORITY).await
    }

    /// Adds `data` at `priority` (0 to 999, lower is taken first); returns the entry's path.
    pub async fn put_with_priority(&self, data: &[u8], priority: u16) -> Result<String> {
        put_entry(&self.client, &self.path, data, priority).await
    }

    /// The number of entries.
    pub async fn len(&self) -> Result<usize> {
        Ok(self.entries().await?.len())
    }

    /// Whether the queue has no entries.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    async fn entries(&self) -> Result<Vec<String>> {
        match retry_on_loss(&self.client, || self.client.get_children(&self.path)).await {
            Ok(children) => Ok(sorted_entries(children)),
            Err(Error::NoNode { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Takes the first entry, `None` if the queue is empty.
    pub async fn get(&self) -> Result<Option<Vec<u8>>> {
        loop {
            let entries = self.entries().await?;
            if entries.is_empty() {
                return Ok(None);
            }
            if let Some(data) = self.take_first_of(&entries).await? {
                return Ok(Some(data));
            }
            // Every entry listed was taken by others meanwhile: list again.
        }
    }

    /// Waits for an entry and takes it. Each wake-up comes from a children watch set with the
    /// listing, so an entry added at any time is seen and nothing polls. Dropping the future
    /// while it deletes an entry may lose that entry (taking is destructive: see
    /// [`LockingQueue`](super::LockingQueue) for a queue that is safe to cancel).
    pub async fn get_blocking(&self) -> Result<Vec<u8>> {
        ensure_dir(&self.client, &self.path).await?;
        loop {
            let (children, watcher) = self.list_watch().await?;
            let entries = sorted_entries(children);
            if let Some(data) = self.take_first_of(&entries).await? {
                return Ok(data);
            }
            let event = watcher.await;
            if event.is_session_end() && self.client.is_finished() {
                return Err(Error::SessionExpired);
            }
        }
    }

    /// Waits at most `timeout` for an entry; `None` if none came.
    pub async fn get_timeout(&self, timeout: Duration) -> Result<Option<Vec<u8>>> {
        at_most(timeout, self.get_blocking()).await
    }

    async fn list_watch(&self) -> Result<(Vec<String>, Watcher)> {
        loop {
            match retry_on_loss(&self.client, || self.client.get_children_watch(&self.path)).await {
                Err(Error::NoNode { .. }) => ensure_dir(&self.client, &self.path).await?,
                other => return other,
            }
        }
    }

    /// Takes the first of `entries` still there, `None` if all are gone.
    async fn take_first_of(&self, entries: &[String]) -> Result<Option<Vec<u8>>> {
        for name in entries {
            let node = format!("{}/{name}", self.path);
            let data = match retry_on_loss(&self.client, || self.client.get_data(&node)).await {
                Ok((data, _)) => data,
                Err(Error::NoNode { .. }) => continue,
                Err(e) => return Err(e),
            };
            loop {
                match self.client.delete(&node, None).await {
                    Ok(()) => return Ok(Some(data)),
                    // Someone else took it: try the next.
                    Err(Error::NoNode { .. }) => break,
                    Err(Error::ConnectionLoss) => {
                        self.client.wait_connected().await?;
                        // A lagging follower may still show the entry we deleted: deleting
                        // it again would fail and hand the entry to nobody.
                        catch_up(&self.client, &node).await?;
                        match retry_on_loss(&self.client, || self.client.exists(&node)).await? {
                            Some(_) => continue,
                            None => {
                                tracing::debug!(%node, "queue entry gone after a lost reply: taken");
                                return Ok(Some(data));
                            }
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_priority_then_sequence() {
        assert_eq!(entry_name(7).ok().as_deref(), Some("entry-007-"));
        assert!(entry_name(1000).is_err());
        let sorted = sorted_entries(vec![
            "entry-100-0000000001".into(),
            "entry-005-0000000009".into(),
            "taken".into(),
            "entry-100-0000000000".into(),
        ]);
        assert_eq!(
            sorted,
            [
                "entry-005-0000000009",
                "entry-100-0000000000",
                "entry-100-0000000001"
            ]
        );
    }
}
