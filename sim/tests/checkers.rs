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
fn liveness_judges_a_user_role_by_what_it_recorded() {
    let text = format!(
        "[ensemble]\nservers = 3\n\n[run]\nduration_s = 60\nliveness_s = 10\n\n{}{}\n{FAULT}",
        workload("my-scheduler", 2, "/e"),
        workload("my-worker", 2, "/w"),
    );
    let s = scenario::parse_with("t.toml", "t", &text, &["my-scheduler", "my-worker"])
        .unwrap_or_else(|e| panic!("{e}"));
    // c1 and c2 recorded leading: an election, leaderless after the heal. c3 and c4 never
    // recorded holding or leading: nothing to judge.
    let r = h(vec![
        (
            2_000,
            Event::Leader {
                client: 1,
                epoch: 5,
            },
        ),
        (8_000, Event::LeaderLost { client: 1 }),
        (10_000, Event::Healed),
        end(60_000),
    ]);
    let v = check::all(&r, &s);
    assert_eq!(checkers(&v), vec!["liveness"], "{v:#?}");
    assert!(v[0].message.contains("/e"), "{}", v[0]);
    // A leader within the window: live.
    let mut r = r;
    r.insert(
        3,
        Record {
            at: Duration::from_millis(12_000),
            event: Event::Leader {
                client: 2,
                epoch: 6,
            },
        },
    );
    assert_eq!(check::all(&r, &s), vec![]);
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
        e.push((t + 15 + i as u64, Event::BarrierLeaving { client: *c }));
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
    // c3 also passed enter with c1 gone, and c1 left with c2 inside: three broken.
    assert_eq!(
        checkers(&v),
        vec!["double-barrier", "double-barrier", "double-barrier"],
        "{v:#?}"
    );
    assert!(v.iter().any(|v| v.message.contains("c1 left")), "{v:#?}");
    assert!(
        v.iter().any(|v| v.message.contains("c3 passed enter")),
        "{v:#?}"
    );
}

#[test]
fn double_barrier_fires_when_a_leave_returns_before_everyone_called_leave() {
    let mut e = round(0, [1, 2, 3]);
    // c3 calls leave only after c1's leave returned.
    e.retain(|(_, ev)| *ev != Event::BarrierLeaving { client: 3 });
    e.push((20, Event::BarrierLeaving { client: 3 }));
    e.sort_by_key(|(t, _)| *t);
    let v = check::all(&h(e), &barrier());
    assert_eq!(checkers(&v), vec!["double-barrier"], "{v:#?}");
    assert!(
        v[0].message
            .contains("c1's leave of /b returned at 0.020000 s while c3"),
        "{}",
        v[0]
    );
    // A participant whose attempt failed before the leave returned is not waited for.
    let mut e = round(0, [1, 2, 3]);
    e.retain(|(_, ev)| {
        *ev != Event::BarrierLeaving { client: 3 } && *ev != Event::BarrierLeft { client: 3 }
    });
    e.push((
        16,
        Event::BarrierFailed {
            client: 3,
            error: "connection loss".into(),
        },
    ));
    e.sort_by_key(|(t, _)| *t);
    assert_eq!(check::all(&h(e), &barrier()), vec![]);
}

// ---- fencing ----

fn acquired(ms: u64, client: usize, token: i64) -> (u64, Event) {
    (ms, Event::Acquired { client, token })
}

fn write(ms: u64, client: usize, token: i64, accepted: bool) -> (u64, Event) {
    (
        ms,
        Event::Write {
            client,
            token,
            accepted,
        },
    )
}

