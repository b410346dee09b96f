//! A local mirror of a subtree (Curator's `TreeCache`), kept up to date by one
//! persistent-recursive watch on its root instead of a watch per node.
//!
//! The cache adds the watch first, then walks the tree (so nothing changed during the walk is
//! missed: its event arrives after), and from then on applies each event by reading the
//! node's current state: a created or changed node is read again (and counted as changed only
//! if its modification zxid moved), a deleted one drops its whole subtree. ZooKeeper restores
//! a persistent watch after a reconnect but does not replay what its descendants went through
//! meanwhile, so after every reconnect the cache walks the tree again and reports the
//! difference. Events arrive on a stream of [`TreeEvent`]s; [`TreeCache::get`],
//! [`TreeCache::children`] and [`TreeCache::snapshot`] read the mirror at any time.
//!
//! A node's mirrored Stat is the one read with its data; the child fields (`num_children`,
//! `cversion`, `pzxid`) may lag, as a persistent-recursive watch does not report children
//! changes (the children themselves are mirrored exactly).
//!
//! The cache runs on its own task; the stream ends when the client's session does. Events
//! queue until read.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::data_watch::NodeValue;
use super::protected::retry_on_loss;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::path::validate_path;
use crate::proto::{AddWatchMode, EventType};
use crate::state::State;
use crate::watch::PersistentWatcher;

/// A change to the mirror, or a milestone of its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeEvent {
    /// A node appeared.
    Added {
        /// Its path.
        path: String,
        /// Its data and Stat.
        value: NodeValue,
    },
    /// A node's data (or Stat) changed.
    Updated {
        /// Its path.
        path: String,
        /// Its new data and Stat.
        value: NodeValue,
    },
    /// A node disappeared.
    Removed {
        /// Its path.
        path: String,
        /// Its last value in the mirror.
        value: NodeValue,
    },
    /// The first walk of the tree is complete: the mirror holds the whole subtree.
    Initialized,
    /// A walk after a reconnect is complete: changes missed while away have been reported.
    Resynced,
}

type Mirror = Arc<Mutex<BTreeMap<String, NodeValue>>>;

/// A mirror of the subtree at a path. Dropping it stops watching.
#[derive(Debug)]
pub struct TreeCache {
    root: String,
    mirror: Mirror,
    rx: mpsc::UnboundedReceiver<TreeEvent>,
    task: JoinHandle<()>,
}

impl TreeCache {
    /// Starts mirroring the subtree at `path` (which need not exist yet). Returns once the
    /// watch is set; the mirror fills as the walk goes, then [`TreeEvent::Initialized`] comes.
    pub async fn start(client: &Client, path: &str) -> Result<TreeCache> {
        validate_path(path)?;
        let root = if path == "/" {
            path.to_owned()
        } else {
            path.trim_end_matches('/').to_owned()
        };
        // Subscribe before the watch is set so that no reconnect goes unseen.
        let states = client.state_changes();
        let watcher = retry_on_loss(client, || {
            client.add_watch(&root, AddWatchMode::PersistentRecursive)
        })
        .await?;
        let mirror: Mirror = Arc::default();
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(
            Sync {
                client: client.clone(),
                root: root.clone(),
                mirror: mirror.clone(),
                tx,
            },
            watcher,
            states,
        ));
        Ok(TreeCache {
            root,
            mirror,
            rx,
            task,
        })
    }

    /// The mirrored subtree's root.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The next event; `None` once the session has ended (or the cache failed).
    pub async fn next(&mut self) -> Option<TreeEvent> {
        self.rx.recv().await
    }

    /// The mirrored value of `path`, if the node is in the mirror.
    pub fn get(&self, path: &str) -> Option<NodeValue> {
        lock(&self.mirror).get(path).cloned()
    }

    /// The names of `path`'s children in the mirror (sorted), `None` if `path` is not in it.
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        let mirror = lock(&self.mirror);
        mirror.get(path)?;
        let prefix = child_prefix(path);
        Some(
            mirror
                .range(prefix.clone()..)
                .map(|(p, _)| p)
                .take_while(|p| p.starts_with(&prefix))
                .filter_map(|p| p.get(prefix.len()..))
                .filter(|name| !name.is_empty() && !name.contains('/'))
                .map(str::to_owned)
                .collect(),
        )
    }

    /// A copy of the whole mirror, by path.
    pub fn snapshot(&self) -> BTreeMap<String, NodeValue> {
        lock(&self.mirror).clone()
    }
}

