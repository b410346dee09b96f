//! The checkers on hand-built histories: for each property one history that keeps it and one
//! (or more) that breaks it, plus the pause findings and the coverage counts.

use std::time::Duration;

use zkit_sim::check::{self, Violation};
use zkit_sim::history::{Event, Record};
use zkit_sim::scenario::{self, Scenario};

/// A scenario with `workloads` (TOML `[[workload]]` tables), a 60 s run, liveness 10 s, and
/// `faults` (TOML) if any.
fn scenario(workloads: &str, faults: &str) -> Scenario {
    let text = format!(
        "[ensemble]\nservers = 3\ntick_ms = 500\nsession_timeout_ms = 4000\n\n\
         [run]\nduration_s = 60\nliveness_s = 10\n\n{workloads}\n{faults}"
    );
    scenario::parse("t.toml", "t", &text).unwrap_or_else(|e| panic!("{e}"))
}

fn workload(role: &str, count: usize, path: &str) -> String {
    format!("[[workload]]\nrole = \"{role}\"\ncount = {count}\npath = \"{path}\"\n")
}

/// Records from `(milliseconds, event)` pairs, in order.
fn h(events: Vec<(u64, Event)>) -> Vec<Record> {
    events
        .into_iter()
        .map(|(ms, event)| Record {
            at: Duration::from_millis(ms),
            event,
        })
        .collect()
}

fn checkers(v: &[Violation]) -> Vec<&'static str> {
    v.iter().map(|v| v.checker).collect()
}

fn end(ms: u64) -> (u64, Event) {
    (
        ms,
        Event::Note {
            who: "runner".into(),
            what: "end of run".into(),
        },
    )
}

// ---- mutual exclusion ----

fn lock2() -> Scenario {
    scenario(&workload("lock", 3, "/l"), "")
}

#[test]
fn mutex_holds_when_beliefs_do_not_overlap() {
    let r = h(vec![
        (
            1,
            Event::Acquired {
                client: 1,
                token: 10,
            },
        ),
        (2, Event::Released { client: 1 }),
        (
            3,
            Event::Acquired {
                client: 2,
                token: 11,
            },
        ),
        (4, Event::Lost { client: 2 }),
        (
            5,
            Event::Acquired {
                client: 3,
                token: 12,
            },
        ),
        (6, Event::Crashed { client: 3 }),
        (
            7,
            Event::Acquired {
                client: 1,
                token: 13,
            },
        ),
    ]);
    let report = check::report(&r, &lock2());
    assert_eq!(report.violations, vec![]);
    assert_eq!(report.findings, vec![]);
}

#[test]
fn mutex_fires_on_overlap() {
    let r = h(vec![
        (
            1,
            Event::Acquired {
                client: 1,
                token: 10,
            },
        ),
        (
            2,
            Event::Acquired {
                client: 2,
                token: 11,
            },
        ),
    ]);
    assert_eq!(
        checkers(&check::all(&r, &lock2())),
        vec!["mutual-exclusion"]
    );
}

#[test]
fn mutex_overlap_with_a_paused_holder_is_a_finding_and_fencing_still_holds() {
    let r = h(vec![
        (
            1,
            Event::Acquired {
                client: 1,
                token: 10,
            },
        ),
        (
            2,
            Event::Write {
                client: 1,
                token: 10,
                accepted: true,
            },
        ),
        (3, Event::Paused { client: 1 }),
        (
            4,
            Event::Acquired {
                client: 2,
                token: 11,
            },
        ),
        (
            5,
            Event::Write {
                client: 2,
                token: 11,
                accepted: true,
            },
        ),
        (6, Event::Resumed { client: 1 }),
        // Still overlapping after the pause, until c1 looks.
        (
            7,
            Event::Write {
                client: 1,
                token: 10,
                accepted: false,
            },
        ),
        (8, Event::Lost { client: 1 }),
        (9, Event::Released { client: 2 }),
        (
            10,
            Event::Acquired {
                client: 1,
                token: 12,
            },
        ),
    ]);
    let report = check::report(&r, &lock2());
    assert_eq!(report.violations, vec![]);
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    assert_eq!(report.findings[0].checker, "mutual-exclusion");
    // Once c1 has looked (Lost), it is no longer tainted: a later overlap is a violation.
    let mut r2 = r.clone();
    r2.push(Record {
        at: Duration::from_millis(11),
        event: Event::Acquired {
            client: 2,
            token: 13,
        },
    });
    assert_eq!(
        checkers(&check::all(&r2, &lock2())),
        vec!["mutual-exclusion"]
    );
    // The stale write accepted would break fencing even with the pause.
    let mut r3 = r.clone();
    r3[6].event = Event::Write {
        client: 1,
        token: 10,
        accepted: true,
    };
    assert_eq!(checkers(&check::all(&r3, &lock2())), vec!["fencing"]);
}