#[test]
fn fencing_holds_when_the_stale_write_is_rejected() {
    let r = h(vec![
        acquired(1, 1, 10),
        write(1, 1, 10, true),
        (2, Event::Paused { client: 1 }),
        acquired(3, 2, 11),
        write(3, 2, 11, true),
        (4, Event::Resumed { client: 1 }),
        write(4, 1, 10, false),
        (5, Event::Lost { client: 1 }),
        (6, Event::Released { client: 2 }),
        acquired(7, 1, 12),
        write(7, 1, 12, true),
    ]);
    let report = check::report(&r, &lock2());
    assert_eq!(report.violations, vec![]);
    // The overlap is the pause's (mutual exclusion's finding), not fencing's.
    assert!(report.findings.iter().all(|f| f.checker != "fencing"));
}

#[test]
fn fencing_fires_when_a_legitimate_write_is_rejected() {
    let r = h(vec![
        acquired(1, 1, 10),
        write(1, 1, 10, true),
        (2, Event::Released { client: 1 }),
        acquired(3, 2, 11),
        write(3, 2, 11, false),
    ]);
    let v = check::all(&r, &lock2());
    assert_eq!(checkers(&v), vec!["fencing"], "{v:#?}");
    assert!(v[0].message.contains("rejected c2's write"), "{}", v[0]);
}

/// `swarm_everything` seed 297: a client on a lagging follower saw its node come first after
/// the ensemble had expired its session (the follower had not applied the close), and
/// recorded an acquisition with a token below the live holder's; its write was rejected.
/// That acquisition supersedes nobody: the live holder's later write is legitimate. The
/// same acquisition in a live session would make the holder's write a stale one.
#[test]
fn fencing_ignores_an_acquisition_made_in_an_expired_session() {
    let session = |ms, client, session| (ms, Event::Session { client, session });
    let base = vec![
        session(0, 1, 7),
        session(0, 2, 8),
        acquired(1, 1, 20),
        write(1, 1, 20, true),
    ];
    let mut expired = base.clone();
    expired.extend([
        (2, Event::SessionExpired { session: 8 }),
        acquired(3, 2, 10),
        write(3, 2, 10, false),
        (4, Event::Lost { client: 2 }),
        write(5, 1, 20, true),
    ]);
    let report = check::report(&h(expired), &lock2());
    let fencing: Vec<_> = report
        .violations
        .iter()
        .filter(|v| v.checker == "fencing")
        .collect();
    assert!(fencing.is_empty(), "{fencing:#?}");
    let mut live = base;
    live.extend([
        acquired(3, 2, 21),
        write(3, 2, 21, true),
        (4, Event::Lost { client: 2 }),
        write(5, 1, 20, true),
    ]);
    let v = check::all(&h(live), &lock2());
    assert!(
        v.iter()
            .any(|v| v.checker == "fencing" && v.message.contains("accepted c1's stale write")),
        "{v:#?}"
    );
}

/// A lock that hands every holder the same token: the paused holder's stale write is
/// accepted (the resource only refuses lower tokens), and the token did not increase.
#[test]
fn fencing_fires_when_every_holder_gets_the_same_token() {
    let r = h(vec![
        acquired(1, 1, 10),
        write(1, 1, 10, true),
        (2, Event::Paused { client: 1 }),
        acquired(3, 2, 10),
        write(3, 2, 10, true),
        (4, Event::Resumed { client: 1 }),
        write(4, 1, 10, true),
    ]);
    let v = check::all(&r, &lock2());
    assert_eq!(checkers(&v), vec!["fencing", "fencing"], "{v:#?}");
    assert!(
        v[0].message.contains("not above c1's earlier token"),
        "{}",
        v[0]
    );
    assert!(
        v[1].message.contains("accepted c1's stale write"),
        "{}",
        v[1]
    );
}

#[test]
fn fencing_fires_when_tokens_go_back() {
    let r = h(vec![
        acquired(1, 1, 10),
        write(1, 1, 10, true),
        (2, Event::Released { client: 1 }),
        acquired(3, 2, 9),
        (4, Event::Released { client: 2 }),
    ]);
    let v = check::all(&r, &lock2());
    assert_eq!(checkers(&v), vec!["fencing"], "{v:#?}");
    // Another lock's tokens are not compared.
    let two = scenario(
        &format!("{}{}", workload("lock", 1, "/a"), workload("lock", 1, "/b")),
        "",
    );
    let r = h(vec![
        acquired(1, 1, 10),
        (2, Event::Released { client: 1 }),
        acquired(3, 2, 9),
    ]);
    assert_eq!(check::all(&r, &two), vec![]);
}

