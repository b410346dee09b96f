//! The lock contender: acquire the workload's lock, write to the fenced resource with the
//! guard's token, hold for a random time (watching `lost()`), write again, release; pause;
//! repeat. Every belief change goes to the history.
//!
//! GC pauses: while the runner has the client's application paused ([`History::is_paused`])
//! the contender is frozen where it stands and looks at nothing. Whatever woke it during the
//! pause (the hold ending, `lost()` firing), it first does what a process waking from a pause
//! does: its next fenced write, with the token it still believes in, and only then looks at
//! `lost()`. The fenced resource must reject that write if someone else wrote since.
//!
//! [`History::is_paused`]: crate::history::History::is_paused

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;
use zkit::recipe::Lock;

use super::{cancellable, end_hold, start_configured, ClientSpec};
use crate::history::Event;

/// What woke the holder.
enum Woke {
    Lost,
    Deadline,
}

/// Runs the contender loop forever.
pub async fn run(spec: &ClientSpec, incarnation: u32) -> Result<(), Box<dyn std::error::Error>> {
    run_configured(spec, incarnation, |builder| builder).await
}

/// [`run`], connecting with [`super::connect_configured`] (a test planting a bug in the
/// client).
pub async fn run_configured(
    spec: &ClientSpec,
    incarnation: u32,
    configure: impl Fn(zkit::Builder) -> zkit::Builder,
) -> Result<(), Box<dyn std::error::Error>> {
    let who = spec.host();
    let client = spec.client;
    let history = &spec.history;
    let (lo, hi) = spec.workload.hold;
    let (mut rng, zk) = start_configured(spec, incarnation, configure).await;
    let lock = Lock::new(&zk, &spec.workload.path)?;
    loop {
        match cancellable(spec, &mut rng, "acquire", lock.acquire()).await {
            // Cancelled: tried again after the rest.
            None => {}
            Some(Ok(guard)) => {
                // A frozen application learns of the acquisition when it wakes.
                history.pause_point(client).await;
                let token = guard.fencing_token();
                history.record(Event::Acquired { client, token });
                let session = guard.session_id();
                history.record(Event::HeldIn { client, session });
                let hold = rng.random_range(lo..=hi);
                let start = Instant::now();
                let deadlines = [start + hold / 2, start + hold];
                let mut next = 0;
                let mut lost = guard.is_lost();
                if !lost {
                    history.write(client, token);
                }
                while !lost && next < deadlines.len() {
                    let woke = tokio::select! {
                        biased;
                        () = guard.lost() => Woke::Lost,
                        () = tokio::time::sleep_until(deadlines[next]) => Woke::Deadline,
                    };
                    if history.is_paused(client) {
                        // Frozen with its belief; on waking it writes before it looks.
                        history.pause_point(client).await;
                        history.write(client, token);
                        lost = guard.is_lost();
                        if matches!(woke, Woke::Deadline) {
                            next += 1;
                        }
                        continue;
                    }
                    match woke {
                        Woke::Lost => lost = true,
                        Woke::Deadline => {
                            next += 1;
                            if next < deadlines.len() {
                                history.write(client, token);
                            }
                        }
                    }
                }
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
