//! Watches: one-shot watchers returned with the read that set them, persistent watchers as
//! streams, and the registry the session task keeps so that watches survive reconnects.
//!
//! The server sends one notification per event per session; the registry fans it out to every
//! local watcher it concerns, following ZooKeeper's client rules (a created or changed node
//! fires data and exists watches, a deleted one every kind, a children change child watches;
//! persistent watches see every event on their node, recursive ones on their subtree except
//! children changes).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::{mpsc, oneshot};

use crate::proto::{AddWatchMode, EventType, KeeperState, SetWatches, SetWatches2, WatcherEvent};

/// A watch firing: what happened, to which node, in which session state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    /// What happened (`None` for a session event such as expiry).
    pub event_type: EventType,
    /// The session's state when it fired.
    pub state: KeeperState,
    /// The node, as the client names it (chroot removed).
    pub path: String,
}

impl WatchedEvent {
    /// Whether this event says the session ended (expired or closed) rather than a node change.
    pub fn is_session_end(&self) -> bool {
        self.event_type == EventType::None
    }
}

/// A one-shot watch: resolves once, with the first event on its node, or with a session event
/// (`EventType::None`) if the session ends first. It never hangs past the session's end.
#[derive(Debug)]
pub struct Watcher {
    rx: oneshot::Receiver<WatchedEvent>,
    path: String,
}

impl Watcher {
    pub(crate) fn new(path: String) -> (Watcher, oneshot::Sender<WatchedEvent>) {
        let (tx, rx) = oneshot::channel();
        (Watcher { rx, path }, tx)
    }

    /// The node watched.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Future for Watcher {
    type Output = WatchedEvent;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<WatchedEvent> {
        let path = self.path.clone();
        Pin::new(&mut self.rx).poll(cx).map(|r| {
            r.unwrap_or(WatchedEvent {
                event_type: EventType::None,
                state: KeeperState::Closed,
                path,
            })
        })
    }
}

/// What a persistent watcher's drop tells the session.
pub(crate) type RemoveHandle = mpsc::UnboundedSender<crate::session::Control>;

/// A persistent (or persistent-recursive) watch: a stream of every event on its node (or
/// subtree) until dropped, which removes it from the server. After the session ends it yields
/// one session event, then `None`.
#[derive(Debug)]
pub struct PersistentWatcher {
    rx: mpsc::UnboundedReceiver<WatchedEvent>,
    path: String,
    mode: AddWatchMode,
    id: u64,
    control: RemoveHandle,
}

impl PersistentWatcher {
    pub(crate) fn new(
        path: String,
        mode: AddWatchMode,
        id: u64,
        rx: mpsc::UnboundedReceiver<WatchedEvent>,
        control: RemoveHandle,
    ) -> Self {
        PersistentWatcher {
            rx,
            path,
            mode,
            id,
            control,
        }
    }

    /// The next event, or `None` once the session has ended and its last event was read.
    pub async fn recv(&mut self) -> Option<WatchedEvent> {
        self.rx.recv().await
    }

    /// The node watched.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Persistent or persistent-recursive.
    pub fn mode(&self) -> AddWatchMode {
        self.mode
    }
}

impl Drop for PersistentWatcher {
    fn drop(&mut self) {
        // The session may be gone already: then there is nothing to remove.
        let _ = self
            .control
            .send(crate::session::Control::RemovePersistent {
                id: self.id,
                mode: self.mode,
            });
    }
}

/// Which one-shot list a watch joins, decided by the reply that set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchKind {
    /// getData, or exists on a node that exists.
    Data,
    /// exists on a node that does not exist.
    Exist,
    /// getChildren.
    Child,
}

/// A persistent watcher as the registry holds it.
#[derive(Debug)]
struct Persistent {
    id: u64,
    tx: mpsc::UnboundedSender<WatchedEvent>,
}

/// Every watch the session holds, keyed by server path (chroot included).
#[derive(Debug, Default)]
pub(crate) struct WatchRegistry {
    chroot: String,
    data: BTreeMap<String, Vec<oneshot::Sender<WatchedEvent>>>,
    exist: BTreeMap<String, Vec<oneshot::Sender<WatchedEvent>>>,
    child: BTreeMap<String, Vec<oneshot::Sender<WatchedEvent>>>,
    persistent: BTreeMap<String, Vec<Persistent>>,
    recursive: BTreeMap<String, Vec<Persistent>>,
}

