//! The watch manager: who watches what, and who hears about a change, with ZooKeeper's exact
//! trigger rules (`WatchManager.triggerWatch` as `DataTree` calls it).
//!
//! Like ZooKeeper, watches live in two tables: data watches (getData, exists) and child
//! watches (getChildren). One-shot watches fire once and are gone; persistent watches
//! (addWatch) sit in both tables and stay; persistent-recursive watches also fire for every
//! descendant, but never with `NodeChildrenChanged`. A deletion fires `NodeDeleted` once per
//! watcher even if it watched the node in both tables. A watcher holds one mode per path and
//! table, the last one set (ZooKeeper 3.8's behaviour, quirks included).
//!
//! Watchers are connections ([`WatcherId`]): a connection's watches die with it, and a client
//! restores them with SetWatches on its next connection ([`WatchManager::set_watches`]).
//! Iteration is over ordered maps, so the order of notifications is deterministic.

use std::collections::{BTreeMap, BTreeSet};

use zkit::proto::{Acl, AddWatchMode, EventType, KeeperState, WatcherEvent, WatcherType};

use super::tree::{DataTree, Trigger};

/// Identifies a watcher: the connection that set the watch.
pub type WatcherId = u64;

/// The kind of watch a watcher holds on one path of one table. As in ZooKeeper 3.8
/// (`WatcherModeManager`), there is one mode per watcher, path and table: the latest watch
/// set wins, so a getData watch on a path with a persistent watch turns it into a one-shot
/// watch, and addWatch on a path with a one-shot watch makes it persistent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Standard,
    Persistent,
    Recursive,
}

/// One table: path -> watcher -> mode.
#[derive(Debug, Clone, Default)]
struct Table {
    paths: BTreeMap<String, BTreeMap<WatcherId, Mode>>,
    recursive: usize,
}

impl Table {
    fn add(&mut self, path: &str, w: WatcherId, mode: Mode) {
        let old = self
            .paths
            .entry(path.to_owned())
            .or_default()
            .insert(w, mode);
        if old == Some(Mode::Recursive) {
            self.recursive -= 1;
        }
        if mode == Mode::Recursive {
            self.recursive += 1;
        }
    }

    /// Fires `event` on `path`: returns the watchers to notify, removing one-shot watches.
    fn trigger(&mut self, path: &str, event: EventType) -> BTreeSet<WatcherId> {
        let mut fired = BTreeSet::new();
        let mut local = Some(path.to_owned());
        let mut at_parent = false;
        while let Some(p) = local {
            let mut emptied = false;
            if let Some(watchers) = self.paths.get_mut(&p) {
                watchers.retain(|w, mode| match mode {
                    Mode::Recursive => {
                        if event != EventType::NodeChildrenChanged {
                            fired.insert(*w);
                        }
                        true
                    }
                    _ if at_parent => true,
                    Mode::Persistent => {
                        fired.insert(*w);
                        true
                    }
                    Mode::Standard => {
                        fired.insert(*w);
                        false
                    }
                });
                emptied = watchers.is_empty();
            }
            if emptied {
                self.paths.remove(&p);
            }
            // Ancestors matter only to recursive watches.
            local = if self.recursive > 0 {
                parent_of(&p)
            } else {
                None
            };
            at_parent = true;
        }
        fired
    }

    /// Removes `w`'s watch on `path` if `pred` accepts its mode.
    fn remove_if(&mut self, path: &str, w: WatcherId, pred: impl Fn(Mode) -> bool) -> bool {
        let Some(watchers) = self.paths.get_mut(path) else {
            return false;
        };
        let Some(mode) = watchers.get(&w).copied() else {
            return false;
        };
        if !pred(mode) {
            return false;
        }
        watchers.remove(&w);
        if watchers.is_empty() {
            self.paths.remove(path);
        }
        if mode == Mode::Recursive {
            self.recursive -= 1;
        }
        true
    }

    fn remove_all(&mut self, path: &str, w: WatcherId) -> bool {
        self.remove_if(path, w, |_| true)
    }

