//! The lease holder: tries to take the workload's `NonBlockingLease` (at `path`, for
//! [`LEASE`], as holder `c{client}`); once it has it, renews it every [`RENEW`] for a random
//! `hold`, then stops renewing and lets it run out; rests; repeats.
//!
//! A lease is held on time, not on a session: every try that obtains (or renews) the lease
//! records [`Event::LeaseHeld`] with the instant its belief ends, the instant the try was
//! called plus [`LEASE`] (less a millisecond for the server's millisecond clock), which can
//! only be earlier than the expiry the server stamped. Nothing else ends the belief: a
//! holder checks its clock before it uses the lease, so neither a pause nor a lost
//! connection extends it.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;
use zkit::recipe::NonBlockingLease;

use super::{start, ClientSpec};
use crate::history::Event;

/// How long each try takes the lease for.
pub const LEASE: Duration = Duration::from_millis(2000);

/// How often a holder renews.
pub const RENEW: Duration = Duration::from_millis(700);

/// Runs the holder loop forever.
pub async fn run(spec: &ClientSpec, incarnation: u32) -> Result<(), Box<dyn std::error::Error>> {
    let (lo, hi) = spec.workload.hold;
    let (mut rng, zk) = start(spec, incarnation).await;
    loop {
        if attempt(spec, &zk).await {
            let stop = Instant::now() + rng.random_range(lo..=hi);
            loop {
                tokio::time::sleep(RENEW).await;
                if Instant::now() >= stop || !attempt(spec, &zk).await {
                    break;
                }
            }
            // Not renewed any more: it runs out by itself.
            tokio::time::sleep(LEASE).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..400))).await;
    }
}

/// One try to take (or renew) the lease; whether it obtained it (recorded).
async fn attempt(spec: &ClientSpec, zk: &zkit::Client) -> bool {
    let client = spec.client;
    let called = spec.history.now();
    match NonBlockingLease::acquire(zk, &spec.workload.path, LEASE, &spec.host()).await {
        Ok(l) if l.obtained() => {
            spec.history.pause_point(client).await;
            spec.history.record(Event::LeaseHeld {
                client,
                until: called + LEASE - Duration::from_millis(1),
            });
            true
        }
        Ok(_) => false,
        Err(e) => {
            spec.history
                .note(&spec.host(), format!("lease try failed: {e}"));
            false
        }
    }
}