#[test]
fn separate_lock_paths_do_not_exclude_each_other() {
    let s = scenario(
        &(workload("lock", 1, "/a") + &workload("lock", 1, "/b")),
        "",
    );
    let r = h(vec![
        (
            1,
            Event::Acquired {
                client: 1,
                token: 10,
            },
        ),
        (
            2,
            Event::Acquired {
                client: 2,
                token: 11,
            },
        ),
    ]);
    assert_eq!(check::all(&r, &s), vec![]);
}

#[test]
fn rwlock_readers_share_writers_exclude() {
    let s = scenario(&workload("rwlock", 3, "/rw"), "");
    let ok = h(vec![
        (
            1,
            Event::ReadAcquired {
                client: 1,
                token: 10,
            },
        ),
        (
            2,
            Event::ReadAcquired {
                client: 2,
                token: 11,
            },
        ),
        (3, Event::Released { client: 1 }),
        (4, Event::Released { client: 2 }),
        (
            5,
            Event::WriteAcquired {
                client: 3,
                token: 12,
            },
        ),
    ]);
    assert_eq!(check::all(&ok, &s), vec![]);
    let bad = h(vec![
        (
            1,
            Event::ReadAcquired {
                client: 1,
                token: 10,
            },
        ),
        (
            2,
            Event::WriteAcquired {
                client: 3,
                token: 12,
            },
        ),
        (
            3,
            Event::ReadAcquired {
                client: 2,
                token: 13,
            },
        ),
    ]);
    assert_eq!(
        checkers(&check::all(&bad, &s)),
        vec!["mutual-exclusion", "mutual-exclusion"]
    );
}

// ---- single leader ----

fn election() -> Scenario {
    scenario(&workload("leader-latch", 3, "/e"), "")
}

#[test]
fn single_leader_holds_for_successive_leaders() {
    let r = h(vec![
        (
            1,
            Event::Leader {
                client: 1,
                epoch: 10,
            },
        ),
        (2, Event::LeaderLost { client: 1 }),
        // A latch re-checks its node after a reconnect: the same epoch again.
        (
            3,
            Event::Leader {
                client: 1,
                epoch: 10,
            },
        ),
        (4, Event::SteppedDown { client: 1 }),
        (
            5,
            Event::Leader {
                client: 2,
                epoch: 12,
            },
        ),
        (6, Event::Crashed { client: 2 }),
        (
            7,
            Event::Leader {
                client: 3,
                epoch: 13,
            },
        ),
    ]);
    let report = check::report(&r, &election());
    assert_eq!(report.violations, vec![]);
    assert_eq!(report.findings, vec![]);
}

#[test]
fn single_leader_fires_on_two_leaders() {
    let r = h(vec![
        (
            1,
            Event::Leader {
                client: 1,
                epoch: 10,
            },
        ),
        (
            2,
            Event::Leader {
                client: 2,
                epoch: 11,
            },
        ),
    ]);
    assert_eq!(
        checkers(&check::all(&r, &election())),
        vec!["single-leader"]
    );
}

#[test]
fn single_leader_fires_on_an_epoch_going_back() {
    let r = h(vec![
        (
            1,
            Event::Leader {
                client: 1,
                epoch: 10,
            },
        ),
        (2, Event::SteppedDown { client: 1 }),
        (
            3,
            Event::Leader {
                client: 2,
                epoch: 9,
            },
        ),
        (4, Event::SteppedDown { client: 2 }),
        (
            5,
            Event::Leader {
                client: 3,
                epoch: 10,
            },
        ),
    ]);
    assert_eq!(
        checkers(&check::all(&r, &election())),
        vec!["single-leader", "single-leader"]
    );
}

