//! Simple-barrier roles on one `Barrier` at `path`:
//!
//! - the keeper ([`keep`]) raises the barrier ([`Event::BarrierRaised`] when raise returns),
//!   keeps it up for a random `hold`, then removes it ([`Event::BarrierRemoving`] as it
//!   calls remove, [`Event::BarrierRemoved`] when it returns); rests; repeats;
//! - the waiter ([`wait`]) sends `sync` on the path and waits at the barrier
//!   ([`Event::BarrierWaiting`] before the sync, [`Event::BarrierReleased`] when wait
//!   returns); rests; repeats.
//!
//! The [`simple_barrier`](crate::check::simple_barrier) checker holds each release against
//! the raises and removes.

use std::time::Duration;

use rand::Rng;
use zkit::recipe::Barrier;

use super::{start, ClientSpec};
use crate::history::Event;

/// Runs the keeper loop forever.
pub async fn keep(spec: &ClientSpec, incarnation: u32) -> Result<(), Box<dyn std::error::Error>> {
    let who = spec.host();
    let client = spec.client;
    let history = &spec.history;
    let (lo, hi) = spec.workload.hold;
    let (mut rng, zk) = start(spec, incarnation).await;
    let barrier = Barrier::new(&zk, &spec.workload.path)?;
    loop {
        match barrier.raise().await {
            Ok(()) => history.record(Event::BarrierRaised { client }),
            Err(e) => {
                history.note(&who, format!("raise failed: {e}"));
                let _ = zk.wait_connected().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        tokio::time::sleep(rng.random_range(lo..=hi)).await;
        history.pause_point(client).await;
        history.record(Event::BarrierRemoving { client });
        loop {
            match barrier.remove().await {
                Ok(()) => {
                    history.record(Event::BarrierRemoved { client });
                    break;
                }
                Err(e) => {
                    history.note(&who, format!("remove failed: {e}"));
                    let _ = zk.wait_connected().await;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..1000))).await;
    }
}

/// Runs the waiter loop forever.
pub async fn wait(spec: &ClientSpec, incarnation: u32) -> Result<(), Box<dyn std::error::Error>> {
    let who = spec.host();
    let client = spec.client;
    let history = &spec.history;
    let (mut rng, zk) = start(spec, incarnation).await;
    let barrier = Barrier::new(&zk, &spec.workload.path)?;
    loop {
        history.record(Event::BarrierWaiting { client });
        // ZooKeeper reads may be stale: a `sync` first makes the server that answers at
        // least as current as the leader was when the waiter called.
        let waited = async {
            zk.sync(&spec.workload.path).await?;
            barrier.wait().await
        }
        .await;
        match waited {
            Ok(()) => {
                history.pause_point(client).await;
                history.record(Event::BarrierReleased { client });
            }
            Err(e) => {
                history.note(&who, format!("wait failed: {e}"));
                let _ = zk.wait_connected().await;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..300))).await;
    }
}
