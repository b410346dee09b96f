//! A worked example of testing your own code with zkit-sim (copy it): a leader-elected job
//! scheduler built on zkit's `LeaderLatch`, run as the user role `job-scheduler` of
//! `tests/job_scheduler.toml` (three instances; the leader cut off until its session
//! expires, then a crash), with its own invariant: **the job never runs on two instances at
//! once**.
//!
//! - [`scheduler`] is correct: the leader runs the job again and again, and stops (aborting
//!   a run in progress) the moment the latch says it no longer leads;
//! - with `ignore_lost_leadership` it is the classic bug: once elected, it never looks at
//!   the latch again, and keeps running the job after another instance took over.
//!
//! The correct scheduler passes its seed budget (`ZKIT_SEEDS`, default 6 here); the buggy
//! one is caught by the job invariant (and by the built-in single-leader checker, since it
//! records its leadership with `rec.leads`).

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;
use tokio::time::sleep;
use zkit::recipe::{LeaderEvent, LeaderLatch};
use zkit::Client;
use zkit_sim::check::Violation;
use zkit_sim::harness::CheckError;
use zkit_sim::history::{Event, Record};
use zkit_sim::workload::user::Recorder;

/// The scenario, relative to the crate's root (the tests' working directory).
const SCENARIO: &str = "tests/job_scheduler.toml";

/// The one job the scheduler runs.
const JOB: &str = "nightly-report";

/// Resolves when the latch says this instance does not lead (or the latch is gone).
async fn not_leader(events: &mut watch::Receiver<LeaderEvent>) {
    let _ = events
        .wait_for(|e| matches!(e, LeaderEvent::NotLeader))
        .await;
}

/// One scheduler instance: join the election; while elected, run [`JOB`] again and again.
/// Records `job-start`, then `job-end` (done) or `job-abort` (leadership lost mid-run), and
/// its leadership (`leads`, `lost_leadership`) for the built-in checkers.
async fn scheduler(
    zk: Client,
    mut rng: ChaCha8Rng,
    rec: Recorder,
    ignore_lost_leadership: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let (lo, hi) = rec.workload().hold;
    loop {
        let latch = LeaderLatch::start(&zk, rec.path(), &format!("c{}", rec.client()))?;
        let mut events = latch.events();
        loop {
            // Wait to be elected.
            let now = *events.borrow_and_update();
            let epoch = match now {
                LeaderEvent::Elected { epoch } => epoch,
                LeaderEvent::NotLeader => {
                    if events.changed().await.is_err() {
                        break; // the latch ended: start a new one
                    }
                    continue;
                }
            };
            rec.leads(epoch);
            loop {
                rec.record("job-start", JOB);
                let work = sleep(rng.random_range(lo..=hi));
                if ignore_lost_leadership {
                    // THE BUG: the run (and the next) goes ahead whatever the latch says.
                    work.await;
                    rec.record("job-end", JOB);
                    sleep(Duration::from_millis(rng.random_range(20..100))).await;
                    continue;
                }
                tokio::select! {
                    biased;
                    () = not_leader(&mut events) => {
                        rec.record("job-abort", JOB);
                        rec.lost_leadership();
                        break;
                    }
                    () = work => rec.record("job-end", JOB),
                }
                let pause = sleep(Duration::from_millis(rng.random_range(20..100)));
                tokio::select! {
                    biased;
                    () = not_leader(&mut events) => {
                        rec.lost_leadership();
                        break;
                    }
                    () = pause => {}
                }
            }
        }
        let _ = latch.close().await;
    }
}

/// The invariant: no job is running on two clients at once. A run lasts from its
/// `job-start` to its `job-end` or `job-abort`, or to its client's crash (or restart).
fn job_never_runs_twice_at_once(records: &[Record]) -> Vec<Violation> {
    let mut running: BTreeMap<&str, BTreeMap<usize, Duration>> = BTreeMap::new();
    let mut out = Vec::new();
    for r in records {
        match &r.event {
            Event::User { client, key, value } if key == "job-start" => {
                let runs = running.entry(value.as_str()).or_default();
                for (other, since) in runs.iter().filter(|(c, _)| *c != client) {
                    out.push(Violation {
                        checker: "job-runs-once",
                        at: r.at,
                        message: format!(
                            "c{client} started {value} while c{other} has run it since {:.3} s",
                            since.as_secs_f64()
                        ),
                    });
                }
                runs.insert(*client, r.at);
            }
            Event::User { client, key, value } if key == "job-end" || key == "job-abort" => {
                if let Some(runs) = running.get_mut(value.as_str()) {
                    runs.remove(client);
                }
            }
            Event::Crashed { client } | Event::Started { client, .. } => {
                for runs in running.values_mut() {
                    runs.remove(client);
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn the_scheduler_passes_its_seed_budget() {
    let passed = zkit_sim::check(SCENARIO)
        .role("job-scheduler", |zk, rng, rec| {
            scheduler(zk, rng, rec, false)
        })
        .invariant(job_never_runs_twice_at_once)
        .seeds(6)
        .run();
    println!(
        "{}: seeds {:?} passed; coverage: {}",
        passed.scenario, passed.seeds, passed.coverage
    );
    assert!(
        passed
            .coverage
            .counts
            .get("leader changes")
            .copied()
            .unwrap_or(0)
            > 0
    );
}

#[test]
fn a_scheduler_that_ignores_lost_leadership_is_caught() {
    let result = zkit_sim::check(SCENARIO)
        .role("job-scheduler", |zk, rng, rec| {
            scheduler(zk, rng, rec, true)
        })
        .invariant(job_never_runs_twice_at_once)
        .seeds(6)
        .try_run();
    let caught = match result {
        Err(CheckError::Failed(caught)) => caught,
        other => panic!("the buggy scheduler was not caught: {other:?}"),
    };
    println!("{caught}");
    let checkers: Vec<&str> = caught
        .outcome
        .violations
        .iter()
        .map(|v| v.checker)
        .collect();
    assert!(checkers.contains(&"job-runs-once"), "{checkers:?}");
    assert!(caught
        .replay
        .contains(&format!("ZKIT_SEEDS={}..", caught.outcome.seed)));
    let trace = caught.trace.as_ref().expect("the trace was written");
    assert!(std::fs::read_to_string(trace)
        .expect("read the trace")
        .contains("job-start nightly-report"));
    assert!(caught.timeline.as_ref().is_some_and(|t| t.exists()));
}

#[test]
fn a_seed_replays_to_the_same_trace() {
    let check = zkit_sim::check(SCENARIO)
        .role("job-scheduler", |zk, rng, rec| {
            scheduler(zk, rng, rec, false)
        })
        .invariant(job_never_runs_twice_at_once);
    let first = check.run_seed(3).unwrap_or_else(|e| panic!("{e}"));
    let again = check.run_seed(3).unwrap_or_else(|e| panic!("{e}"));
    assert!(first.trace.contains("job-start nightly-report"));
    assert_eq!(first.trace, again.trace);
}

#[test]
fn an_unregistered_role_is_rejected_where_the_scenario_names_it() {
    let e = zkit_sim::check(SCENARIO)
        .try_run()
        .expect_err("job-scheduler is not registered");
    let shown = e.to_string();
    assert!(
        shown.starts_with("tests/job_scheduler.toml:17:8: unknown role \"job-scheduler\""),
        "{shown}"
    );
}
