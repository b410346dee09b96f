//! Tree roles on the subtree at `path`:
//!
//! - the writer ([`write()`]) owns four nodes `{path}/c{client}/k0`..`k3` and, a random `hold`
//!   apart, creates a missing one or sets or deletes a present one, with unique values
//!   `c{client}.{incarnation}.{n}`. It records each write as it starts
//!   ([`Event::TreeWriting`]) and what it then knows of the node ([`Event::TreeWritten`]):
//!   the write's effect when acknowledged, otherwise what a read after a `sync` shows (it is
//!   the node's only writer, so the read is the truth). A new incarnation reads all four
//!   first.
//! - the cache ([`cache`]) mirrors the subtree with a `TreeCache` and records every node it
//!   reports added, updated ([`Event::TreeCacheSeen`] with the data) or removed (with
//!   `None`); when the cache's stream ends it starts a new one ([`Event::TreeCacheStarted`]).
//!
//! The [`tree`](crate::check::tree) checker holds the caches' final mirrors against the
//! writers' nodes.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use zkit::recipe::{TreeCache, TreeEvent};
use zkit::{Client, CreateMode, Error};

use super::{start, ClientSpec};
use crate::history::Event;

/// How many nodes each writer owns.
pub const NODES: usize = 4;

/// Reads `node` after a `sync` until it gets an answer: its data, `None` if absent.
async fn truth(spec: &ClientSpec, zk: &Client, node: &str) -> Option<String> {
    loop {
        let read = async {
            zk.sync(node).await?;
            zk.get_data(node).await
        }
        .await;
        match read {
            Ok((data, _)) => return Some(String::from_utf8_lossy(&data).into_owned()),
            Err(Error::NoNode { .. }) => return None,
            Err(e) => {
                spec.history
                    .note(&spec.host(), format!("reading {node} failed: {e}"));
                let _ = zk.wait_connected().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Runs the writer loop forever.
pub async fn write(spec: &ClientSpec, incarnation: u32) -> Result<(), Box<dyn std::error::Error>> {
    let who = spec.host();
    let client = spec.client;
    let history = &spec.history;
    let (lo, hi) = spec.workload.hold;
    let (mut rng, zk) = start(spec, incarnation).await;
    let dir = format!("{}/c{client}", spec.workload.path);
    while let Err(e) = zk.ensure_path(&dir).await {
        history.note(&who, format!("ensure_path failed: {e}"));
        let _ = zk.wait_connected().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let nodes: Vec<String> = (0..NODES).map(|k| format!("{dir}/k{k}")).collect();
    let mut known: BTreeMap<&str, Option<String>> = BTreeMap::new();
    for node in &nodes {
        let value = truth(spec, &zk, node).await;
        history.record(Event::TreeWritten {
            client,
            node: node.clone(),
            value: value.clone(),
        });
        known.insert(node, value);
    }
    let mut n = 0u64;
    loop {
        tokio::time::sleep(rng.random_range(lo..=hi)).await;
        let node = nodes[rng.random_range(0..NODES)].as_str();
        let exists = known.get(node).is_some_and(Option::is_some);
        let value = if exists && rng.random_range(0..3) == 0 {
            None
        } else {
            n += 1;
            Some(format!("c{client}.{incarnation}.{n}"))
        };
        history.record(Event::TreeWriting {
            client,
            node: node.to_owned(),
            value: value.clone(),
        });
        let done = match (&value, exists) {
            (None, _) => zk.delete(node, None).await,
            (Some(v), true) => zk.set_data(node, v.as_bytes(), None).await.map(|_| ()),
            (Some(v), false) => zk
                .create(node, v.as_bytes(), CreateMode::Persistent)
                .await
                .map(|_| ()),
        };
        let now = match done {
            Ok(()) => value,
            Err(e) => {
                history.note(&who, format!("writing {node} failed: {e}"));
                let _ = zk.wait_connected().await;
                truth(spec, &zk, node).await
            }
        };
        history.pause_point(client).await;
        history.record(Event::TreeWritten {
            client,
            node: node.to_owned(),
            value: now.clone(),
        });
        known.insert(node, now);
    }
}

/// Runs the cache forever.
pub async fn cache(spec: &ClientSpec, incarnation: u32) -> Result<(), Box<dyn std::error::Error>> {
    let who = spec.host();
    let client = spec.client;
    let history = &spec.history;
    let (_, zk) = start(spec, incarnation).await;
    loop {
        let mut cache = match TreeCache::start(&zk, &spec.workload.path).await {
            Ok(c) => c,
            Err(e) => {
                history.note(&who, format!("tree cache start failed: {e}"));
                let _ = zk.wait_connected().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        history.record(Event::TreeCacheStarted { client });
        while let Some(event) = cache.next().await {
            history.pause_point(client).await;
            let (node, value) = match event {
                TreeEvent::Added { path, value } | TreeEvent::Updated { path, value } => (
                    path,
                    Some(String::from_utf8_lossy(&value.data).into_owned()),
                ),
                TreeEvent::Removed { path, .. } => (path, None),
                TreeEvent::Initialized | TreeEvent::Resynced => continue,
            };
            history.record(Event::TreeCacheSeen {
                client,
                node,
                value,
            });
        }
        history.note(&who, "tree cache ended; starting again");
        let _ = zk.wait_connected().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