/// The largest batch of paths sent in one SetWatches frame (ZooKeeper's client uses 128 KiB).
pub(crate) const SET_WATCHES_BATCH_BYTES: usize = 128 * 1024;

/// One SetWatches request: the old record when no persistent watch is involved (3.5 servers
/// understand it), the new one otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Restore {
    V1(SetWatches),
    V2(SetWatches2),
}

impl WatchRegistry {
    /// A registry for a client rooted at `chroot` ("" for none).
    pub(crate) fn new(chroot: &str) -> Self {
        WatchRegistry {
            chroot: chroot.to_owned(),
            ..Default::default()
        }
    }

    /// Adds a one-shot watch on server path `path`.
    pub(crate) fn add(&mut self, kind: WatchKind, path: &str, tx: oneshot::Sender<WatchedEvent>) {
        let map = match kind {
            WatchKind::Data => &mut self.data,
            WatchKind::Exist => &mut self.exist,
            WatchKind::Child => &mut self.child,
        };
        map.entry(path.to_owned()).or_default().push(tx);
    }

    /// Adds a persistent watcher on server path `path`.
    pub(crate) fn add_persistent(
        &mut self,
        mode: AddWatchMode,
        path: &str,
        id: u64,
        tx: mpsc::UnboundedSender<WatchedEvent>,
    ) {
        let map = match mode {
            AddWatchMode::Persistent => &mut self.persistent,
            AddWatchMode::PersistentRecursive => &mut self.recursive,
        };
        map.entry(path.to_owned())
            .or_default()
            .push(Persistent { id, tx });
    }

    /// Removes persistent watcher `id`; returns its server path if it was the last watcher of
    /// that mode there (so the server's watch should go too).
    pub(crate) fn remove_persistent(&mut self, mode: AddWatchMode, id: u64) -> Option<String> {
        let map = match mode {
            AddWatchMode::Persistent => &mut self.persistent,
            AddWatchMode::PersistentRecursive => &mut self.recursive,
        };
        let path = map
            .iter()
            .find(|(_, ws)| ws.iter().any(|w| w.id == id))
            .map(|(p, _)| p.clone())?;
        let watchers = map.get_mut(&path)?;
        watchers.retain(|w| w.id != id);
        if !watchers.is_empty() {
            return None;
        }
        map.remove(&path);
        // ZooKeeper 3.8 only removes watches by path with type Any (it refuses the
        // persistent types), which would take every other watch on the path with it: leave
        // the server's watch in place while anything else still watches there.
        (!self.watches_path(&path)).then_some(path)
    }

    /// Whether any watcher of any kind is registered on server path `path`.
    fn watches_path(&self, path: &str) -> bool {
        [&self.data, &self.exist, &self.child].iter().any(|m| {
            m.get(path)
                .is_some_and(|txs| txs.iter().any(|tx| !tx.is_closed()))
        }) || self.persistent.contains_key(path)
            || self.recursive.contains_key(path)
    }