#[test]
fn a_paused_leader_overlapping_is_a_finding() {
    let r = h(vec![
        (
            1,
            Event::Leader {
                client: 1,
                epoch: 10,
            },
        ),
        (2, Event::Paused { client: 1 }),
        (
            3,
            Event::Leader {
                client: 2,
                epoch: 11,
            },
        ),
        (4, Event::Resumed { client: 1 }),
        (5, Event::LeaderLost { client: 1 }),
    ]);
    let report = check::report(&r, &election());
    assert_eq!(report.violations, vec![]);
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].checker, "single-leader");
}

// ---- liveness ----

const FAULT: &str = "[[fault]]\nat_s = 5\nkind = \"crash\"\ntarget = \"server:1\"\nfor_s = 5\n";

#[test]
fn liveness_holds_when_the_lock_moves_and_a_leader_exists_after_the_heal() {
    let s = scenario(
        &(workload("lock", 2, "/l") + &workload("leader-selector", 2, "/e")),
        FAULT,
    );
    let r = h(vec![
        (
            1_000,
            Event::Leader {
                client: 3,
                epoch: 5,
            },
        ),
        (10_000, Event::Healed),
        (
            12_000,
            Event::Acquired {
                client: 1,
                token: 10,
            },
        ),
        (12_500, Event::Released { client: 1 }),
        end(60_000),
    ]);
    assert_eq!(check::all(&r, &s), vec![]);
    // A holder across the heal that releases in the window, then a handoff a bit later.
    let r = h(vec![
        (
            9_000,
            Event::Acquired {
                client: 1,
                token: 10,
            },
        ),
        (10_000, Event::Healed),
        (
            11_000,
            Event::Leader {
                client: 3,
                epoch: 11,
            },
        ),
        (19_000, Event::Released { client: 1 }),
        (
            21_000,
            Event::Acquired {
                client: 2,
                token: 12,
            },
        ),
        end(60_000),
    ]);
    assert_eq!(check::all(&r, &s), vec![]);
}

#[test]
fn liveness_fires_without_a_handoff_or_a_leader() {
    let s = scenario(
        &(workload("lock", 2, "/l") + &workload("leader-latch", 2, "/e")),
        FAULT,
    );
    let r = h(vec![
        (
            1_000,
            Event::Acquired {
                client: 1,
                token: 10,
            },
        ),
        (1_500, Event::Released { client: 1 }),
        (
            2_000,
            Event::Leader {
                client: 3,
                epoch: 5,
            },
        ),
        (8_000, Event::LeaderLost { client: 3 }),
        (10_000, Event::Healed),
        // Too late: the window is [10 s, 20 s].
        (
            21_000,
            Event::Acquired {
                client: 2,
                token: 11,
            },
        ),
        end(60_000),
    ]);
    let v = check::all(&r, &s);
    assert_eq!(checkers(&v), vec!["liveness", "liveness"], "{v:#?}");
    // A paused leader's belief across the window is no progress.
    let r = h(vec![
        (
            2_000,
            Event::Leader {
                client: 3,
                epoch: 5,
            },
        ),
        (3_000, Event::Paused { client: 3 }),
        (10_000, Event::Healed),
        (
            11_000,
            Event::Acquired {
                client: 1,
                token: 10,
            },
        ),
        end(60_000),
    ]);
    assert_eq!(checkers(&check::all(&r, &s)), vec!["liveness"]);
}

#[test]
fn liveness_fires_when_the_window_does_not_fit() {
    let s = scenario(&workload("lock", 2, "/l"), FAULT);
    let r = h(vec![
        (55_000, Event::Healed),
        (
            55_500,
            Event::Acquired {
                client: 1,
                token: 10,
            },
        ),
        end(60_000),
    ]);
    let v = check::all(&r, &s);
    assert_eq!(checkers(&v), vec!["liveness"]);
    assert!(v[0].message.contains("no room for liveness"), "{}", v[0]);
    // No heal at all: the runner's business.
    let r = h(vec![end(60_000)]);
    assert_eq!(check::all(&r, &s), vec![]);
}

// ---- double barrier ----

fn barrier() -> Scenario {
    scenario(&workload("double-barrier", 3, "/b"), "")
}