impl Drop for TreeCache {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(mirror: &Mirror) -> MutexGuard<'_, BTreeMap<String, NodeValue>> {
    mirror.lock().unwrap_or_else(|e| e.into_inner())
}

/// `path` followed by the separator its children's paths start with.
fn child_prefix(path: &str) -> String {
    if path == "/" {
        "/".to_owned()
    } else {
        format!("{path}/")
    }
}

/// Whether `path` is `root` or below it.
fn within(root: &str, path: &str) -> bool {
    path == root || path.starts_with(&child_prefix(root))
}

/// Whether `new` is a different value of a node than `old`: its data was written (or the
/// node was re-created) since. Changes to its children alone only touch the Stat's child
/// fields, which the mirror refreshes without reporting.
fn changed(old: &NodeValue, new: &NodeValue) -> bool {
    old.stat.mzxid != new.stat.mzxid || old.stat.czxid != new.stat.czxid || old.data != new.data
}

/// What the cache's task works with.
struct Sync {
    client: Client,
    root: String,
    mirror: Mirror,
    tx: mpsc::UnboundedSender<TreeEvent>,
}

impl Sync {
    fn emit(&self, event: TreeEvent) -> bool {
        self.tx.send(event).is_ok()
    }

    /// Reads the whole subtree as it is now.
    async fn walk(&self) -> Result<BTreeMap<String, NodeValue>> {
        let client = &self.client;
        let mut out = BTreeMap::new();
        let mut stack = vec![self.root.clone()];
        while let Some(path) = stack.pop() {
            let (data, stat) = match retry_on_loss(client, || client.get_data(&path)).await {
                Ok(v) => v,
                Err(Error::NoNode { .. }) => continue,
                Err(e) => return Err(e),
            };
            if stat.num_children > 0 {
                match retry_on_loss(client, || client.get_children(&path)).await {
                    Ok(children) => {
                        let prefix = child_prefix(&path);
                        stack.extend(children.into_iter().map(|c| format!("{prefix}{c}")));
                    }
                    Err(Error::NoNode { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
            out.insert(path, NodeValue { data, stat });
        }
        Ok(out)
    }

    /// Walks the tree and reports its difference from the mirror, which it replaces.
    async fn resync(&self) -> Result<bool> {
        let fresh = self.walk().await?;
        let mut events = Vec::new();
        {
            let mut mirror = lock(&self.mirror);
            for (path, value) in &fresh {
                match mirror.get(path) {
                    None => events.push(TreeEvent::Added {
                        path: path.clone(),
                        value: value.clone(),
                    }),
                    Some(old) if changed(old, value) => events.push(TreeEvent::Updated {
                        path: path.clone(),
                        value: value.clone(),
                    }),
                    Some(_) => {}
                }
            }
            for (path, value) in mirror.iter() {
                if !fresh.contains_key(path) {
                    events.push(TreeEvent::Removed {
                        path: path.clone(),
                        value: value.clone(),
                    });
                }
            }
            *mirror = fresh;
        }
        Ok(events.into_iter().all(|e| self.emit(e)))
    }

    /// Brings `path` up to date after an event on it.
    async fn refresh(&self, path: &str) -> Result<bool> {
        let client = &self.client;
        match retry_on_loss(client, || client.get_data(path)).await {
            Ok((data, stat)) => {
                let value = NodeValue { data, stat };
                let event = {
                    let mut mirror = lock(&self.mirror);
                    match mirror.get(path) {
                        // Not a data change (or an older read): keep the fresher Stat quietly.
                        Some(old) if old.stat.mzxid >= value.stat.mzxid => {
                            if old.stat.mzxid == value.stat.mzxid {
                                mirror.insert(path.to_owned(), value);
                            }
                            None
                        }
                        Some(_) => {
                            mirror.insert(path.to_owned(), value.clone());
                            Some(TreeEvent::Updated {
                                path: path.to_owned(),
                                value,
                            })
                        }
                        None => {
                            mirror.insert(path.to_owned(), value.clone());
                            Some(TreeEvent::Added {
                                path: path.to_owned(),
                                value,
                            })
                        }
                    }
                };
                Ok(event.is_none_or(|e| self.emit(e)))
            }
            Err(Error::NoNode { .. }) => Ok(self.remove(path)),
            Err(e) => Err(e),
        }
    }

    /// Drops `path` and its subtree from the mirror.
    fn remove(&self, path: &str) -> bool {
        let removed: Vec<(String, NodeValue)> = {
            let mut mirror = lock(&self.mirror);
            let prefix = child_prefix(path);
            let below: Vec<String> = mirror
                .range(prefix.clone()..)
                .map(|(p, _)| p.clone())
                .take_while(|p| p.starts_with(&prefix))
                .collect();
            let mut removed = Vec::new();
            // Deepest first, the node itself last.
            for p in below.into_iter().rev() {
                if let Some(v) = mirror.remove(&p) {
                    removed.push((p, v));
                }
            }
            if let Some(v) = mirror.remove(path) {
                removed.push((path.to_owned(), v));
            }
            removed
        };
        removed
            .into_iter()
            .all(|(path, value)| self.emit(TreeEvent::Removed { path, value }))
    }
}

/// What to do after one step of the cache's loop.
enum Next {
    /// Carry on.
    Go,
    /// Walk the tree again once connected.
    Resync,
    /// The session ended for good, nobody listens, or the mirror cannot be kept: stop.
    Stop,
}

async fn run(sync: Sync, mut watcher: PersistentWatcher, mut states: broadcast::Receiver<State>) {
    match sync.resync().await {
        Ok(true) if sync.emit(TreeEvent::Initialized) => {}
        Ok(_) => return,
        Err(e) => {
            tracing::debug!(root = %sync.root, error = %e, "tree cache could not load");
            return;
        }
    }
    let mut away = false;
    loop {
        let next = tokio::select! {
            biased;
            event = watcher.recv() => match event {
                Some(event) => match event.event_type {
                    EventType::NodeCreated | EventType::NodeDataChanged
                        if within(&sync.root, &event.path) =>
                    {
                        step(&sync.client, sync.refresh(&event.path).await)
                    }
                    EventType::NodeDeleted if within(&sync.root, &event.path) => {
                        step(&sync.client, Ok(sync.remove(&event.path)))
                    }
                    // Children changes, and the session event that precedes the end of the
                    // watch (handled below).
                    _ => Next::Go,
                },
                None => {
                    // The watch ended with its session. A client that renews expired
                    // sessions carries on: watch again in the new session and walk again.
                    if sync.client.wait_connected().await.is_err() {
                        return;
                    }
                    match retry_on_loss(&sync.client, || {
                        sync.client.add_watch(&sync.root, AddWatchMode::PersistentRecursive)
                    })
                    .await
                    {
                        Ok(w) => watcher = w,
                        Err(e) => {
                            tracing::debug!(root = %sync.root, error = %e, "tree cache ends");
                            return;
                        }
                    }
                    Next::Resync
                }
            },
            state = states.recv() => match state {
                Ok(s) if s.is_connected() => {
                    if std::mem::take(&mut away) { Next::Resync } else { Next::Go }
                }
                Ok(_) if sync.client.is_finished() => Next::Stop,
                Ok(_) => {
                    away = true;
                    Next::Go
                }
                // Transitions were missed: assume the worst and walk again once connected.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if sync.client.state().is_connected() {
                        away = false;
                        Next::Resync
                    } else {
                        away = true;
                        Next::Go
                    }
                }
                Err(broadcast::error::RecvError::Closed) => Next::Stop,
            },
        };
        match next {
            Next::Go => {}
            Next::Stop => return,
            Next::Resync => match sync.resync().await {
                Ok(true) if sync.emit(TreeEvent::Resynced) => {}
                Ok(_) => return,
                // The session was renewed meanwhile: its watch ends too, and the cache
                // watches and walks again in the new one (above).
                Err(Error::SessionExpired) if !sync.client.is_finished() => {}
                Err(e) => {
                    tracing::debug!(root = %sync.root, error = %e, "tree cache ends");
                    return;
                }
            },
        }
    }
}

/// The loop's next move after applying an event.
fn step(client: &Client, applied: Result<bool>) -> Next {
    match applied {
        Ok(true) => Next::Go,
        Ok(false) => Next::Stop,
        // A renewing client's session expired under the read: the watch ends with it, and
        // the cache watches and walks again in the new session.
        Err(Error::SessionExpired) if !client.is_finished() => Next::Go,
        Err(e) => {
            tracing::debug!(error = %e, "tree cache ends");
            Next::Stop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_within_a_root() {
        assert!(within("/a", "/a"));
        assert!(within("/a", "/a/b/c"));
        assert!(!within("/a", "/ab"));
        assert!(within("/", "/x"));
        assert_eq!(child_prefix("/"), "/");
        assert_eq!(child_prefix("/a"), "/a/");
    }
}
