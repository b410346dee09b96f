//! Mutual exclusion: no two clients believe they hold the lock at the same instant. A
//! belief starts when `acquire` returns and ends when the client starts to release, when
//! `lost()` fires, or when its host crashes (or restarts).

use std::collections::BTreeMap;
use std::time::Duration;

use super::Violation;
use crate::history::{Event, Record};

/// The mutual-exclusion violations in `records` (in log order, which is the order events
/// happened in the single-threaded simulation).
pub fn check(records: &[Record]) -> Vec<Violation> {
    let mut holding: BTreeMap<usize, (Duration, i64)> = BTreeMap::new();
    let mut out = Vec::new();
    for r in records {
        match r.event {
            Event::Acquired { client, token } => {
                for (other, (since, other_token)) in &holding {
                    if *other != client {
                        out.push(Violation {
                            checker: "mutual-exclusion",
                            at: r.at,
                            message: format!(
                                "c{client} acquired (token {token:#x}) while c{other} \
                                 has believed it holds the lock since {:.6} s (token {other_token:#x})",
                                since.as_secs_f64()
                            ),
                        });
                    }
                }
                holding.insert(client, (r.at, token));
            }
            Event::Released { client }
            | Event::Lost { client }
            | Event::Crashed { client }
            | Event::Started { client, .. } => {
                holding.remove(&client);
            }
            _ => {}
        }
    }
    out
}
