//! The party member: join the workload's party ([`Event::Joined`]), read the membership
//! ([`Event::Members`]), stay for a random `hold`, read it again, leave
//! ([`Event::PartyLeft`]); rest; repeat. Nothing here is checked beyond progress (a party has
//! no exclusion property: a member that dies leaves by itself when its session ends).

use std::time::Duration;

use rand::Rng;
use zkit::recipe::Party;

use super::{start, ClientSpec};
use crate::history::Event;

/// Runs the member loop forever.
pub async fn run(spec: &ClientSpec, incarnation: u32) -> Result<(), Box<dyn std::error::Error>> {
    let who = spec.host();
    let client = spec.client;
    let history = &spec.history;
    let (lo, hi) = spec.workload.hold;
    let (mut rng, zk) = start(spec, incarnation).await;
    let mut party = Party::new(&zk, &spec.workload.path, &who)?;
    loop {
        if let Err(e) = zk.ensure_path(&spec.workload.path).await {
            history.note(&who, format!("ensure_path failed: {e}"));
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        match party.join().await {
            Ok(()) => {
                history.pause_point(client).await;
                history.record(Event::Joined { client });
                members(spec, &party).await;
                tokio::time::sleep(rng.random_range(lo..=hi)).await;
                history.pause_point(client).await;
                members(spec, &party).await;
                match party.leave().await {
                    Ok(()) => history.record(Event::PartyLeft { client }),
                    Err(e) => history.note(&who, format!("leave failed: {e}")),
                }
            }
            Err(e) => {
                history.note(&who, format!("join failed: {e}"));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..500))).await;
    }
}

/// Reads the membership and records how many members `party` sees.
async fn members(spec: &ClientSpec, party: &Party) {
    match party.members().await {
        Ok(m) => spec.history.record(Event::Members {
            client: spec.client,
            count: m.len(),
        }),
        Err(e) => spec
            .history
            .note(&spec.host(), format!("members failed: {e}")),
    }
}