#[test]
fn fencing_lower_token_recorded_after_a_pause_is_a_finding() {
    // c1 acquired (token 10) but its application froze before it noticed; when it wakes,
    // c2 has held with 11 already.
    let r = h(vec![
        (1, Event::Paused { client: 1 }),
        acquired(2, 2, 11),
        (3, Event::Released { client: 2 }),
        (4, Event::Resumed { client: 1 }),
        acquired(4, 1, 10),
        write(4, 1, 10, false),
        (5, Event::Lost { client: 1 }),
    ]);
    let report = check::report(&r, &lock2());
    assert_eq!(report.violations, vec![]);
    assert!(
        report.findings.iter().any(|f| f.checker == "fencing"),
        "{:#?}",
        report.findings
    );
}

// ---- connection policy ----

fn state(ms: u64, client: usize, state: &str) -> (u64, Event) {
    (
        ms,
        Event::State {
            client,
            state: state.into(),
        },
    )
}

#[test]
fn policy_holds_when_beliefs_end_at_suspended() {
    let r = h(vec![
        state(0, 1, "Connected"),
        acquired(100, 1, 10),
        state(200, 1, "Suspended"),
        (220, Event::Lost { client: 1 }),
        state(300, 1, "Connected"),
        (
            400,
            Event::Leader {
                client: 2,
                epoch: 1,
            },
        ),
        state(500, 2, "Suspended"),
        (500, Event::LeaderLost { client: 2 }),
        end(10_000),
    ]);
    assert_eq!(check::policy::check(&r, &lock2()), vec![]);
}

#[test]
fn policy_fires_when_a_holder_ignores_suspended() {
    let r = h(vec![
        state(0, 1, "Connected"),
        acquired(100, 1, 10),
        state(200, 1, "Suspended"),
        // Reconnected: the lock may have been lost meanwhile all the same.
        state(210, 1, "Connected"),
        (400, Event::Released { client: 1 }),
    ]);
    let v = check::all(&r, &lock2());
    assert_eq!(checkers(&v), vec!["connection-policy"], "{v:#?}");
    assert!(
        v[0].message.contains("went Suspended at 0.200000 s"),
        "{}",
        v[0]
    );
    // Under OnlySessionLoss, Suspended is fine; Lost is not.
    assert_eq!(
        check::policy::check_with(
            &r,
            &lock2(),
            zkit::recipe::ConnectionPolicy::OnlySessionLoss
        ),
        vec![]
    );
    let r = h(vec![
        state(0, 1, "Connected"),
        acquired(100, 1, 10),
        state(200, 1, "Suspended"),
        state(4000, 1, "Lost"),
        (4200, Event::Lost { client: 1 }),
    ]);
    let v = check::policy::check_with(
        &r,
        &lock2(),
        zkit::recipe::ConnectionPolicy::OnlySessionLoss,
    );
    assert_eq!(checkers(&v), vec!["connection-policy"], "{v:#?}");
    assert!(v[0].message.contains("went Lost at 4.000000 s"), "{}", v[0]);
}

