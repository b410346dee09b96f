//! The leader-latch candidate: join the election with a `LeaderLatch`, and follow its
//! events: [`Event::Leader`] with the epoch when it is elected, [`Event::LeaderLost`] when the
//! latch says it no longer leads (suspended, lost, node gone). After leading for a random
//! `hold` it steps down ([`Event::SteppedDown`]), closes the latch, rests, and runs again.
//!
//! GC pauses: every wake-up first passes a pause point, so a paused leader notices nothing
//! (keeps believing it leads) until its application runs again.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;
use zkit::recipe::{LeaderEvent, LeaderLatch};

use super::{cancellable, start_configured, ClientSpec};
use crate::history::Event;

/// Runs the candidate loop forever.
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
    loop {
        let latch = LeaderLatch::start(&zk, &spec.workload.path, &who)?;
        let mut events = latch.events();
        let mut leading: Option<i64> = None;
        let mut until = Instant::now();
        loop {
            history.pause_point(client).await;
            let now = *events.borrow_and_update();
            match (now, leading) {
                (LeaderEvent::Elected { epoch }, l) if l != Some(epoch) => {
                    history.record(Event::Leader { client, epoch });
                    leading = Some(epoch);
                    until = Instant::now() + rng.random_range(lo..=hi);
                }
                (LeaderEvent::NotLeader, Some(_)) => {
                    history.record(Event::LeaderLost { client });
                    leading = None;
                }
                _ => {}
            }
            if leading.is_some() && Instant::now() >= until {
                history.record(Event::SteppedDown { client });
                break;
            }
            tokio::select! {
                biased;
                changed = events.changed() => {
                    if changed.is_err() {
                        // The latch's task ended (the session is over for good).
                        history.pause_point(client).await;
                        if leading.take().is_some() {
                            history.record(Event::LeaderLost { client });
                        }
                        break;
                    }
                }
                () = tokio::time::sleep_until(until), if leading.is_some() => {}
            }
        }
        // A cancelled close is not retried: the dropped latch must delete its node.
        if let Some(Err(e)) = cancellable(spec, &mut rng, "close", latch.close()).await {
            history.note(&who, format!("latch close failed: {e}"));
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..600))).await;
    }
}
