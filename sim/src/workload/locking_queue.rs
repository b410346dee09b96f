//! Locking-queue roles on one `LockingQueue` at `path`:
//!
//! - the producer ([`produce`]) puts unique items `c{client}.{incarnation}.{n}`, a random
//!   `hold` apart, recording each acknowledged put with the instant it was called
//!   ([`Event::QueuePut`]) and each put without a verdict ([`Event::QueuePutUncertain`]);
//! - the consumer ([`consume`]) locks an entry with `get`, works on it for a random `hold`,
//!   then consumes it: a consume that returns true is recorded with the instant the round's
//!   get was called ([`Event::QueueTaken`]); one that returns false (the lock was lost, the
//!   entry went back to the queue) is a note; one that fails is [`Event::QueueTakeFailed`].
//!   One round in ten it releases the entry instead (it goes back to the queue).
//!
//! The [`queue`](crate::check::queue) checker holds the consumes against the puts: a locking
//! queue consumes each entry exactly once.

use std::time::Duration;

use rand::Rng;
use zkit::recipe::LockingQueue;

use super::queue::put_forever;
use super::{start, ClientSpec};
use crate::history::Event;

/// Runs the producer loop forever (the queue roles' loop, on a `LockingQueue`).
pub async fn produce(
    spec: &ClientSpec,
    incarnation: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let (mut rng, zk) = start(spec, incarnation).await;
    let queue = LockingQueue::new(&zk, &spec.workload.path)?;
    put_forever(spec, incarnation, &mut rng, &zk, async |item| {
        queue.put(item).await
    })
    .await
}

/// Runs the consumer loop forever.
pub async fn consume(
    spec: &ClientSpec,
    incarnation: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let who = spec.host();
    let client = spec.client;
    let history = &spec.history;
    let (lo, hi) = spec.workload.hold;
    let (mut rng, zk) = start(spec, incarnation).await;
    let queue = LockingQueue::new(&zk, &spec.workload.path)?;
    loop {
        let started = spec.history.now();
        let entry = match queue.get().await {
            Ok(entry) => entry,
            Err(e) => {
                history.note(&who, format!("get failed: {e}"));
                let _ = zk.wait_connected().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let item = String::from_utf8_lossy(entry.data()).into_owned();
        tokio::time::sleep(rng.random_range(lo..=hi)).await;
        history.pause_point(client).await;
        if rng.random_range(0..10) == 0 {
            if let Err(e) = entry.release().await {
                history.note(&who, format!("release of {item} failed: {e}"));
            }
            continue;
        }
        match entry.consume().await {
            Ok(true) => history.record(Event::QueueTaken {
                client,
                item,
                started,
            }),
            Ok(false) => history.note(&who, format!("lost the lock of {item}: given back")),
            Err(e) => {
                history.record(Event::QueueTakeFailed { client });
                history.note(&who, format!("consume of {item} failed: {e}"));
                let _ = zk.wait_connected().await;
            }
        }
    }
}