fn round(t: u64, order: [usize; 3]) -> Vec<(u64, Event)> {
    let mut e = Vec::new();
    for (i, c) in order.iter().enumerate() {
        e.push((t + i as u64, Event::BarrierEntering { client: *c }));
    }
    for (i, c) in order.iter().enumerate() {
        e.push((t + 10 + i as u64, Event::BarrierEntered { client: *c }));
    }
    for (i, c) in order.iter().enumerate() {
        e.push((t + 20 + i as u64, Event::BarrierLeft { client: *c }));
    }
    e
}

#[test]
fn double_barrier_holds_for_full_rounds() {
    let mut e = round(0, [1, 2, 3]);
    e.extend(round(100, [3, 1, 2]));
    assert_eq!(check::all(&h(e), &barrier()), vec![]);
}

#[test]
fn double_barrier_counts_a_dead_participant_until_its_session_expires() {
    let e = vec![
        (0, Event::BarrierEntering { client: 2 }),
        (100, Event::Crashed { client: 2 }),
        (200, Event::BarrierEntering { client: 1 }),
        (300, Event::BarrierEntering { client: 3 }),
        (400, Event::BarrierEntered { client: 1 }),
        (401, Event::BarrierEntered { client: 3 }),
    ];
    assert_eq!(check::all(&h(e), &barrier()), vec![]);
    // ... but not forever.
    let e = vec![
        (0, Event::BarrierEntering { client: 2 }),
        (100, Event::Crashed { client: 2 }),
        (200, Event::BarrierEntering { client: 1 }),
        (300, Event::BarrierEntering { client: 3 }),
        (30_000, Event::BarrierEntered { client: 1 }),
    ];
    assert_eq!(
        checkers(&check::all(&h(e), &barrier())),
        vec!["double-barrier"]
    );
}

#[test]
fn double_barrier_fires_on_an_early_release() {
    let e = vec![
        (0, Event::BarrierEntering { client: 1 }),
        (1, Event::BarrierEntering { client: 2 }),
        (10, Event::BarrierEntered { client: 1 }),
    ];
    let v = check::all(&h(e), &barrier());
    assert_eq!(checkers(&v), vec!["double-barrier"]);
    assert!(v[0].message.contains("2 participants present"), "{}", v[0]);
}

#[test]
fn double_barrier_fires_when_someone_leaves_before_all_entered() {
    let e = vec![
        (0, Event::BarrierEntering { client: 1 }),
        (1, Event::BarrierEntering { client: 2 }),
        (2, Event::BarrierEntering { client: 3 }),
        (10, Event::BarrierEntered { client: 1 }),
        (11, Event::BarrierEntered { client: 2 }),
        (20, Event::BarrierLeft { client: 1 }),
        (30, Event::BarrierEntered { client: 3 }),
    ];
    let v = check::all(&h(e), &barrier());
    // c3 also passed enter with c1 gone: both properties broken.
    assert_eq!(
        checkers(&v),
        vec!["double-barrier", "double-barrier"],
        "{v:#?}"
    );
    assert!(v.iter().any(|v| v.message.contains("c1 left")), "{v:#?}");
    assert!(
        v.iter().any(|v| v.message.contains("c3 passed enter")),
        "{v:#?}"
    );
}

// ---- semaphore ----

#[test]
fn semaphore_holds_within_its_leases_and_fires_beyond() {
    let s = scenario(
        &(workload("semaphore", 3, "/s").trim_end().to_owned() + "\nleases = 2\n"),
        "",
    );
    let ok = h(vec![
        (
            1,
            Event::LeaseAcquired {
                client: 1,
                token: 1,
            },
        ),
        (
            2,
            Event::LeaseAcquired {
                client: 2,
                token: 2,
            },
        ),
        (3, Event::Released { client: 1 }),
        (
            4,
            Event::LeaseAcquired {
                client: 3,
                token: 3,
            },
        ),
    ]);
    let report = check::report(&ok, &s);
    assert_eq!(report.violations, vec![]);
    assert_eq!(report.findings, vec![]);
    let bad = h(vec![
        (
            1,
            Event::LeaseAcquired {
                client: 1,
                token: 1,
            },
        ),
        (
            2,
            Event::LeaseAcquired {
                client: 2,
                token: 2,
            },
        ),
        (
            3,
            Event::LeaseAcquired {
                client: 3,
                token: 3,
            },
        ),
    ]);
    assert_eq!(checkers(&check::all(&bad, &s)), vec!["semaphore"]);
    let paused = h(vec![
        (
            1,
            Event::LeaseAcquired {
                client: 1,
                token: 1,
            },
        ),
        (2, Event::Paused { client: 1 }),
        (
            3,
            Event::LeaseAcquired {
                client: 2,
                token: 2,
            },
        ),
        (
            4,
            Event::LeaseAcquired {
                client: 3,
                token: 3,
            },
        ),
    ]);
    let report = check::report(&paused, &s);
    assert_eq!(report.violations, vec![]);
    assert_eq!(report.findings.len(), 1);
}