    /// Whether any watch is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.exist.is_empty()
            && self.child.is_empty()
            && self.persistent.is_empty()
            && self.recursive.is_empty()
    }

    fn client_path(&self, server_path: &str) -> String {
        strip_chroot(&self.chroot, server_path)
    }

    /// Delivers a notification to every watcher it concerns.
    pub(crate) fn dispatch(&mut self, event: &WatcherEvent) {
        let path = event.path.as_str();
        let out = WatchedEvent {
            event_type: event.event_type,
            state: event.state,
            path: self.client_path(path),
        };
        let mut fired = Vec::new();
        match event.event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                fired.extend(self.data.remove(path).unwrap_or_default());
                fired.extend(self.exist.remove(path).unwrap_or_default());
            }
            EventType::NodeDeleted => {
                fired.extend(self.data.remove(path).unwrap_or_default());
                fired.extend(self.exist.remove(path).unwrap_or_default());
                fired.extend(self.child.remove(path).unwrap_or_default());
            }
            EventType::NodeChildrenChanged => {
                fired.extend(self.child.remove(path).unwrap_or_default());
            }
            EventType::DataWatchRemoved => {
                fired.extend(self.data.remove(path).unwrap_or_default());
                fired.extend(self.exist.remove(path).unwrap_or_default());
            }
            EventType::ChildWatchRemoved => {
                fired.extend(self.child.remove(path).unwrap_or_default());
            }
            EventType::None | EventType::PersistentWatchRemoved => {}
        }
        for tx in fired {
            let _ = tx.send(out.clone());
        }
        if let Some(ws) = self.persistent.get(path) {
            for w in ws {
                let _ = w.tx.send(out.clone());
            }
        }
        if event.event_type != EventType::NodeChildrenChanged {
            for ancestor in ancestors_and_self(path) {
                if let Some(ws) = self.recursive.get(ancestor) {
                    for w in ws {
                        let _ = w.tx.send(out.clone());
                    }
                }
            }
        }
    }

    /// Ends every watch with a session event in `state` (expired or closed).
    pub(crate) fn end_session(&mut self, state: KeeperState) {
        let chroot = self.chroot.clone();
        let event = |path: &str| WatchedEvent {
            event_type: EventType::None,
            state,
            path: strip_chroot(&chroot, path),
        };
        for map in [&mut self.data, &mut self.exist, &mut self.child] {
            for (path, txs) in std::mem::take(map) {
                for tx in txs {
                    let _ = tx.send(event(&path));
                }
            }
        }
        for map in [&mut self.persistent, &mut self.recursive] {
            for (path, ws) in std::mem::take(map) {
                for w in ws {
                    let _ = w.tx.send(event(&path));
                }
            }
        }
    }

    /// Drops one-shot watchers nobody waits for any more.
    fn prune(&mut self) {
        for map in [&mut self.data, &mut self.exist, &mut self.child] {
            map.retain(|_, txs| {
                txs.retain(|tx| !tx.is_closed());
                !txs.is_empty()
            });
        }
    }

    /// The SetWatches requests that restore every watch after a reconnect, batched so no frame
    /// carries much more than [`SET_WATCHES_BATCH_BYTES`] of paths.
    pub(crate) fn restore_requests(&mut self, relative_zxid: i64) -> Vec<Restore> {
        self.prune();
        let v2 = !self.persistent.is_empty() || !self.recursive.is_empty();
        let lists: [Vec<String>; 5] = [
            self.data.keys().cloned().collect(),
            self.exist.keys().cloned().collect(),
            self.child.keys().cloned().collect(),
            self.persistent.keys().cloned().collect(),
            self.recursive.keys().cloned().collect(),
        ];
        let mut out = Vec::new();
        let mut batch: [Vec<String>; 5] = Default::default();
        let mut bytes = 0;
        for (i, list) in lists.into_iter().enumerate() {
            for path in list {
                if bytes + path.len() > SET_WATCHES_BATCH_BYTES && bytes > 0 {
                    out.push(make_restore(v2, relative_zxid, std::mem::take(&mut batch)));
                    bytes = 0;
                }
                bytes += path.len() + 4;
                batch[i].push(path);
            }
        }
        if bytes > 0 {
            out.push(make_restore(v2, relative_zxid, batch));
        }
        out
    }
}

fn make_restore(v2: bool, relative_zxid: i64, batch: [Vec<String>; 5]) -> Restore {
    let [data_watches, exist_watches, child_watches, persistent_watches, persistent_recursive_watches] =
        batch;
    if v2 {
        Restore::V2(SetWatches2 {
            relative_zxid,
            data_watches,
            exist_watches,
            child_watches,
            persistent_watches,
            persistent_recursive_watches,
        })
    } else {
        Restore::V1(SetWatches {
            relative_zxid,
            data_watches,
            exist_watches,
            child_watches,
        })
    }
}

/// `/a/b/c` yields `/a/b/c`, `/a/b`, `/a`, `/`.
fn ancestors_and_self(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.rfind('/') {
            _ if current == "/" => None,
            Some(0) => Some("/"),
            Some(i) => Some(&current[..i]),
            None => None,
        };
        Some(current)
    })
}

