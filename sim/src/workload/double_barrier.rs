//! The double-barrier participant: enter the workload's barrier of `count` participants (the
//! workload's client count) ([`Event::BarrierEntering`], then [`Event::BarrierEntered`] when
//! enter returns), work for a random `hold`, leave ([`Event::BarrierLeaving`], then
//! [`Event::BarrierLeft`] when leave returns); rest; repeat. A failed enter or leave is
//! [`Event::BarrierFailed`], and the participant starts over with a fresh participant node.
//!
//! The rest between rounds (at least half a second) matters: a participant that re-enters
//! while a slower one is still inside its last `leave` makes that one wait for the new node,
//! which waits for it in turn (the recipe, like Kazoo's, is not meant for back-to-back rounds).

use std::time::Duration;

use rand::Rng;
use zkit::recipe::DoubleBarrier;

use super::{cancellable, start, ClientSpec};
use crate::history::Event;

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
enum Failed {
    /// The recipe said so.
    #[error(transparent)]
    Recipe(#[from] zkit::Error),
    /// A `cancel` fault's timeout cut the call short.
    #[error("{0} cancelled")]
    Cancelled(&'static str),
}

/// Runs the participant loop forever.
pub async fn run(spec: &ClientSpec, incarnation: u32) -> Result<(), Box<dyn std::error::Error>> {
    let who = spec.host();
    let client = spec.client;
    let history = &spec.history;
    let (lo, hi) = spec.workload.hold;
    let (mut rng, zk) = start(spec, incarnation).await;
    loop {
        let barrier = DoubleBarrier::new(&zk, &spec.workload.path, spec.workload.count)?;
        history.record(Event::BarrierEntering { client });
        let outcome = async {
            // A cancelled enter or leave fails the attempt; the barrier is dropped with it
            // and must remove this participant's node on its own.
            cancellable(spec, &mut rng, "enter", barrier.enter())
                .await
                .ok_or(Failed::Cancelled("enter"))??;
            history.pause_point(client).await;
            history.record(Event::BarrierEntered { client });
            tokio::time::sleep(rng.random_range(lo..=hi)).await;
            history.pause_point(client).await;
            history.record(Event::BarrierLeaving { client });
            cancellable(spec, &mut rng, "leave", barrier.leave())
                .await
                .ok_or(Failed::Cancelled("leave"))??;
            history.pause_point(client).await;
            history.record(Event::BarrierLeft { client });
            Ok::<(), Failed>(())
        }
        .await;
        drop(barrier);
        if let Err(e) = outcome {
            history.record(Event::BarrierFailed {
                client,
                error: e.to_string(),
            });
            history.note(&who, "starting over with a new participant node");
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(500..1000))).await;
    }
}
