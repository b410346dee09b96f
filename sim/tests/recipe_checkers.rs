//! The per-recipe checkers (counter, queues, lease, partitioner, multi-lock, tree cache,
//! simple barrier) on hand-built histories: for each property one history that keeps it and
//! one that breaks it, so that none of them can only pass.

use std::time::Duration;

use zkit_sim::check::{self, Violation};
use zkit_sim::history::{Event, Record};
use zkit_sim::scenario::{self, Scenario};

/// A scenario with `workloads` (TOML `[[workload]]` tables), a 60 s run, liveness 10 s.
fn scenario(workloads: &str) -> Scenario {
    let text = format!(
        "[ensemble]\nservers = 3\ntick_ms = 500\nsession_timeout_ms = 4000\n\n\
         [run]\nduration_s = 60\nliveness_s = 10\n\n{workloads}"
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

fn named(v: &[Violation], checker: &str) -> usize {
    v.iter().filter(|v| v.checker == checker).count()
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

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---- counter ----

fn adds(values: &[(usize, i32)]) -> Vec<(u64, Event)> {
    let mut out = Vec::new();
    for (i, &(client, value)) in values.iter().enumerate() {
        let t = 10 * i as u64;
        out.push((t, Event::CounterAdding { client }));
        out.push((t + 5, Event::CounterAdded { client, value }));
    }
    out
}

#[test]
fn counter_holds_when_every_add_counts_once() {
    let s = scenario(&workload("counter", 2, "/c"));
    let mut r = adds(&[(1, 1), (2, 2), (1, 3)]);
    r.push((30, Event::CounterAdding { client: 2 }));
    r.push((35, Event::CounterUncertain { client: 2 }));
    for value in [3, 4] {
        r.push((
            100,
            Event::CounterRead {
                client: 1,
                asked_at: ms(50),
                value,
            },
        ));
    }
    assert_eq!(check::all(&h(r), &s), vec![]);
}

#[test]
fn counter_catches_a_lost_add_a_doubled_add_and_a_shared_value() {
    let s = scenario(&workload("counter", 2, "/c"));
    // A read below the acknowledged adds.
    let mut lost = adds(&[(1, 1), (2, 2)]);
    lost.push((
        100,
        Event::CounterRead {
            client: 1,
            asked_at: ms(50),
            value: 1,
        },
    ));
    assert_eq!(named(&check::all(&h(lost), &s), "counter"), 1);
    // A read above every add called: one applied twice.
    let mut doubled = adds(&[(1, 1), (2, 2)]);
    doubled.push((
        100,
        Event::CounterRead {
            client: 1,
            asked_at: ms(50),
            value: 3,
        },
    ));
    assert_eq!(named(&check::all(&h(doubled), &s), "counter"), 1);
    // Two adds that returned one value.
    let shared = adds(&[(1, 1), (2, 1)]);
    assert_eq!(named(&check::all(&h(shared), &s), "counter"), 1);
}

// ---- queues ----

fn queue(kind: &str) -> Scenario {
    scenario(&format!(
        "{}{}",
        workload(&format!("{kind}-producer"), 1, "/q"),
        workload(&format!("{kind}-consumer"), 2, "/q")
    ))
}

fn put(item: &str, at: u64) -> (u64, Event) {
    (
        at,
        Event::QueuePut {
            client: 1,
            item: item.into(),
            started: ms(at - 5),
        },
    )
}

fn took(client: usize, item: &str, at: u64) -> (u64, Event) {
    (
        at,
        Event::QueueTaken {
            client,
            item: item.into(),
            started: ms(at - 5),
        },
    )
}

#[test]
fn queues_hold_when_every_put_is_taken_once() {
    for kind in ["queue", "locking-queue"] {
        let s = queue(kind);
        let r = h(vec![
            put("c1.0.0", 10),
            // Taken before its producer heard back.
            took(2, "c1.0.1", 15),
            put("c1.0.1", 20),
            took(3, "c1.0.0", 30),
            // The put in flight at the end.
            took(2, "c1.0.2", 40),
            end(60_000),
        ]);
        assert_eq!(check::all(&r, &s), vec![], "{kind}");
    }
}

#[test]
fn queues_catch_made_up_duplicate_and_lost_items() {
    for kind in ["queue", "locking-queue"] {
        let s = queue(kind);
        let made_up = h(vec![
            put("c1.0.0", 10),
            took(2, "c1.0.5", 20),
            took(2, "c1.0.0", 30),
        ]);
        assert_eq!(named(&check::all(&made_up, &s), "queue"), 1, "{kind}");
        let twice = h(vec![
            put("c1.0.0", 10),
            took(2, "c1.0.0", 20),
            took(3, "c1.0.0", 30),
        ]);
        assert_eq!(named(&check::all(&twice, &s), "queue"), 1, "{kind}");
        let lost = h(vec![
            put("c1.0.0", 10),
            put("c1.0.1", 20),
            took(2, "c1.0.0", 30),
            end(60_000),
        ]);
        assert_eq!(named(&check::all(&lost, &s), "queue"), 1, "{kind}");
    }
}

#[test]
fn a_lost_reply_excuses_a_duplicate_only_where_the_recipe_allows_it() {
    let lost_take_reply = |kind| {
        let r = h(vec![
            put("c1.0.0", 10),
            took(2, "c1.0.0", 20),
            (
                27,
                Event::State {
                    client: 3,
                    state: "Suspended".into(),
                },
            ),
            took(3, "c1.0.0", 30),
        ]);
        named(&check::all(&r, &queue(kind)), "queue")
    };
    // A plain queue counts a delete whose reply was lost as a take; a locking queue never
    // consumes twice.
    assert_eq!(lost_take_reply("queue"), 0);
    assert_eq!(lost_take_reply("locking-queue"), 1);
    // A lost put reply may enqueue the item twice, in either queue.
    for kind in ["queue", "locking-queue"] {
        let r = h(vec![
            (
                9,
                Event::State {
                    client: 1,
                    state: "Suspended".into(),
                },
            ),
            put("c1.0.0", 10),
            took(2, "c1.0.0", 20),
            took(3, "c1.0.0", 30),
        ]);
        assert_eq!(check::all(&r, &queue(kind)), vec![], "{kind}");
    }
}

// ---- lease ----

fn held(client: usize, at: u64, until: u64) -> (u64, Event) {
    (
        at,
        Event::LeaseHeld {
            client,
            until: ms(until),
        },
    )
}

#[test]
fn lease_holds_when_beliefs_do_not_overlap_and_catches_an_overlap() {
    let s = scenario(&workload("lease", 2, "/lease"));
    let fine = h(vec![
        held(1, 0, 2000),
        held(1, 700, 2700),
        held(2, 2700, 4700),
        (3000, Event::Paused { client: 2 }),
        held(1, 4800, 6800),
    ]);
    assert_eq!(check::all(&fine, &s), vec![]);
    // A renewal extends the belief: another holder before its end overlaps, paused or not.
    let overlap = h(vec![
        held(1, 0, 2000),
        held(1, 700, 2700),
        (800, Event::Paused { client: 1 }),
        held(2, 2500, 4500),
    ]);
    assert_eq!(named(&check::all(&overlap, &s), "lease"), 1);
}

// ---- partitioner ----

fn owns(client: usize, items: &[&str], at: u64) -> (u64, Event) {
    (
        at,
        Event::PartitionAcquired {
            client,
            items: items.iter().map(|i| (*i).to_owned()).collect(),
        },
    )
}

#[test]
fn partitioner_holds_for_disjoint_shares_and_catches_a_shared_item() {
    let s = scenario(&workload("partitioner", 2, "/p"));
    let fine = h(vec![
        owns(1, &["i0", "i1"], 10),
        owns(2, &["i2"], 20),
        (30, Event::PartitionReleased { client: 1 }),
        owns(2, &["i0", "i2"], 40),
    ]);
    assert_eq!(check::all(&fine, &s), vec![]);
    let shared = h(vec![owns(1, &["i0", "i1"], 10), owns(2, &["i1", "i2"], 20)]);
    assert_eq!(named(&check::all(&shared, &s), "partitioner"), 1);
    // A paused owner's overlap is a finding.
    let paused = h(vec![
        owns(1, &["i0"], 10),
        (15, Event::Paused { client: 1 }),
        owns(2, &["i0"], 20),
    ]);
    assert_eq!(check::all(&paused, &s), vec![]);
    assert_eq!(check::findings(&paused, &s).len(), 1);
}

// ---- multi-lock ----

fn multi(client: usize, locks: &[&str], at: u64) -> (u64, Event) {
    (
        at,
        Event::MultiLockAcquired {
            client,
            locks: locks.iter().map(|l| (*l).to_owned()).collect(),
        },
    )
}

#[test]
fn multi_lock_excludes_per_lock_path() {
    let s = scenario(&workload("multi-lock", 2, "/m"));
    let fine = h(vec![
        multi(1, &["/m/l0", "/m/l1"], 10),
        multi(2, &["/m/l2"], 20),
        (30, Event::Released { client: 1 }),
        multi(2, &["/m/l0", "/m/l1"], 40),
    ]);
    assert_eq!(check::all(&fine, &s), vec![]);
    let overlap = h(vec![
        multi(1, &["/m/l0", "/m/l1"], 10),
        multi(2, &["/m/l1", "/m/l2"], 20),
    ]);
    assert_eq!(named(&check::all(&overlap, &s), "multi-lock"), 1);
}

// ---- tree cache ----

fn written(node: &str, value: Option<&str>, at: u64) -> (u64, Event) {
    (
        at,
        Event::TreeWritten {
            client: 1,
            node: node.into(),
            value: value.map(str::to_owned),
        },
    )
}

fn seen(node: &str, value: Option<&str>, at: u64) -> (u64, Event) {
    (
        at,
        Event::TreeCacheSeen {
            client: 2,
            node: node.into(),
            value: value.map(str::to_owned),
        },
    )
}

fn tree(last: Vec<(u64, Event)>) -> Vec<Violation> {
    let s = scenario(&format!(
        "{}{}",
        workload("tree-writer", 1, "/t"),
        workload("tree-cache", 1, "/t")
    ));
    let mut r = vec![
        (100, Event::TreeCacheStarted { client: 2 }),
        written("/t/c1/k0", Some("a"), 1000),
        seen("/t/c1/k0", Some("a"), 1001),
        written("/t/c1/k1", Some("b"), 2000),
        seen("/t/c1/k1", Some("b"), 2001),
        written("/t/c1/k1", None, 3000),
    ];
    r.extend(last);
    r.push(end(60_000));
    check::all(&h(r), &s)
}

#[test]
fn tree_cache_converges_or_is_caught() {
    // Converged.
    assert_eq!(tree(vec![seen("/t/c1/k1", None, 3001)]), vec![]);
    // A write in flight at the end may or may not be in the cache.
    assert_eq!(
        tree(vec![
            seen("/t/c1/k1", None, 3001),
            (
                59_500,
                Event::TreeWriting {
                    client: 1,
                    node: "/t/c1/k0".into(),
                    value: Some("z".into()),
                },
            ),
            seen("/t/c1/k0", Some("z"), 59_501),
        ]),
        vec![]
    );
    // The cache missed a deletion long before the end.
    assert_eq!(named(&tree(vec![]), "tree-cache"), 1);
}

// ---- simple barrier ----

fn barrier(events: Vec<(u64, Event)>) -> Vec<Violation> {
    let s = scenario(&format!(
        "{}{}",
        workload("barrier-keeper", 1, "/b"),
        workload("barrier-waiter", 1, "/b")
    ));
    check::all(&h(events), &s)
}

#[test]
fn simple_barrier_releases_only_after_removal() {
    let raised = (10, Event::BarrierRaised { client: 1 });
    let waiting = (20, Event::BarrierWaiting { client: 2 });
    let removing = (30, Event::BarrierRemoving { client: 1 });
    let released = (40, Event::BarrierReleased { client: 2 });
    assert_eq!(
        barrier(vec![
            raised.clone(),
            waiting.clone(),
            removing,
            released.clone()
        ]),
        vec![]
    );
    // Waiting from before the raise: it may have seen the barrier down.
    assert_eq!(
        barrier(vec![
            (5, Event::BarrierWaiting { client: 2 }),
            raised.clone(),
            released.clone()
        ]),
        vec![]
    );
    let early = barrier(vec![raised, waiting, released]);
    assert_eq!(named(&early, "simple-barrier"), 1);
}

// ---- the `lock-holder` target ----

#[test]
fn lock_holder_covers_every_role_that_holds_something() {
    use zkit_sim::history::History;
    let history = History::new();
    let events = [
        Event::ReadAcquired {
            client: 1,
            token: 5,
        },
        Event::LeaseAcquired {
            client: 2,
            token: 6,
        },
        Event::MultiLockAcquired {
            client: 3,
            locks: vec!["/m/l0".into()],
        },
        Event::PartitionAcquired {
            client: 4,
            items: vec!["i0".into()],
        },
        Event::Released { client: 1 },
        Event::PartitionReleased { client: 4 },
    ];
    for (i, e) in events.into_iter().enumerate() {
        history.record_at(ms(i as u64), e);
    }
    let holders: Vec<usize> = history.holders().into_keys().collect();
    assert_eq!(holders, vec![2, 3]);
    for role in ["rwlock", "semaphore", "multi-lock", "partitioner"] {
        assert!(
            scenario(&workload(role, 1, "/x")).targets().lock_holder,
            "{role}"
        );
    }
    assert!(!scenario(&workload("lease", 1, "/x")).targets().lock_holder);
}