/// `swarm_everything` seed 132: a leader candidate paused while it led; its client went
/// Suspended and Lost and then Connected in a new session, where it was elected again; the
/// resumed application saw only the latest leadership (a new epoch) and recorded it 2 ms
/// after resuming. That new belief is taken in a trusted state: it is not held against the
/// Suspended of the old one. A belief taken while still Suspended is.
#[test]
fn policy_lets_a_resumed_client_take_a_new_belief_in_its_new_session() {
    let leads = |ms, epoch| (ms, Event::Leader { client: 1, epoch });
    let base = vec![
        state(0, 1, "Connected"),
        leads(100, 1),
        (150, Event::Paused { client: 1 }),
        state(200, 1, "Suspended"),
        state(1500, 1, "Lost"),
        (
            1800,
            Event::Session {
                client: 1,
                session: 7,
            },
        ),
    ];
    let mut ok = base.clone();
    ok.extend([
        state(1800, 1, "Connected"),
        (5000, Event::Resumed { client: 1 }),
        leads(5002, 2),
        end(10_000),
    ]);
    assert_eq!(check::policy::check(&h(ok), &lock2()), vec![]);
    let mut doubtful = base;
    doubtful.extend([
        (5000, Event::Resumed { client: 1 }),
        leads(5002, 2),
        end(10_000),
    ]);
    assert_eq!(
        checkers(&check::policy::check(&h(doubtful), &lock2())),
        vec!["connection-policy"]
    );
}

#[test]
fn policy_gives_a_paused_holder_until_it_resumes() {
    let base = vec![
        state(0, 1, "Connected"),
        acquired(100, 1, 10),
        (150, Event::Paused { client: 1 }),
        state(200, 1, "Suspended"),
        (5000, Event::Resumed { client: 1 }),
    ];
    let mut ok = base.clone();
    ok.push((5010, Event::Lost { client: 1 }));
    assert_eq!(check::policy::check(&h(ok), &lock2()), vec![]);
    let mut late = base;
    late.push((5200, Event::Lost { client: 1 }));
    assert_eq!(
        checkers(&check::policy::check(&h(late), &lock2())),
        vec!["connection-policy"]
    );
}

#[test]
fn policy_fires_when_the_client_reports_lost_late() {
    let s = lock2();
    let bound = check::policy::lost_bound(&s);
    let expired = 9_000;
    let base = vec![
        state(0, 1, "Connected"),
        (
            1,
            Event::Session {
                client: 1,
                session: 0x5,
            },
        ),
        state(5_000, 1, "Suspended"),
        (expired, Event::SessionExpired { session: 0x5 }),
    ];
    let at = |extra: u64| expired + bound.as_millis() as u64 + extra;
    // In time, or before the ensemble: fine.
    for lost in [expired - 100, at(0)] {
        let mut e = base.clone();
        e.push(state(lost, 1, "Lost"));
        e.sort_by_key(|(t, _)| *t);
        e.push(end(30_000));
        assert_eq!(check::policy::check(&h(e), &s), vec![], "Lost at {lost}");
    }
    // Late, or never.
    let mut late = base.clone();
    late.push(state(at(1), 1, "Lost"));
    late.push(end(30_000));
    let v = check::policy::check(&h(late), &s);
    assert_eq!(checkers(&v), vec!["connection-policy"], "{v:#?}");
    assert!(v[0].message.contains("did not report Lost"), "{}", v[0]);
    let mut never = base;
    never.push(end(30_000));
    assert_eq!(
        checkers(&check::policy::check(&h(never), &s)),
        vec!["connection-policy"]
    );
}

// ---- session ----

