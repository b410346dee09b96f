//! The multi-lock contender: each round it picks two of the three locks `{path}/l0`,
//! `{path}/l1`, `{path}/l2` at random, takes them together with a `MultiLock`
//! ([`Event::MultiLockAcquired`] with the lock paths), holds them for a random `hold`
//! watching `lost()`, and releases ([`Event::Released`]) or notes the loss
//! ([`Event::Lost`]); rests; repeats.

use std::future::Future;
use std::time::Duration;

use rand::seq::IndexedRandom;
use rand::Rng;
use zkit::recipe::{MultiLock, MultiLockGuard};

use super::{cancellable, end_hold, hold, start, ClientSpec, Held};
use crate::history::Event;

/// How many locks there are under the workload's path.
pub const LOCKS: usize = 3;

impl Held for MultiLockGuard {
    fn is_lost(&self) -> bool {
        MultiLockGuard::is_lost(self)
    }
    fn lost(&self) -> impl Future<Output = ()> {
        MultiLockGuard::lost(self)
    }
    fn release(self) -> impl Future<Output = zkit::Result<()>> {
        MultiLockGuard::release(self)
    }
}

/// Runs the contender loop forever.
pub async fn run(spec: &ClientSpec, incarnation: u32) -> Result<(), Box<dyn std::error::Error>> {
    let who = spec.host();
    let client = spec.client;
    let history = &spec.history;
    let (lo, hi) = spec.workload.hold;
    let (mut rng, zk) = start(spec, incarnation).await;
    let all: Vec<String> = (0..LOCKS)
        .map(|i| format!("{}/l{i}", spec.workload.path))
        .collect();
    loop {
        let mut picked: Vec<&str> = all
            .choose_multiple(&mut rng, 2)
            .map(String::as_str)
            .collect();
        picked.sort_unstable();
        let multi = MultiLock::new(&zk, &picked)?;
        match cancellable(spec, &mut rng, "acquire", multi.acquire()).await {
            // Cancelled: tried again after the rest.
            None => {}
            Some(Ok(guard)) => {
                history.pause_point(client).await;
                history.record(Event::MultiLockAcquired {
                    client,
                    locks: picked.iter().map(|p| (*p).to_owned()).collect(),
                });
                let lost = guard.is_lost()
                    || hold(history, client, &guard, rng.random_range(lo..=hi)).await;
                end_hold(spec, &mut rng, guard, lost).await;
            }
            Some(Err(e)) => {
                history.note(&who, format!("acquire failed: {e}"));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
    }
}