    fn mode(&self, path: &str, w: WatcherId) -> Option<Mode> {
        self.paths.get(path).and_then(|ws| ws.get(&w)).copied()
    }

    fn remove_watcher(&mut self, w: WatcherId) {
        let paths: Vec<String> = self
            .paths
            .iter()
            .filter(|(_, ws)| ws.contains_key(&w))
            .map(|(p, _)| p.clone())
            .collect();
        for p in paths {
            self.remove_all(&p, w);
        }
    }

    fn count(&self) -> usize {
        self.paths.values().map(BTreeMap::len).sum()
    }
}

fn parent_of(path: &str) -> Option<String> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/".to_owned()),
        Some(i) => Some(path[..i].to_owned()),
        None => None,
    }
}

/// One notification to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    /// The connection to notify.
    pub watcher: WatcherId,
    /// The notification.
    pub event: WatcherEvent,
    /// The ACL of the node concerned: the notification is delivered only if the watcher may
    /// READ it (ZooKeeper 3.6+). `None` for SetWatches replays, which are not filtered.
    pub acl: Option<Vec<Acl>>,
}

fn mode_of(kind: WatcherType) -> Option<Mode> {
    match kind {
        WatcherType::Persistent => Some(Mode::Persistent),
        WatcherType::PersistentRecursive => Some(Mode::Recursive),
        _ => None,
    }
}

fn event(event_type: EventType, path: &str) -> WatcherEvent {
    WatcherEvent {
        event_type,
        state: KeeperState::SyncConnected,
        path: path.to_owned(),
    }
}

/// Paths to restore on a reconnect, per kind of watch (SetWatches / SetWatches2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchSet<'a> {
    /// Data watches (getData).
    pub data: &'a [String],
    /// Exists watches (on nodes that did not exist).
    pub exist: &'a [String],
    /// Child watches.
    pub child: &'a [String],
    /// Persistent watches.
    pub persistent: &'a [String],
    /// Persistent recursive watches.
    pub persistent_recursive: &'a [String],
}

/// Every watch of every connection.
#[derive(Debug, Clone, Default)]
pub struct WatchManager {
    data: Table,
    child: Table,
}

impl WatchManager {
    /// An empty manager.
    pub fn new() -> WatchManager {
        WatchManager::default()
    }

    /// A one-shot data watch (getData, exists).
    pub fn add_data_watch(&mut self, path: &str, w: WatcherId) {
        self.data.add(path, w, Mode::Standard);
    }

    /// A one-shot child watch (getChildren).
    pub fn add_child_watch(&mut self, path: &str, w: WatcherId) {
        self.child.add(path, w, Mode::Standard);
    }

    /// A persistent or persistent-recursive watch (addWatch), in both tables like ZooKeeper.
    pub fn add_watch(&mut self, path: &str, w: WatcherId, mode: AddWatchMode) {
        let mode = match mode {
            AddWatchMode::Persistent => Mode::Persistent,
            AddWatchMode::PersistentRecursive => Mode::Recursive,
        };
        self.data.add(path, w, mode);
        self.child.add(path, w, mode);
    }

