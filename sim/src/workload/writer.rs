//! The plain writer: persistent sequential creates `w{client}-{incarnation}-{n}-` under
//! `path`, a random `hold` apart, recording each acknowledged one ([`Event::Created`]) and
//! each without a verdict ([`Event::CreateUncertain`]; never retried). Every two to three
//! seconds it sends `sync` on the path, lists the children and records the listing with the
//! instant the `sync` went out ([`Event::Listed`]), which the
//! [`writes`](crate::check::writes) checker holds every earlier acknowledged create against.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;
use zkit::CreateMode;

use super::{start, ClientSpec};
use crate::history::Event;

/// A child's name without ZooKeeper's ten-digit sequence suffix.
fn unsequenced(child: &str) -> &str {
    let cut = child.len().saturating_sub(10);
    match child.get(cut..) {
        Some(tail) if tail.bytes().all(|b| b.is_ascii_digit()) => &child[..cut],
        _ => child,
    }
}

/// Runs the writer loop forever.
pub async fn run(spec: &ClientSpec, incarnation: u32) -> Result<(), Box<dyn std::error::Error>> {
    let who = spec.host();
    let client = spec.client;
    let history = &spec.history;
    let path = spec.workload.path.as_str();
    let (lo, hi) = spec.workload.hold;
    let (mut rng, zk) = start(spec, incarnation).await;
    while let Err(e) = zk.ensure_path(path).await {
        history.note(&who, format!("ensure_path failed: {e}"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut n = 0u64;
    let mut next_list = Instant::now() + Duration::from_millis(rng.random_range(2000..3000));
    loop {
        let name = format!("w{client}-{incarnation}-{n}-");
        n += 1;
        match zk
            .create(
                &format!("{path}/{name}"),
                b"",
                CreateMode::PersistentSequential,
            )
            .await
        {
            Ok(_) => {
                history.pause_point(client).await;
                history.record(Event::Created { client, name });
            }
            Err(e) => {
                history.record(Event::CreateUncertain { client, name });
                history.note(&who, format!("create failed: {e}"));
                let _ = zk.wait_connected().await;
            }
        }
        if Instant::now() >= next_list {
            next_list = Instant::now() + Duration::from_millis(rng.random_range(2000..3000));
            let asked_at = spec.history.now();
            let listed = async {
                zk.sync(path).await?;
                zk.get_children(path).await
            }
            .await;
            match listed {
                Ok(children) => {
                    let mut names: Vec<String> =
                        children.iter().map(|c| unsequenced(c).to_owned()).collect();
                    names.sort();
                    history.pause_point(client).await;
                    history.record(Event::Listed {
                        client,
                        asked_at,
                        names,
                    });
                }
                Err(e) => history.note(&who, format!("listing failed: {e}")),
            }
        }
        tokio::time::sleep(rng.random_range(lo..=hi)).await;
    }
}
