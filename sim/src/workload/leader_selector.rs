//! The leader-selector participant: a `LeaderSelector` with auto-requeue whose callback is
//! the leadership: it records [`Event::Leader`] with the fencing token when it starts, works
//! for a random `hold`, and records [`Event::SteppedDown`] when it returns. When the selector
//! drops the callback (the lock behind it was lost), the participant's own task sees the
//! selector's `NotLeader` and records [`Event::LeaderLost`].
//!
//! GC pauses: the callback passes a pause point before it starts and before it steps down,
//! and the loss is recorded only after a pause point, so a paused leader keeps believing it
//! leads until its application runs again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use zkit::recipe::{LeaderEvent, LeaderSelector};

use super::{start, ClientSpec};
use crate::history::Event;

/// Runs the participant forever.
pub async fn run(spec: &ClientSpec, incarnation: u32) -> Result<(), Box<dyn std::error::Error>> {
    let client = spec.client;
    let history = spec.history.clone();
    let (lo, hi) = spec.workload.hold;
    let (mut rng, zk) = start(spec, incarnation).await;
    loop {
        // The term this participant believes it leads in (0: none).
        let term = Arc::new(AtomicU64::new(0));
        let mut hold_rng = ChaCha8Rng::seed_from_u64(rng.random());
        let (h, t) = (history.clone(), term.clone());
        let selector = LeaderSelector::builder(&zk, &spec.workload.path, &spec.host())?
            .auto_requeue(true)
            .start(move |ctx| {
                let (history, term) = (h.clone(), t.clone());
                let hold = hold_rng.random_range(lo..=hi);
                async move {
                    history.pause_point(client).await;
                    let epoch = ctx.fencing_token();
                    term.store(ctx.term(), Ordering::SeqCst);
                    history.record(Event::Leader { client, epoch });
                    tokio::time::sleep(hold).await;
                    history.pause_point(client).await;
                    if term.swap(0, Ordering::SeqCst) != 0 {
                        history.record(Event::SteppedDown { client });
                    }
                }
            });
        let mut events = selector.events();
        while events.changed().await.is_ok() {
            if *events.borrow_and_update() != LeaderEvent::NotLeader {
                continue;
            }
            let believed = term.load(Ordering::SeqCst);
            if believed == 0 {
                continue;
            }
            history.pause_point(client).await;
            // Only if no new term began meanwhile.
            if term
                .compare_exchange(believed, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                history.record(Event::LeaderLost { client });
            }
        }
        // The selector's task ended: leave and join again.
        history.note(&spec.host(), "selector ended; joining again");
        selector.close().await;
        if term.swap(0, Ordering::SeqCst) != 0 {
            history.record(Event::LeaderLost { client });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