    /// The notifications a tree change causes, in delivery order; one-shot watches fired
    /// are removed.
    pub fn trigger(&mut self, trigger: &Trigger) -> Vec<Fired> {
        let mut out = Vec::new();
        let mut push = |ws: BTreeSet<WatcherId>,
                        ty: EventType,
                        path: &str,
                        acl: &[Acl],
                        skip: &BTreeSet<WatcherId>| {
            for w in ws {
                if !skip.contains(&w) {
                    out.push(Fired {
                        watcher: w,
                        event: event(ty, path),
                        acl: Some(acl.to_vec()),
                    });
                }
            }
        };
        let none = BTreeSet::new();
        match trigger {
            Trigger::Created {
                path,
                parent,
                acl,
                parent_acl,
            } => {
                let d = self.data.trigger(path, EventType::NodeCreated);
                push(d, EventType::NodeCreated, path, acl, &none);
                let c = self.child.trigger(parent, EventType::NodeChildrenChanged);
                push(c, EventType::NodeChildrenChanged, parent, parent_acl, &none);
            }
            Trigger::Deleted {
                path,
                parent,
                acl,
                parent_acl,
            } => {
                let d = self.data.trigger(path, EventType::NodeDeleted);
                push(d.clone(), EventType::NodeDeleted, path, acl, &none);
                let c = self.child.trigger(path, EventType::NodeDeleted);
                push(c, EventType::NodeDeleted, path, acl, &d);
                let p = self.child.trigger(parent, EventType::NodeChildrenChanged);
                push(p, EventType::NodeChildrenChanged, parent, parent_acl, &none);
            }
            Trigger::DataChanged { path, acl } => {
                let d = self.data.trigger(path, EventType::NodeDataChanged);
                push(d, EventType::NodeDataChanged, path, acl, &none);
            }
        }
        out
    }

    /// Removes `w`'s watches of `kind` on `path` (removeWatches); false if there was none.
    /// `Data` and `Children` remove whatever mode sits in that table, as ZooKeeper 3.8 does;
    /// `Persistent` and `PersistentRecursive` remove watches of that mode from both tables.
    pub fn remove(&mut self, path: &str, w: WatcherId, kind: WatcherType) -> bool {
        match kind {
            WatcherType::Children => self.child.remove_all(path, w),
            WatcherType::Data => self.data.remove_all(path, w),
            WatcherType::Any => {
                let c = self.child.remove_all(path, w);
                let d = self.data.remove_all(path, w);
                c || d
            }
            WatcherType::Persistent | WatcherType::PersistentRecursive => {
                let want = mode_of(kind);
                let c = self.child.remove_if(path, w, |m| Some(m) == want);
                let d = self.data.remove_if(path, w, |m| Some(m) == want);
                c || d
            }
        }
    }

    /// Whether `w` has a watch of `kind` on `path` (checkWatches).
    pub fn contains(&self, path: &str, w: WatcherId, kind: WatcherType) -> bool {
        let c = self.child.mode(path, w);
        let d = self.data.mode(path, w);
        match kind {
            WatcherType::Children => c.is_some(),
            WatcherType::Data => d.is_some(),
            WatcherType::Any => c.is_some() || d.is_some(),
            WatcherType::Persistent | WatcherType::PersistentRecursive => {
                let want = mode_of(kind);
                c == want || d == want
            }
        }
    }

    /// Drops every watch of a closed connection.
    pub fn remove_watcher(&mut self, w: WatcherId) {
        self.data.remove_watcher(w);
        self.child.remove_watcher(w);
    }

    /// Restores watches sent with SetWatches/SetWatches2, firing at once what changed since
    /// `relative_zxid` (`DataTree.setWatches`): a data watch on a missing node fires
    /// `NodeDeleted`, on a node modified after it `NodeDataChanged`; an exists watch on a
    /// node that now exists `NodeCreated`; a child watch on a missing node `NodeDeleted`, on a
    /// node whose children changed after it `NodeChildrenChanged`. The rest are set.
    pub fn set_watches(
        &mut self,
        tree: &DataTree,
        w: WatcherId,
        relative_zxid: i64,
        set: &WatchSet<'_>,
    ) -> Vec<Fired> {
        let mut out = Vec::new();
        let mut fire = |ty: EventType, path: &str| {
            out.push(Fired {
                watcher: w,
                event: event(ty, path),
                acl: None,
            })
        };
        for path in set.data {
            match tree.node(path) {
                None => fire(EventType::NodeDeleted, path),
                Some(n) if n.stat.mzxid > relative_zxid => fire(EventType::NodeDataChanged, path),
                Some(_) => self.data.add(path, w, Mode::Standard),
            }
        }
        for path in set.exist {
            if tree.node(path).is_some() {
                fire(EventType::NodeCreated, path);
            } else {
                self.data.add(path, w, Mode::Standard);
            }
        }
        for path in set.child {
            match tree.node(path) {
                None => fire(EventType::NodeDeleted, path),
                Some(n) if n.stat.pzxid > relative_zxid => {
                    fire(EventType::NodeChildrenChanged, path)
                }
                Some(_) => self.child.add(path, w, Mode::Standard),
            }
        }
        for path in set.persistent {
            self.add_watch(path, w, AddWatchMode::Persistent);
        }
        for path in set.persistent_recursive {
            self.add_watch(path, w, AddWatchMode::PersistentRecursive);
        }
        out
    }

