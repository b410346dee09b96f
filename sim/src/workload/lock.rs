//! The lock contender: acquire the workload's lock, write to the fenced resource with the
//! guard's token, hold for a random time (watching `lost()`), write again, release; pause;
//! repeat. Every belief change goes to the history.

use std::time::Duration;

use rand::Rng;
use zkit::recipe::Lock;

use super::{connect, ClientSpec};
use crate::history::Event;

/// Runs the contender loop forever.
pub async fn run(spec: &ClientSpec, incarnation: u32) -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = spec.rng(incarnation);
    let who = spec.host();
    let client = spec.client;
    let history = &spec.history;
    let (lo, hi) = spec.workload.hold;
    tokio::time::sleep(Duration::from_millis(rng.random_range(0..500))).await;
    let zk = connect(spec, rng.random()).await;
    let lock = Lock::new(&zk, &spec.workload.path)?;
    loop {
        match lock.acquire().await {
            Ok(guard) => {
                let token = guard.fencing_token();
                history.record(Event::Acquired { client, token });
                let hold = rng.random_range(lo..=hi);
                let mut lost = false;
                for _ in 0..2 {
                    if guard.is_lost() {
                        lost = true;
                        break;
                    }
                    history.write(client, token);
                    tokio::select! {
                        biased;
                        () = guard.lost() => {
                            lost = true;
                            break;
                        }
                        () = tokio::time::sleep(hold / 2) => {}
                    }
                }
                if lost {
                    history.record(Event::Lost { client });
                    drop(guard);
                } else {
                    history.record(Event::Released { client });
                    if let Err(e) = guard.release().await {
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
