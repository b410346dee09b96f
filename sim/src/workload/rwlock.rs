//! The read-write lock contender: take the workload's `ReadWriteLock`, the read side or the
//! write side at random (one in three a writer), hold it for a random `hold` watching
//! `lost()`, release; rest; repeat. Records [`Event::ReadAcquired`] or
//! [`Event::WriteAcquired`], then [`Event::Released`] or [`Event::Lost`].

use std::time::Duration;

use rand::Rng;
use zkit::recipe::{Access, ReadWriteLock};

use super::{cancellable, end_hold, hold, start, ClientSpec};
use crate::history::Event;

/// Runs the contender loop forever.
pub async fn run(spec: &ClientSpec, incarnation: u32) -> Result<(), Box<dyn std::error::Error>> {
    let who = spec.host();
    let client = spec.client;
    let history = &spec.history;
    let (lo, hi) = spec.workload.hold;
    let (mut rng, zk) = start(spec, incarnation).await;
    let lock = ReadWriteLock::new(&zk, &spec.workload.path)?;
    loop {
        let access = if rng.random_range(0..3) == 0 {
            Access::Write
        } else {
            Access::Read
        };
        match cancellable(spec, &mut rng, "acquire", lock.acquire(access)).await {
            // Cancelled: tried again after the rest.
            None => {}
            Some(Ok(guard)) => {
                history.pause_point(client).await;
                let token = guard.fencing_token();
                history.record(match access {
                    Access::Read => Event::ReadAcquired { client, token },
                    Access::Write => Event::WriteAcquired { client, token },
                });
                let session = guard.session_id();
                history.record(Event::HeldIn { client, session });
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
