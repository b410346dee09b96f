//! Fencing: the resource never accepts a token lower than one it already accepted (checked
//! from the log, independently of the resource's own bookkeeping).

use super::Violation;
use crate::history::{Event, Record};

/// The fencing violations in `records`.
pub fn check(records: &[Record]) -> Vec<Violation> {
    let mut highest: Option<(i64, usize)> = None;
    let mut out = Vec::new();
    for r in records {
        if let Event::Write {
            client,
            token,
            accepted: true,
        } = r.event
        {
            match highest {
                Some((h, by)) if token < h => out.push(Violation {
                    checker: "fencing",
                    at: r.at,
                    message: format!(
                        "accepted c{client}'s token {token:#x} after c{by}'s higher token {h:#x}"
                    ),
                }),
                _ => highest = Some((token, client)),
            }
        }
    }
    out
}