#[test]
fn session_holds_in_the_current_session_and_fires_in_an_old_one() {
    let base = vec![
        (
            1,
            Event::Session {
                client: 1,
                session: 0x1,
            },
        ),
        acquired(10, 1, 10),
        (
            10,
            Event::HeldIn {
                client: 1,
                session: 0x1,
            },
        ),
        (20, Event::Released { client: 1 }),
        (
            30,
            Event::Session {
                client: 1,
                session: 0x2,
            },
        ),
        acquired(40, 1, 11),
    ];
    let mut ok = base.clone();
    ok.push((
        40,
        Event::HeldIn {
            client: 1,
            session: 0x2,
        },
    ));
    assert_eq!(check::all(&h(ok), &lock2()), vec![]);
    let mut old = base.clone();
    old.push((
        40,
        Event::HeldIn {
            client: 1,
            session: 0x1,
        },
    ));
    let v = check::all(&h(old), &lock2());
    assert_eq!(checkers(&v), vec!["session"], "{v:#?}");
    assert!(
        v[0].message
            .contains("holds in session 0x1, but its client is in session 0x2"),
        "{}",
        v[0]
    );
    // A paused application's late record is a finding.
    let mut paused = base;
    paused.insert(4, (25, Event::Paused { client: 1 }));
    paused.push((
        40,
        Event::HeldIn {
            client: 1,
            session: 0x1,
        },
    ));
    let report = check::report(&h(paused), &lock2());
    assert_eq!(report.violations, vec![]);
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    assert_eq!(report.findings[0].checker, "session");
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

// ---- lingering session ----

fn session(ms: u64, client: usize, session: i64) -> (u64, Event) {
    (ms, Event::Session { client, session })
}

fn held_in(ms: u64, client: usize, session: i64) -> (u64, Event) {
    (ms, Event::HeldIn { client, session })
}

/// c1 holds in session 0xa, its client renews into 0xb (its timer ran out), and its release
/// deletes the node from 0xb: c2 acquires while 0xa, with every other ephemeral of the old
/// holder, is alive (issue 11, item 11).
#[test]
fn lingering_session_fires_when_a_node_is_deleted_from_a_newer_session() {
    let r = h(vec![
        session(1, 1, 0xa),
        session(1, 2, 0xc),
        acquired(2, 1, 10),
        held_in(2, 1, 0xa),
        session(5, 1, 0xb),
        (6, Event::Released { client: 1 }),
        acquired(7, 2, 11),
        held_in(7, 2, 0xc),
        (9, Event::SessionExpired { session: 0xa }),
    ]);
    let v = check::all(&r, &lock2());
    assert_eq!(checkers(&v), vec!["lingering-session"], "{v:#?}");
    assert!(v[0].message.contains("session 0xa"), "{}", v[0]);
}

/// The same with the old session left to expire before anyone acquires, or closed by the
/// renewing client before its belief learnt of the renewal: the safe default.
#[test]
fn lingering_session_holds_when_the_old_session_ends_first() {
    for ending in [
        Event::SessionExpired { session: 0xa },
        Event::SessionClosed { session: 0xa },
    ] {
        let r = h(vec![
            session(1, 1, 0xa),
            session(1, 2, 0xc),
            acquired(2, 1, 10),
            held_in(2, 1, 0xa),
            (4, ending.clone()),
            session(5, 1, 0xb),
            (6, Event::Lost { client: 1 }),
            acquired(7, 2, 11),
            held_in(7, 2, 0xc),
        ]);
        let v = check::all(&r, &lock2());
        assert_eq!(v, vec![], "after {ending:?}");
    }
    // A release in the holder's own session deletes its node there.
    let r = h(vec![
        session(1, 1, 0xa),
        session(1, 2, 0xc),
        acquired(2, 1, 10),
        held_in(2, 1, 0xa),
        (3, Event::Released { client: 1 }),
        session(5, 1, 0xb),
        acquired(7, 2, 11),
        held_in(7, 2, 0xc),
    ]);
    assert_eq!(check::all(&r, &lock2()), vec![]);
}

/// A crashed holder deletes nothing: acquiring before its session expires means someone
/// else deleted its node.
#[test]
fn lingering_session_fires_when_a_crashed_holders_node_goes_before_its_session() {
    let r = h(vec![
        session(1, 1, 0xa),
        session(1, 2, 0xc),
        acquired(2, 1, 10),
        held_in(2, 1, 0xa),
        (3, Event::Crashed { client: 1 }),
        acquired(4, 2, 11),
        held_in(4, 2, 0xc),
    ]);
    let v = check::all(&r, &lock2());
    assert_eq!(checkers(&v), vec!["lingering-session"], "{v:#?}");
}