/// The client's name for a server path under `chroot` ("" for none).
pub(crate) fn strip_chroot(chroot: &str, server_path: &str) -> String {
    if chroot.is_empty() {
        return server_path.to_owned();
    }
    match server_path.strip_prefix(chroot) {
        Some("") => "/".to_owned(),
        Some(rest) if rest.starts_with('/') => rest.to_owned(),
        _ => server_path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(t: EventType, path: &str) -> WatcherEvent {
        WatcherEvent {
            event_type: t,
            state: KeeperState::SyncConnected,
            path: path.to_owned(),
        }
    }

    #[test]
    fn ancestors() {
        let v: Vec<_> = ancestors_and_self("/a/b/c").collect();
        assert_eq!(v, ["/a/b/c", "/a/b", "/a", "/"]);
        let v: Vec<_> = ancestors_and_self("/").collect();
        assert_eq!(v, ["/"]);
    }

    #[test]
    fn chroot_is_stripped() {
        assert_eq!(strip_chroot("/app", "/app/x"), "/x");
        assert_eq!(strip_chroot("/app", "/app"), "/");
        assert_eq!(strip_chroot("/app", "/apple"), "/apple");
        assert_eq!(strip_chroot("", "/x"), "/x");
    }

    #[test]
    fn one_shot_rules() {
        let mut reg = WatchRegistry::new("");
        let (dtx, mut d) = oneshot::channel();
        let (ctx, mut c) = oneshot::channel();
        reg.add(WatchKind::Data, "/n", dtx);
        reg.add(WatchKind::Child, "/n", ctx);
        reg.dispatch(&event(EventType::NodeDataChanged, "/n"));
        assert_eq!(
            d.try_recv().map(|e| e.event_type),
            Ok(EventType::NodeDataChanged)
        );
        assert!(c.try_recv().is_err());
        reg.dispatch(&event(EventType::NodeDeleted, "/n"));
        assert_eq!(
            c.try_recv().map(|e| e.event_type),
            Ok(EventType::NodeDeleted)
        );
        assert!(reg.is_empty());
    }

    #[test]
    fn recursive_watch_sees_descendants_but_not_child_events() {
        let mut reg = WatchRegistry::new("/root");
        let (tx, mut rx) = mpsc::unbounded_channel();
        reg.add_persistent(AddWatchMode::PersistentRecursive, "/root/a", 1, tx);
        reg.dispatch(&event(EventType::NodeCreated, "/root/a/b/c"));
        reg.dispatch(&event(EventType::NodeChildrenChanged, "/root/a"));
        reg.dispatch(&event(EventType::NodeDeleted, "/root/x"));
        let e = rx.try_recv().map(|e| (e.event_type, e.path));
        assert_eq!(e, Ok((EventType::NodeCreated, "/a/b/c".to_owned())));
        assert!(rx.try_recv().is_err());
        assert_eq!(
            reg.remove_persistent(AddWatchMode::PersistentRecursive, 1),
            Some("/root/a".to_owned())
        );
    }

    #[test]
    fn session_end_resolves_everything() {
        let mut reg = WatchRegistry::new("");
        let (dtx, mut d) = oneshot::channel();
        let (tx, mut rx) = mpsc::unbounded_channel();
        reg.add(WatchKind::Exist, "/n", dtx);
        reg.add_persistent(AddWatchMode::Persistent, "/p", 1, tx);
        reg.end_session(KeeperState::Expired);
        assert_eq!(d.try_recv().map(|e| e.state), Ok(KeeperState::Expired));
        assert_eq!(rx.try_recv().map(|e| e.event_type), Ok(EventType::None));
        assert!(reg.is_empty());
    }

    #[test]
    fn restore_batches_and_picks_the_record() {
        let mut reg = WatchRegistry::new("");
        let mut keep = Vec::new();
        for i in 0..3000 {
            let (rx_tx, rx) = oneshot::channel::<WatchedEvent>();
            keep.push(rx);
            reg.add(WatchKind::Data, &format!("/{i:0>60}"), rx_tx);
        }
        let batches = reg.restore_requests(9);
        assert!(batches.len() >= 2);
        let mut total = 0;
        for b in &batches {
            let Restore::V1(sw) = b else {
                panic!("no persistent watch: SetWatches expected")
            };
            assert_eq!(sw.relative_zxid, 9);
            assert!(
                sw.data_watches.iter().map(|p| p.len() + 4).sum::<usize>()
                    <= SET_WATCHES_BATCH_BYTES
            );
            total += sw.data_watches.len();
        }
        assert_eq!(total, 3000);
        let (tx, _rx) = mpsc::unbounded_channel();
        reg.add_persistent(AddWatchMode::Persistent, "/p", 1, tx);
        assert!(matches!(reg.restore_requests(9)[0], Restore::V2(_)));
        drop(keep);
        // Watchers nobody awaits are not restored.
        let only = reg.restore_requests(9);
        let Restore::V2(sw) = &only[0] else {
            panic!("V2 expected")
        };
        assert!(sw.data_watches.is_empty());
        assert_eq!(sw.persistent_watches, ["/p"]);
    }
}
