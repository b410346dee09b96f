//! Every workload role runs in simulation: a small fault-free scenario per role over a few
//! seeds, no checker finds anything, and the role made progress (leaderships, barrier
//! rounds, the watchers saw the last value written a second before the end, creates listed,
//! ...).

use std::collections::BTreeMap;
use std::time::Duration;

use zkit_sim::check;
use zkit_sim::history::{Event, Record};
use zkit_sim::runner;
use zkit_sim::scenario::{self, Scenario};

const SEEDS: u64 = 3;

fn scenario(workloads: &str, duration_s: u64) -> Scenario {
    let text = format!(
        "[ensemble]\nservers = 3\ntick_ms = 500\nsession_timeout_ms = 4000\n\n\
         [run]\nduration_s = {duration_s}\nliveness_s = 5\n\n{workloads}"
    );
    scenario::parse("roles.toml", "roles", &text).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `s` for [`SEEDS`] seeds; panics on any violation; returns each seed's records.
fn runs(s: &Scenario) -> Vec<Vec<Record>> {
    (0..SEEDS)
        .map(|seed| {
            let outcome = runner::run(s, seed);
            assert!(
                outcome.violations.is_empty(),
                "seed {seed}: {:#?}\n{}",
                outcome.violations,
                outcome.trace
            );
            let findings = check::findings(&outcome.records, s);
            assert!(findings.is_empty(), "seed {seed}: {findings:#?}");
            outcome.records
        })
        .collect()
}

fn count(records: &[Record], pred: impl Fn(&Event) -> bool) -> usize {
    records.iter().filter(|r| pred(&r.event)).count()
}

fn distinct_clients(records: &[Record], pred: impl Fn(&Event) -> bool) -> usize {
    let mut seen = BTreeMap::new();
    for r in records.iter().filter(|r| pred(&r.event)) {
        if let Some(c) = r.event.client() {
            seen.insert(c, ());
        }
    }
    seen.len()
}

#[test]
fn rwlock_readers_share_and_writers_exclude() {
    let s = scenario(
        "[[workload]]\nrole = \"rwlock\"\ncount = 4\npath = \"/rw\"\nhold_ms = [50, 300]\n",
        15,
    );
    for records in runs(&s) {
        assert!(count(&records, |e| matches!(e, Event::ReadAcquired { .. })) > 5);
        assert!(count(&records, |e| matches!(e, Event::WriteAcquired { .. })) > 2);
    }
}

#[test]
fn semaphore_leases_are_shared() {
    let s = scenario(
        "[[workload]]\nrole = \"semaphore\"\ncount = 5\npath = \"/sem\"\nhold_ms = [100, \
         400]\nleases = 2\n",
        15,
    );
    for records in runs(&s) {
        assert!(count(&records, |e| matches!(e, Event::LeaseAcquired { .. })) > 10);
        assert_eq!(
            distinct_clients(&records, |e| matches!(e, Event::LeaseAcquired { .. })),
            5
        );
    }
}

fn leaders(role: &str) {
    let s = scenario(
        &format!(
            "[[workload]]\nrole = \"{role}\"\ncount = 3\npath = \"/election\"\nhold_ms = \
             [300, 1000]\n"
        ),
        15,
    );
    for records in runs(&s) {
        let coverage = check::coverage(&records);
        assert!(
            coverage.get("leader changes").copied().unwrap_or(0) >= 3,
            "{coverage:?}"
        );
        assert!(count(&records, |e| matches!(e, Event::SteppedDown { .. })) >= 3);
    }
}

#[test]
fn leader_latch_elects_in_turn() {
    leaders("leader-latch");
}

#[test]
fn leader_selector_elects_in_turn() {
    leaders("leader-selector");
}

#[test]
fn party_members_join_and_leave() {
    let s = scenario(
        "[[workload]]\nrole = \"party\"\ncount = 3\npath = \"/party\"\nhold_ms = [200, 800]\n",
        10,
    );
    for records in runs(&s) {
        assert!(count(&records, |e| matches!(e, Event::Joined { .. })) > 5);
        assert!(count(&records, |e| matches!(e, Event::PartyLeft { .. })) > 5);
        assert!(
            count(
                &records,
                |e| matches!(e, Event::Members { count, .. } if *count == 3)
            ) > 0
        );
    }
}

#[test]
fn double_barrier_rounds_complete() {
    let s = scenario(
        "[[workload]]\nrole = \"double-barrier\"\ncount = 3\npath = \"/barrier\"\nhold_ms = \
         [100, 500]\n",
        20,
    );
    for records in runs(&s) {
        let coverage = check::coverage(&records);
        assert!(
            coverage.get("barrier rounds").copied().unwrap_or(0) >= 3,
            "{coverage:?}"
        );
        assert!(count(&records, |e| matches!(e, Event::BarrierLeft { .. })) >= 9);
    }
}

#[test]
fn config_watchers_see_the_last_value() {
    let s = scenario(
        "[[workload]]\nrole = \"config-writer\"\ncount = 2\npath = \"/app/config\"\nhold_ms = \
         [100, 400]\n\n[[workload]]\nrole = \"config-watcher\"\ncount = 2\npath = \
         \"/app/config\"\n",
        15,
    );
    for records in runs(&s) {
        // The last value acknowledged a second before the end (later ones may be in flight).
        let end = records.last().map(|r| r.at).unwrap_or_default();
        let last = records
            .iter()
            .filter(|r| r.at + Duration::from_secs(1) <= end)
            .filter_map(|r| match &r.event {
                Event::ConfigWritten { mzxid, value, .. } => Some((*mzxid, value.clone())),
                _ => None,
            })
            .max()
            .expect("no write acknowledged");
        for watcher in [3, 4] {
            let seen = records
                .iter()
                .filter_map(|r| match &r.event {
                    Event::ConfigSeen {
                        client,
                        value: Some(v),
                        mzxid,
                        ..
                    } if *client == watcher => Some((*mzxid, v.clone())),
                    _ => None,
                })
                .max();
            assert!(
                seen.as_ref().is_some_and(|s| s.0 >= last.0),
                "watcher c{watcher} saw {seen:?}, the last write was {last:?}"
            );
        }
    }
}

#[test]
fn writers_creates_are_listed() {
    let s = scenario(
        "[[workload]]\nrole = \"writer\"\ncount = 2\npath = \"/w\"\nhold_ms = [50, 200]\n",
        12,
    );
    for records in runs(&s) {
        assert!(count(&records, |e| matches!(e, Event::Created { .. })) > 20);
        let listed = records
            .iter()
            .filter_map(|r| match &r.event {
                Event::Listed { names, .. } => Some(names.len()),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        assert!(listed > 10, "largest listing {listed}");
    }
}

#[test]
fn register_clients_do_every_operation() {
    use zkit_sim::register::{RegisterOp, RegisterResult};
    let s = scenario(
        "[[workload]]\nrole = \"register\"\ncount = 3\npath = \"/reg/x\"\nhold_ms = [20, 100]\n",
        10,
    );
    for records in runs(&s) {
        let calls = |pred: fn(&RegisterOp) -> bool| {
            count(
                &records,
                |e| matches!(e, Event::RegisterCall { op, .. } if pred(op)),
            )
        };
        assert_eq!(calls(|o| matches!(o, RegisterOp::Create { .. })), 3);
        assert!(calls(|o| matches!(o, RegisterOp::Read { synced: true })) > 10);
        assert!(calls(|o| matches!(o, RegisterOp::Read { synced: false })) > 5);
        assert!(calls(|o| matches!(o, RegisterOp::Write { .. })) > 10);
        assert!(calls(|o| matches!(o, RegisterOp::Cas { .. })) > 10);
        assert!(calls(|o| matches!(o, RegisterOp::Multi { .. })) > 3);
        // Every read leaves a data watch; writes fire them.
        assert!(count(&records, |e| matches!(e, Event::RegisterWatchSet { .. })) > 10);
        assert!(count(&records, |e| matches!(e, Event::RegisterWatchFired { .. })) > 10);
        // Without faults every operation has a verdict, and exactly one create applied.
        let results: Vec<&RegisterResult> = records
            .iter()
            .filter_map(|r| match &r.event {
                Event::RegisterReturn { result, .. } => Some(result),
                _ => None,
            })
            .collect();
        assert!(!results.iter().any(|r| r.is_indeterminate()));
        assert_eq!(
            results
                .iter()
                .filter(|r| **r == &RegisterResult::Written { version: 0 })
                .count(),
            1,
            "one create applied (version 0), no write made version 0"
        );
        assert_eq!(
            distinct_clients(&records, |e| matches!(e, Event::RegisterReturn { .. })),
            3
        );
    }
}
