//! Configuration roles on one node (`path`):
//!
//! - the writer ([`write()`]) creates the node with `init` if it is missing, then sets it to
//!   numbered values `c{client}.{incarnation}.{n}` one after another, a random `hold` apart,
//!   recording each acknowledged value with the Stat the server returned
//!   ([`Event::ConfigWritten`]) and each write without a verdict
//!   ([`Event::ConfigUncertain`]);
//! - the watcher ([`watch`]) follows the node with one `DataWatch` and records every value it
//!   is given ([`Event::ConfigSeen`]). The watch carries on across session renewals, so the
//!   stream never ends while the client runs: if it does, the role fails (a simulation
//!   error), rather than starting a new watch that would hide the bug.

use std::time::Duration;

use rand::Rng;
use zkit::recipe::DataWatch;
use zkit::{CreateMode, Error};

use super::{start, ClientSpec};
use crate::check::config::INITIAL;
use crate::history::Event;

/// The parent of `path`, if it is not the root.
fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) | None => None,
        Some(i) => Some(&path[..i]),
    }
}

/// Runs the configuration writer forever.
pub async fn write(spec: &ClientSpec, incarnation: u32) -> Result<(), Box<dyn std::error::Error>> {
    let who = spec.host();
    let client = spec.client;
    let history = &spec.history;
    let path = spec.workload.path.as_str();
    let (lo, hi) = spec.workload.hold;
    let (mut rng, zk) = start(spec, incarnation).await;
    // Make the node exist (the first writer's `init` wins).
    loop {
        let made = async {
            if let Some(p) = parent(path) {
                zk.ensure_path(p).await?;
            }
            match zk
                .create(path, INITIAL.as_bytes(), CreateMode::Persistent)
                .await
            {
                Ok(_) | Err(Error::NodeExists { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        }
        .await;
        match made {
            Ok(()) => break,
            Err(e) => {
                history.note(&who, format!("creating {path} failed: {e}"));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let mut n = 0u64;
    loop {
        let value = format!("c{client}.{incarnation}.{n}");
        n += 1;
        match zk.set_data(path, value.as_bytes(), None).await {
            Ok(stat) => {
                history.pause_point(client).await;
                history.record(Event::ConfigWritten {
                    client,
                    value,
                    mzxid: stat.mzxid,
                    version: stat.version,
                });
            }
            Err(e) => {
                history.record(Event::ConfigUncertain { client, value });
                history.note(&who, format!("set_data failed: {e}"));
                if matches!(e, Error::ConnectionLoss) {
                    let _ = zk.wait_connected().await;
                } else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        tokio::time::sleep(rng.random_range(lo..=hi)).await;
    }
}

/// Runs the configuration watcher forever.
pub async fn watch(spec: &ClientSpec, incarnation: u32) -> Result<(), Box<dyn std::error::Error>> {
    let who = spec.host();
    let client = spec.client;
    let history = &spec.history;
    let (_, zk) = start(spec, incarnation).await;
    let mut values = DataWatch::start(&zk, &spec.workload.path)?;
    while let Some(v) = values.next().await {
        history.pause_point(client).await;
        history.record(match v {
            Some(v) => Event::ConfigSeen {
                client,
                value: Some(String::from_utf8_lossy(&v.data).into_owned()),
                mzxid: v.stat.mzxid,
                version: v.stat.version,
            },
            None => Event::ConfigSeen {
                client,
                value: None,
                mzxid: 0,
                version: -1,
            },
        });
    }
    history.note(&who, "data watch ended");
    Err(format!("{who}: the data watch on {} ended", spec.workload.path).into())
}
