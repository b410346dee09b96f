//! Which scenarios real mode can run: those whose faults a real ensemble behind proxies
//! can apply faithfully: partitions, splits, heals, crashes and restarts (of members and of
//! clients), expiries (by takeover, or by cutting the client off until the leader expires
//! the session), a client's pause (its application frozen, its traffic held at its
//! proxies), held messages, added latency, a lagging follower and cancelled calls (the
//! workload's own timeouts, in real time). Packet loss is refused
//! (a fault or a scenario's base `loss`): on a real TCP link a lost segment is
//! retransmitted, so what turmoil's loss does has no faithful counterpart at a proxy, and
//! the scenario is refused with the reason rather than run as something it is not.

use std::fmt::Write as _;

use crate::scenario::{FaultKind, Scenario};

/// The fault kinds real mode applies.
pub const REAL_FAULTS: [FaultKind; 11] = [
    FaultKind::Partition,
    FaultKind::Split,
    FaultKind::Heal,
    FaultKind::Crash,
    FaultKind::Restart,
    FaultKind::Expire,
    FaultKind::Pause,
    FaultKind::Hold,
    FaultKind::Latency,
    FaultKind::Lag,
    FaultKind::Cancel,
];

/// A scenario real mode refuses, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "scenario {scenario} cannot run against a real ensemble: {reasons} \
     (real mode applies every fault but packet loss)"
)]
pub struct Unsupported {
    /// The scenario's name.
    pub scenario: String,
    /// What it needs that real mode does not do, `; `-separated.
    pub reasons: String,
}

/// Checks that real mode can run `scenario`.
pub fn check_supported(scenario: &Scenario) -> Result<(), Unsupported> {
    let mut reasons = Vec::new();
    if scenario.loss > 0.0 {
        reasons.push(format!(
            "a base packet loss of {} (TCP would retransmit a lost segment)",
            scenario.loss
        ));
    }
    if ![1, 3, 5].contains(&scenario.servers) {
        reasons.push(format!(
            "{} servers (a real ensemble has 1, 3 or 5)",
            scenario.servers
        ));
    }
    for (i, fault) in scenario.faults.iter().enumerate() {
        if !REAL_FAULTS.contains(&fault.kind) {
            reasons.push(format!(
                "fault {} (at {} s) is `{}`",
                i + 1,
                fault.at.as_secs_f64(),
                fault.kind.name()
            ));
        }
    }
    if let Some(swarm) = &scenario.swarm {
        let mut others = String::new();
        for kind in swarm.kinds.iter().filter(|k| !REAL_FAULTS.contains(k)) {
            let sep = if others.is_empty() { "" } else { ", " };
            let _ = write!(others, "{sep}`{}`", kind.name());
        }
        if !others.is_empty() {
            reasons.push(format!("its swarm draws {others}"));
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Unsupported {
            scenario: scenario.name.clone(),
            reasons: reasons.join("; "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "[ensemble]\nservers = 3\n\n[run]\nduration_s = 30\n\n\
        [[workload]]\nrole = \"lock\"\ncount = 2\npath = \"/l\"\n";

    fn parse(faults: &str) -> Scenario {
        let text = format!("{HEAD}{faults}");
        crate::scenario::parse("t.toml", "t", &text).expect("valid scenario")
    }

    #[test]
    fn partitions_crashes_and_pauses_are_supported() {
        let s = parse(
            "[[fault]]\nat_s = 5\nkind = \"partition\"\ntarget = \"leader-server\"\nfor_s = 5\n\
             [[fault]]\nat_s = 12\nkind = \"crash\"\ntarget = \"random-follower\"\n\
             [[fault]]\nat_s = 15\nkind = \"restart\"\ntarget = \"random-follower\"\n\
             [[fault]]\nat_s = 18\nkind = \"pause\"\ntarget = \"lock-holder\"\nfor_s = 5\n",
        );
        assert_eq!(check_supported(&s), Ok(()));
    }

    #[test]
    fn other_faults_are_refused_with_what_and_when() {
        let s = parse(
            "[[fault]]\nat_s = 5\nkind = \"loss\"\nrate = 0.5\nfor_s = 5\n\
             [[fault]]\nat_s = 12\nkind = \"crash\"\ntarget = \"lock-holder\"\n",
        );
        let err = check_supported(&s).expect_err("loss is not real-mode");
        assert_eq!(err.reasons, "fault 1 (at 5 s) is `loss`");
        assert!(
            err.to_string().contains("every fault but packet loss"),
            "{err}"
        );
    }
}
