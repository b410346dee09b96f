//! The set-partitioner member: joins the workload's `SetPartitioner` (at `path`, member id
//! `c{client}`, the items [`ITEMS`]) and follows its states: when it reaches `Acquired` the
//! member records [`Event::PartitionAcquired`] with its share, and when it leaves it (or the
//! share changes, or the member stops) [`Event::PartitionReleased`]. After a random `hold`
//! the member finishes (its belief ends as it starts to), rests, and joins again; a
//! partitioner that failed (its session ended) is replaced at once.
//!
//! GC pauses: every wake-up first passes a pause point, so a paused member keeps believing
//! it owns its share until its application runs again.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;
use zkit::recipe::{PartitionState, SetPartitioner};

use super::{start, ClientSpec};
use crate::history::Event;

/// The partitioned items.
pub const ITEMS: [&str; 6] = ["i0", "i1", "i2", "i3", "i4", "i5"];

/// Runs the member loop forever.
pub async fn run(spec: &ClientSpec, incarnation: u32) -> Result<(), Box<dyn std::error::Error>> {
    let who = spec.host();
    let client = spec.client;
    let history = &spec.history;
    let (lo, hi) = spec.workload.hold;
    let (mut rng, zk) = start(spec, incarnation).await;
    loop {
        let member = match SetPartitioner::start(&zk, &spec.workload.path, &who, ITEMS).await {
            Ok(m) => m,
            Err(e) => {
                history.note(&who, format!("join failed: {e}"));
                let _ = zk.wait_connected().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut states = member.states();
        let until = Instant::now() + rng.random_range(lo..=hi);
        let mut owned: Option<Vec<String>> = None;
        loop {
            history.pause_point(client).await;
            let state = states.borrow_and_update().clone();
            let now_owned = match &state {
                PartitionState::Acquired(items) => Some(items.clone()),
                _ => None,
            };
            if now_owned != owned {
                if owned.is_some() {
                    history.record(Event::PartitionReleased { client });
                }
                if let Some(items) = &now_owned {
                    history.record(Event::PartitionAcquired {
                        client,
                        items: items.clone(),
                    });
                }
                owned = now_owned;
            }
            if state == PartitionState::Failure || Instant::now() >= until {
                break;
            }
            tokio::select! {
                biased;
                changed = states.changed() => if changed.is_err() { break },
                () = tokio::time::sleep_until(until) => {}
            }
        }
        if owned.is_some() {
            history.record(Event::PartitionReleased { client });
        }
        if let Err(e) = member.finish().await {
            history.note(&who, format!("finish failed: {e}"));
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..600))).await;
    }
}