// ---- config ----

fn config() -> Scenario {
    scenario(
        &(workload("config-writer", 1, "/c") + &workload("config-watcher", 2, "/c")),
        "",
    )
}

fn written(ms: u64, value: &str, mzxid: i64, version: i32) -> (u64, Event) {
    (
        ms,
        Event::ConfigWritten {
            client: 1,
            value: value.into(),
            mzxid,
            version,
        },
    )
}

fn seen(ms: u64, client: usize, value: &str, mzxid: i64, version: i32) -> (u64, Event) {
    (
        ms,
        Event::ConfigSeen {
            client,
            value: Some(value.into()),
            mzxid,
            version,
        },
    )
}

fn config_ok() -> Vec<(u64, Event)> {
    vec![
        (
            0,
            Event::Started {
                client: 2,
                incarnation: 0,
            },
        ),
        (
            0,
            Event::Started {
                client: 3,
                incarnation: 0,
            },
        ),
        (
            1,
            Event::ConfigSeen {
                client: 2,
                value: None,
                mzxid: 0,
                version: -1,
            },
        ),
        seen(5, 3, "init", 10, 0),
        written(1_000, "a", 11, 1),
        seen(1_010, 2, "a", 11, 1),
        written(2_000, "b", 12, 2),
        written(3_000, "c", 14, 3),
        seen(3_020, 2, "c", 14, 3),
        seen(3_030, 3, "c", 14, 3),
        end(60_000),
    ]
}

#[test]
fn config_holds_for_one_chain_and_converged_watchers() {
    assert_eq!(check::all(&h(config_ok()), &config()), vec![]);
}

#[test]
fn config_fires_on_a_lost_acknowledged_write() {
    // "c" got version 2 again: the write of "b" (version 2) was lost.
    let mut e = config_ok();
    e[7] = written(3_000, "c", 14, 2);
    e[8] = seen(3_020, 2, "c", 14, 2);
    e[9] = seen(3_030, 3, "c", 14, 2);
    let v = check::all(&h(e), &config());
    assert_eq!(checkers(&v), vec!["config"]);
    assert!(v[0].message.contains("was lost"), "{}", v[0]);
}

#[test]
fn config_fires_on_a_made_up_value_and_a_watcher_going_back() {
    let mut e = config_ok();
    e.insert(10, seen(4_000, 3, "zzz", 15, 4));
    e.insert(11, seen(4_100, 2, "a", 11, 1));
    let v = check::all(&h(e), &config());
    let messages: Vec<String> = v.iter().map(|v| v.to_string()).collect();
    assert!(
        messages.iter().any(|m| m.contains("nobody wrote")),
        "{messages:#?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("go back")),
        "{messages:#?}"
    );
}

#[test]
fn config_fires_on_a_watcher_that_never_converges() {
    let mut e = config_ok();
    e.remove(9); // c3 never sees "c"
    let v = check::all(&h(e), &config());
    assert_eq!(checkers(&v), vec!["config"]);
    assert!(v[0].message.contains("c3 never saw \"c\""), "{}", v[0]);
    // A watcher that crashed and was not restarted is not expected to converge.
    let mut e = config_ok();
    e.remove(9);
    e.insert(9, (3_100, Event::Crashed { client: 3 }));
    assert_eq!(check::all(&h(e), &config()), vec![]);
}

// ---- acknowledged creates ----

fn writers() -> Scenario {
    scenario(&workload("writer", 2, "/w"), "")
}

