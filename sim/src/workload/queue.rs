//! Queue roles on one `Queue` at `path`:
//!
//! - the producer ([`produce`]) puts unique items `c{client}.{incarnation}.{n}`, a random
//!   `hold` apart, recording each acknowledged put with the instant it was called
//!   ([`Event::QueuePut`]) and each put without a verdict ([`Event::QueuePutUncertain`]; never
//!   retried);
//! - the consumer ([`consume`]) takes items with `get_blocking`, recording each with the
//!   instant its get was called ([`Event::QueueTaken`]), and each failed get
//!   ([`Event::QueueTakeFailed`]: an entry it was deleting may be gone unrecorded), then works
//!   on the item for a random `hold`.
//!
//! The [`queue`](crate::check::queue) checker holds the takes against the puts.

use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use zkit::recipe::Queue;
use zkit::Client;

use super::{start, ClientSpec};
use crate::history::Event;

/// Runs the producer loop forever.
pub async fn produce(
    spec: &ClientSpec,
    incarnation: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let (mut rng, zk) = start(spec, incarnation).await;
    let queue = Queue::new(&zk, &spec.workload.path)?;
    put_forever(spec, incarnation, &mut rng, &zk, async |item| {
        queue.put(item).await
    })
    .await
}

/// The producer loop of both queue roles: puts the client's numbered items with `put`, a
/// random `hold` apart, recording each acknowledged put and each put without a verdict.
pub(super) async fn put_forever(
    spec: &ClientSpec,
    incarnation: u32,
    rng: &mut ChaCha8Rng,
    zk: &Client,
    put: impl AsyncFn(&[u8]) -> zkit::Result<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let who = spec.host();
    let client = spec.client;
    let history = &spec.history;
    let (lo, hi) = spec.workload.hold;
    let mut n = 0u64;
    loop {
        let item = format!("c{client}.{incarnation}.{n}");
        n += 1;
        let started = spec.history.now();
        match put(item.as_bytes()).await {
            Ok(_) => {
                history.pause_point(client).await;
                history.record(Event::QueuePut {
                    client,
                    item,
                    started,
                });
            }
            Err(e) => {
                history.record(Event::QueuePutUncertain { client, item });
                history.note(&who, format!("put failed: {e}"));
                let _ = zk.wait_connected().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        tokio::time::sleep(rng.random_range(lo..=hi)).await;
    }
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
    let queue = Queue::new(&zk, &spec.workload.path)?;
    loop {
        let started = spec.history.now();
        match queue.get_blocking().await {
            Ok(data) => {
                history.pause_point(client).await;
                history.record(Event::QueueTaken {
                    client,
                    item: String::from_utf8_lossy(&data).into_owned(),
                    started,
                });
                tokio::time::sleep(rng.random_range(lo..=hi)).await;
            }
            Err(e) => {
                history.record(Event::QueueTakeFailed { client });
                history.note(&who, format!("get failed: {e}"));
                let _ = zk.wait_connected().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
