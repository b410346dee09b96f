//! The semaphore lease holder: take one of the workload's `leases` leases, hold it for a
//! random `hold` watching `lost()`, release; rest; repeat. Records [`Event::LeaseAcquired`],
//! then [`Event::Released`] or [`Event::Lost`].

use std::time::Duration;

use rand::Rng;
use zkit::recipe::Semaphore;

use super::{connect, hold, ClientSpec};
use crate::history::Event;

/// Runs the holder loop forever.
pub async fn run(spec: &ClientSpec, incarnation: u32) -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = spec.rng(incarnation);
    let who = spec.host();
    let client = spec.client;
    let history = &spec.history;
    let (lo, hi) = spec.workload.hold;
    tokio::time::sleep(Duration::from_millis(rng.random_range(0..500))).await;
    let zk = connect(spec, rng.random()).await;
    let semaphore = Semaphore::new(&zk, &spec.workload.path, spec.workload.leases)?;
    loop {
        match semaphore.acquire().await {
            Ok(lease) => {
                history.pause_point(client).await;
                history.record(Event::LeaseAcquired {
                    client,
                    token: lease.token(),
                });
                let lost = lease.is_lost()
                    || hold(history, client, &lease, rng.random_range(lo..=hi)).await;
                if lost {
                    history.record(Event::Lost { client });
                    drop(lease);
                } else {
                    history.record(Event::Released { client });
                    if let Err(e) = lease.release().await {
                        history.note(&who, format!("release failed: {e}"));
                    }
                }
            }
            Err(e) => {
                history.note(&who, format!("acquire failed: {e}"));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
    }
}