fn listed(ms: u64, asked: u64, names: &[&str]) -> (u64, Event) {
    (
        ms,
        Event::Listed {
            client: 2,
            asked_at: Duration::from_millis(asked),
            names: names.iter().map(|n| n.to_string()).collect(),
        },
    )
}

fn created(ms: u64, client: usize, name: &str) -> (u64, Event) {
    (
        ms,
        Event::Created {
            client,
            name: name.into(),
        },
    )
}

#[test]
fn writes_hold_when_every_acknowledged_create_is_listed() {
    let e = vec![
        created(10, 1, "w1-0-0-"),
        created(20, 2, "w2-0-0-"),
        (
            25,
            Event::CreateUncertain {
                client: 1,
                name: "w1-0-1-".into(),
            },
        ),
        created(40, 1, "w1-0-2-"),
        // Acknowledged after the sync went out: not required in this listing.
        listed(50, 30, &["w1-0-0-", "w2-0-0-"]),
    ];
    assert_eq!(check::all(&h(e), &writers()), vec![]);
}

#[test]
fn writes_fire_on_a_missing_or_doubled_create() {
    let e = vec![
        created(10, 1, "w1-0-0-"),
        created(20, 2, "w2-0-0-"),
        listed(50, 30, &["w2-0-0-", "w2-0-0-"]),
    ];
    let v = check::all(&h(e), &writers());
    assert_eq!(checkers(&v), vec!["writes", "writes"]);
    assert!(
        v.iter().any(|v| v.message.contains("w1-0-0- acknowledged")),
        "{v:#?}"
    );
    assert!(v.iter().any(|v| v.message.contains("twice")), "{v:#?}");
}

// ---- coverage ----

#[test]
fn coverage_counts_role_level_events() {
    let mut e = vec![
        (
            1,
            Event::Acquired {
                client: 1,
                token: 1,
            },
        ),
        (2, Event::Released { client: 1 }),
        (
            3,
            Event::Acquired {
                client: 1,
                token: 2,
            },
        ),
        (4, Event::Released { client: 1 }),
        (
            5,
            Event::Acquired {
                client: 2,
                token: 3,
            },
        ),
        (
            6,
            Event::Write {
                client: 1,
                token: 1,
                accepted: false,
            },
        ),
        (
            7,
            Event::Leader {
                client: 4,
                epoch: 1,
            },
        ),
        (8, Event::SteppedDown { client: 4 }),
        (
            9,
            Event::Leader {
                client: 5,
                epoch: 2,
            },
        ),
        (
            10,
            Event::State {
                client: 1,
                state: "Lost".into(),
            },
        ),
        (11, Event::Paused { client: 2 }),
        seen(12, 3, "a", 1, 1),
    ];
    e.extend(round(100, [6, 7, 8]));
    e.extend(round(200, [6, 7, 8]));
    let c = check::coverage(&h(e));
    assert_eq!(c.get("lock handoffs"), Some(&1));
    assert_eq!(c.get("leader changes"), Some(&2));
    assert_eq!(c.get("barrier rounds"), Some(&2));
    assert_eq!(c.get("config values seen"), Some(&1));
    assert_eq!(c.get("stale writes rejected"), Some(&1));
    assert_eq!(c.get("sessions expired"), Some(&1));
    assert_eq!(c.get("pauses"), Some(&1));
}

#[test]
fn config_allows_the_one_write_in_flight_but_no_other_unwritten_value() {
    let base = vec![
        (
            0,
            Event::Started {
                client: 2,
                incarnation: 0,
            },
        ),
        written(1_000, "c1.0.0", 11, 1),
        written(2_000, "c1.0.1", 12, 2),
        seen(2_010, 2, "c1.0.1", 12, 2),
    ];
    // c1's next write was in flight when the run ended.
    let mut e = base.clone();
    e.push(seen(59_990, 2, "c1.0.2", 13, 3));
    e.push(end(60_000));
    assert_eq!(check::all(&h(e), &config()), vec![]);
    // One further: nobody wrote that.
    let mut e = base;
    e.push(seen(59_990, 2, "c1.0.3", 13, 3));
    e.push(end(60_000));
    let v = check::all(&h(e), &config());
    assert_eq!(checkers(&v), vec!["config"]);
    assert!(v[0].message.contains("nobody wrote"), "{}", v[0]);
}