    /// Number of (path, watcher) pairs over both tables (the `wchs` count).
    pub fn watch_count(&self) -> usize {
        self.data.count() + self.child.count()
    }

    /// Number of distinct watched paths.
    pub fn path_count(&self) -> usize {
        let paths: BTreeSet<&String> = self
            .data
            .paths
            .keys()
            .chain(self.child.paths.keys())
            .collect();
        paths.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(path: &str, parent: &str) -> Trigger {
        Trigger::Created {
            path: path.into(),
            parent: parent.into(),
            acl: vec![],
            parent_acl: vec![],
        }
    }

    fn deleted(path: &str, parent: &str) -> Trigger {
        Trigger::Deleted {
            path: path.into(),
            parent: parent.into(),
            acl: vec![],
            parent_acl: vec![],
        }
    }

    fn kinds(f: &[Fired]) -> Vec<(WatcherId, EventType, String)> {
        f.iter()
            .map(|x| (x.watcher, x.event.event_type, x.event.path.clone()))
            .collect()
    }

    #[test]
    fn one_shot_fires_once() {
        let mut m = WatchManager::new();
        m.add_data_watch("/a", 1);
        m.add_child_watch("/", 2);
        let f = m.trigger(&created("/a", "/"));
        assert_eq!(
            kinds(&f),
            vec![
                (1, EventType::NodeCreated, "/a".into()),
                (2, EventType::NodeChildrenChanged, "/".into())
            ]
        );
        assert!(m.trigger(&created("/a", "/")).is_empty());
        assert_eq!(m.watch_count(), 0);
    }

    #[test]
    fn delete_notifies_once_per_watcher() {
        let mut m = WatchManager::new();
        m.add_data_watch("/a", 1);
        m.add_child_watch("/a", 1);
        m.add_child_watch("/a", 2);
        let f = m.trigger(&deleted("/a", "/"));
        assert_eq!(
            kinds(&f),
            vec![
                (1, EventType::NodeDeleted, "/a".into()),
                (2, EventType::NodeDeleted, "/a".into())
            ]
        );
        assert_eq!(m.watch_count(), 0);
    }

    #[test]
    fn persistent_and_recursive() {
        let mut m = WatchManager::new();
        m.add_watch("/a", 1, AddWatchMode::Persistent);
        m.add_watch("/a", 2, AddWatchMode::PersistentRecursive);
        let f = m.trigger(&created("/a/b", "/a"));
        assert_eq!(
            kinds(&f),
            vec![
                (2, EventType::NodeCreated, "/a/b".into()),
                (1, EventType::NodeChildrenChanged, "/a".into())
            ]
        );
        let f = m.trigger(&Trigger::DataChanged {
            path: "/a/b/c".into(),
            acl: vec![],
        });
        assert_eq!(
            kinds(&f),
            vec![(2, EventType::NodeDataChanged, "/a/b/c".into())]
        );
        let f = m.trigger(&deleted("/a", "/"));
        assert_eq!(
            kinds(&f),
            vec![
                (1, EventType::NodeDeleted, "/a".into()),
                (2, EventType::NodeDeleted, "/a".into())
            ]
        );
        // Still there.
        assert!(m.contains("/a", 1, WatcherType::Persistent));
        assert!(m.contains("/a", 2, WatcherType::PersistentRecursive));
        assert!(m.remove("/a", 2, WatcherType::Any));
        assert!(!m.remove("/a", 2, WatcherType::Any));
    }
}
