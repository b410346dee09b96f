//! The semaphore lease holder: take one of the workload's `leases` leases, hold it for a
//! random `hold` watching `lost()`, release; rest; repeat. Records [`Event::LeaseAcquired`],
//! then [`Event::Released`] or [`Event::Lost`].

use std::time::Duration;

use rand::Rng;
use zkit::recipe::Semaphore;

use super::{cancellable, end_hold, hold, start, ClientSpec};
use crate::history::Event;

/// Runs the holder loop forever.
pub async fn run(spec: &ClientSpec, incarnation: u32) -> Result<(), Box<dyn std::error::Error>> {
    let who = spec.host();
    let client = spec.client;
    let history = &spec.history;
    let (lo, hi) = spec.workload.hold;
    let (mut rng, zk) = start(spec, incarnation).await;
    let semaphore = Semaphore::new(&zk, &spec.workload.path, spec.workload.leases)?;
    loop {
        match cancellable(spec, &mut rng, "acquire", semaphore.acquire()).await {
            // Cancelled: tried again after the rest.
            None => {}
            Some(Ok(lease)) => {
                history.pause_point(client).await;
                history.record(Event::LeaseAcquired {
                    client,
                    token: lease.token(),
                });
                let session = lease.session_id();
                history.record(Event::HeldIn { client, session });
                let lost = lease.is_lost()
                    || hold(history, client, &lease, rng.random_range(lo..=hi)).await;
                end_hold(spec, &mut rng, lease, lost).await;
            }
            Some(Err(e)) => {
                history.note(&who, format!("acquire failed: {e}"));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
    }
}
