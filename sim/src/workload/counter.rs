//! The counter adder: adds 1 to the workload's shared counter (`Counter` at `path`, seeded
//! with 0) again and again, a random `hold` apart. Each add is recorded when it is called
//! ([`Event::CounterAdding`]) and then as acknowledged, with the value it returned
//! ([`Event::CounterAdded`]), or as uncertain when it failed ([`Event::CounterUncertain`]:
//! it may or may not have applied; never retried). Every two to three seconds the adder
//! sends `sync` on the path, reads the counter and records the value with the instant the
//! `sync` went out ([`Event::CounterRead`]), which the [`counter`](crate::check::counter)
//! checker holds against the adds before it.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;
use zkit::recipe::Counter;
use zkit::Error;

use super::{start, ClientSpec};
use crate::history::Event;

/// Runs the adder loop forever.
pub async fn run(spec: &ClientSpec, incarnation: u32) -> Result<(), Box<dyn std::error::Error>> {
    let who = spec.host();
    let client = spec.client;
    let history = &spec.history;
    let path = spec.workload.path.as_str();
    let (lo, hi) = spec.workload.hold;
    let (mut rng, zk) = start(spec, incarnation).await;
    let counter = Counter::new(&zk, path, 0)?;
    let mut next_read = Instant::now() + Duration::from_millis(rng.random_range(2000..3000));
    loop {
        history.record(Event::CounterAdding { client });
        match counter.add(1).await {
            Ok(value) => {
                history.pause_point(client).await;
                history.record(Event::CounterAdded { client, value });
            }
            Err(e) => {
                history.record(Event::CounterUncertain { client });
                history.note(&who, format!("add failed: {e}"));
                if matches!(e, Error::ConnectionLoss) {
                    let _ = zk.wait_connected().await;
                } else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        if Instant::now() >= next_read {
            next_read = Instant::now() + Duration::from_millis(rng.random_range(2000..3000));
            let asked_at = spec.history.now();
            let read = async {
                zk.sync(path).await?;
                counter.get().await
            }
            .await;
            match read {
                Ok(v) => {
                    history.pause_point(client).await;
                    history.record(Event::CounterRead {
                        client,
                        asked_at,
                        value: v.value,
                    });
                }
                Err(e) => history.note(&who, format!("read failed: {e}")),
            }
        }
        tokio::time::sleep(rng.random_range(lo..=hi)).await;
    }
}
