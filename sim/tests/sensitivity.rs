//! Sensitivity, proven: deliberately broken recipes, each run as every client host's body
//! ([`runner::Options::body`]) in a scenario made to expose its bug, must be caught by the
//! harness within a seed budget; the correct recipes (the scenario's own roles) must pass the
//! same scenarios over the same seeds (the harness is not merely eager); and a caught swarm
//! seed must shrink to a schedule that still fails, prints as a scenario file, parses back and
//! replays to the same checker.
//!
//! The broken recipes are built on zkit's plain `Client` API (ephemeral-sequential creates,
//! `get_children`, watches, `delete`, the session's state), each correct but for one bug:
//!
//! 1. a lock without the protected-name guard: a create whose reply is lost is simply sent
//!    again, leaving an orphan node of its own live session that blocks every contender;
//! 2. a lock that ignores `Suspended`: the holder keeps believing until a server tells it
//!    otherwise (its node deleted, or a new session established): the client's own `Lost`
//!    verdict is ignored too (variant 2a, which honours `Lost`, is an `--ignored`
//!    informational test: zkit's client-side expiry timer closes that window here; variant 7
//!    catches the same bug through the connection-policy checker);
//! 3. a release that forgets to retry: a delete that fails (connection loss) is given up, the
//!    node stays while the session lives;
//! 4. an election that does not re-check after a reconnect: the candidate gives leadership up
//!    when suspended but takes it back on `Connected` without looking at its node.
//!
//! 5. a lock that hands every holder the same token (the node's data version), and
//! 6. a lock whose token is its session id (not monotonic across holders): caught by the
//!    fencing checker on the GC-pause scenario;
//! 7. a lock that ignores `Suspended` but honours `Lost` (variant 2a): the connection-policy
//!    checker catches it where mutual exclusion cannot;
//! 8. the election of variant 4, caught by the session checker (it leads with a node of its
//!    expired session);
//! 9. a double barrier whose leave does not wait for the others;
//! 21. a register client whose "linearizable" reads skip the `sync` (served from a possibly
//!     lagging server's tree), and
//! 22. a register client that serves half its reads from a local cache of the last value it
//!     saw: both caught by the linearizability checker on `register_under_faults`.
//!
//! Bugs planted in zkit's own session engine (its test-only `planted-bugs` feature,
//! `Builder::planted_bug`; the roles otherwise as shipped):
//!
//! 10. `Suspended` not published on a dropped connection (the lock of variant 2, correct):
//!     the connection-policy checker's "Suspended in time" rule;
//! 11. a client-side expiry timer three session timeouts late: connection-policy ("did not
//!     report Lost" after the ensemble expired the session);
//! 12. watches not restored after a reconnect (no SetWatches), under `DataWatch`: the config
//!     checker (a watcher never converges);
//! 13. `last_zxid_seen` 0 in the connect request: informational (`--ignored`), not caught:
//!     register clients pushed (`follower-of:N` crashes) onto a lagging follower never read
//!     backwards within the budget (see the test);
//! 17. watches not restored, under `TreeCache`: the tree-cache checker;
//! 23. watches not restored, under the register role's one-shot data watches (every read
//!     leaves one) on `register_under_faults`: the watches checker (a read after a
//!     reconnect sees a change its watch never announced).
//!
//! Broken recipes for the recipes without a variant before:
//!
//! 14. a semaphore that counts the leases and then takes one, without a lock: semaphore;
//! 15. a counter add that reads then sets without compare-and-set: counter;
//! 16. a queue take that counts an entry found gone (taken by another) as its own: queue;
//! 18. a read-write lock whose readers ignore the writers: mutual-exclusion;
//! 19. the double barrier of variant 9 whose enter does not wait either: double-barrier (the
//!     first catch may be its hasty leave);
//! 20. a semaphore holder that ignores `Suspended` and `Lost`: connection-policy.
//!
//! Cancellation (the `cancel` fault, on `cancelled_calls`):
//!
//! 24. zkit's recipes built with `PlantedBug::CancelledDeleteLosesNode` (a lock's or latch's
//!     node given up as its delete is sent, not once it is confirmed): a release or close
//!     cancelled half-way loses its node, which blocks the lock or election while the
//!     session lives: liveness.
//!
//! Each test prints how many seeds the harness needed. `ZKIT_SENSITIVITY_SEEDS` (default 100)
//! is the budget: a variant not caught within it fails its test.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant as WallClock};

use rand::Rng;
use tokio::time::{sleep, sleep_until, Instant};
use zkit::planted::PlantedBug;
use zkit::recipe::{Counter, DataWatch, TreeCache, TreeEvent};
use zkit::{Client, CreateMode, Error, EventType, State};
use zkit_sim::history::{Event, History};
use zkit_sim::register::{RegisterOp, RegisterResult};
use zkit_sim::runner::real::{run_real, RealBody, RealOptions};
use zkit_sim::runner::{self, ClientBody, Options, Outcome};
use zkit_sim::scenario::{self, Role, Scenario};
use zkit_sim::shrink;
use zkit_sim::workload::{self, register, ClientSpec};

// ----- the budget and the search -----

/// How many seeds a variant may take before its test fails.
fn budget() -> u64 {
    std::env::var("ZKIT_SENSITIVITY_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
}

fn shipped(file: &str) -> Scenario {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(file);
    scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn inline(name: &str, text: &str) -> Scenario {
    scenario::parse(&format!("<{name}>"), name, text).unwrap_or_else(|e| panic!("{e}"))
}

fn checkers(o: &Outcome) -> Vec<&'static str> {
    let mut c: Vec<&'static str> = o.violations.iter().map(|v| v.checker).collect();
    c.dedup();
    c
}

/// Runs seeds `0..budget()` of `scenario` with `body` on every client until one fails;
/// returns that outcome. Panics if none fails, or if the first failure is not one of the
/// `expected` checkers (something other than the planted bug broke).
fn first_catch(
    variant: &str,
    scenario: &Scenario,
    body: &ClientBody,
    expected: &[&str],
) -> Outcome {
    let wall = WallClock::now();
    let options = Options {
        faults: None,
        body: Some(body.clone()),
    };
    for seed in 0..budget() {
        let outcome = runner::run_with(scenario, seed, &options);
        if outcome.passed() {
            continue;
        }
        let caught: Vec<_> = outcome
            .violations
            .iter()
            .filter(|v| expected.contains(&v.checker))
            .collect();
        assert!(
            !caught.is_empty(),
            "{variant}: seed {seed} of {} failed, but not by {expected:?}: {:#?}\n{}",
            scenario.name,
            outcome.violations,
            outcome.trace
        );
        println!(
            "{variant}: caught by {} on {} at seed {seed}, after {} seed(s) ({:.1} s wall): {}",
            caught[0].checker,
            scenario.name,
            seed + 1,
            wall.elapsed().as_secs_f64(),
            caught[0]
        );
        return outcome;
    }
    panic!(
        "{variant}: not caught on {} within {} seeds ({:.1} s wall); raise \
         ZKIT_SENSITIVITY_SEEDS or sharpen the scenario",
        scenario.name,
        budget(),
        wall.elapsed().as_secs_f64()
    );
}

/// The control runs at least this many seeds, even when a variant is caught at once.
const CONTROL_SEEDS: u64 = 3;

/// The control: the scenario's own (correct) roles pass seeds `0..=last` of `scenario`,
/// the seeds the broken variant was run over.
fn control(scenario: &Scenario, last: u64) {
    let wall = WallClock::now();
    for seed in 0..=last {
        let outcome = runner::run(scenario, seed);
        assert!(
            outcome.passed(),
            "control: the correct recipes fail {} seed {seed}: {:#?}\n{}",
            scenario.name,
            outcome.violations,
            outcome.trace
        );
    }
    println!(
        "control: the correct recipes pass {} seeds 0..={last} ({:.1} s wall)",
        scenario.name,
        wall.elapsed().as_secs_f64()
    );
}

// ----- the broken lock -----

/// The bugs a lock contender can be built with (all off: a correct lock).
/// When a holder stops trusting what it holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Doubt {
    /// Correct: as soon as the connection is suspended (or the session ends, or the node goes).
    #[default]
    Suspended,
    /// Variant 2a: only when the session is lost (zkit's `Lost`, which its own expiry timer
    /// publishes while suspended), or the node goes.
    SessionLoss,
    /// Variant 2b: only when a server says so: the node deleted, or a new session
    /// established (Suspended and the client's own `Lost` verdict are ignored, as with a
    /// client that learns of expiry only on reconnect).
    ServerOnly,
}

/// Where a holder's fencing token comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Token {
    /// Correct: the node's creation zxid.
    #[default]
    Czxid,
    /// Variant 5: the node's data version (0 for every holder).
    Version,
    /// Variant 6: the session id (each server numbers its own sessions).
    Session,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bugs {
    /// Variants 5 and 6: where the fencing token comes from.
    token: Token,
    /// Variant 1: on `ConnectionLoss` during the create, create again (no protected name,
    /// no lookup of a node the lost create may have made).
    recreate_on_loss: bool,
    /// Variant 2: when the holder starts doubting.
    doubt: Doubt,
    /// Variant 3: a release whose delete fails is not retried.
    forget_failed_delete: bool,
    /// Variants 10 and 11: a bug planted in the client's session engine.
    planted: Option<PlantedBug>,
}

type BoxedRun = Pin<Box<dyn Future<Output = workload::Result>>>;

fn lock_body(bugs: Bugs) -> ClientBody {
    Rc::new(move |spec: ClientSpec, incarnation: u32| -> BoxedRun {
        Box::pin(async move { lock_contender(spec, incarnation, bugs).await })
    })
}

/// The election candidate; `recheck` false plants variant 4's bug.
fn election_body(recheck: bool) -> ClientBody {
    Rc::new(move |spec: ClientSpec, incarnation: u32| -> BoxedRun {
        Box::pin(async move { candidate(spec, incarnation, recheck).await })
    })
}

/// The sequence number ZooKeeper appended (the last ten digits).
fn sequence(name: &str) -> Option<u64> {
    let tail = name.get(name.len().checked_sub(10)?..)?;
    tail.parse().ok()
}

/// The children of `dir` carrying `marker`, lowest sequence first.
async fn contenders(zk: &Client, dir: &str, marker: &str) -> zkit::Result<Vec<String>> {
    let children = loop {
        match zk.get_children(dir).await {
            Err(Error::ConnectionLoss) => zk.wait_connected().await?,
            Err(Error::NoNode { .. }) => return Ok(Vec::new()),
            other => break other?,
        }
    };
    let mut named: Vec<(u64, String)> = children
        .into_iter()
        .filter(|c| c.contains(marker))
        .filter_map(|c| sequence(&c).map(|s| (s, c)))
        .collect();
    named.sort();
    Ok(named.into_iter().map(|(_, c)| c).collect())
}

/// A fresh guid from the client's seeded random stream.
fn guid(zk: &Client) -> String {
    format!("{:016x}{:016x}", zk.random_u64(), zk.random_u64())
}

/// Creates an ephemeral sequential `{dir}/{name}`; after a lost reply either creates again
/// (`naive`) or looks for this session's node carrying `tag` first (the protected-name
/// guard). Returns the node's path, its stat and owning session.
async fn create_node(
    zk: &Client,
    dir: &str,
    name: &str,
    tag: &str,
    naive: bool,
) -> zkit::Result<(String, zkit::Stat, i64)> {
    let path = format!("{dir}/{name}");
    loop {
        match zk.create(&path, &[], CreateMode::EphemeralSequential).await {
            Ok((node, stat)) => {
                let owner = stat.ephemeral_owner;
                return Ok((node, stat, owner));
            }
            Err(Error::ConnectionLoss) => {
                zk.wait_connected().await?;
                if naive {
                    continue;
                }
                for child in contenders(zk, dir, tag).await? {
                    let node = format!("{dir}/{child}");
                    let stat = loop {
                        match zk.exists(&node).await {
                            Err(Error::ConnectionLoss) => zk.wait_connected().await?,
                            other => break other?,
                        }
                    };
                    if let Some(stat) = stat.filter(|s| s.ephemeral_owner == zk.session_id()) {
                        let owner = stat.ephemeral_owner;
                        return Ok((node, stat, owner));
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Deletes `node`, retrying through connection loss unless `once`; a node or session
/// already gone is success.
async fn delete_node(zk: &Client, node: &str, once: bool) -> zkit::Result<()> {
    loop {
        match zk.delete(node, None).await {
            Ok(()) | Err(Error::NoNode { .. }) | Err(Error::SessionExpired) => return Ok(()),
            Err(Error::ConnectionLoss) if !once => zk.wait_connected().await?,
            Err(e) => return Err(e),
        }
    }
}

/// Resolves when what is held in `session` stops being trusted, per `mode`: the connection
/// suspended, the session lost or replaced, or (`node`) the node deleted.
async fn doubt(zk: &Client, session: i64, node: Option<&str>, mode: Doubt) {
    let lost = move |s: State| match mode {
        Doubt::Suspended => !s.is_connected(),
        Doubt::SessionLoss => s.is_terminal(),
        Doubt::ServerOnly => false,
    };
    let replaced = move |id: i64| match mode {
        Doubt::ServerOnly => id != session && id != 0,
        _ => id != session,
    };
    let mut info = zk.session_info();
    let mut transitions = zk.state_changes();
    let snapshot = async {
        let _ = info
            .wait_for(|i| lost(i.state) || replaced(i.session_id))
            .await;
    };
    let blip = async {
        loop {
            match transitions.recv().await {
                Ok(s) if lost(s) => return,
                Ok(_) => {}
                Err(_) => return,
            }
        }
    };
    let deleted = async {
        let Some(node) = node else {
            return std::future::pending().await;
        };
        loop {
            match zk.exists_watch(node).await {
                Ok((None, _)) => return,
                Ok((Some(_), watcher)) => {
                    let event = watcher.await;
                    if event.event_type == EventType::NodeDeleted {
                        return;
                    }
                    if event.is_session_end() && mode != Doubt::ServerOnly {
                        return;
                    }
                    // ServerOnly: look again once connected (in whatever session).
                    if zk.wait_connected().await.is_err() {
                        return;
                    }
                }
                Err(Error::ConnectionLoss) => {
                    if zk.wait_connected().await.is_err() {
                        return;
                    }
                }
                Err(Error::SessionExpired) if mode == Doubt::ServerOnly => {
                    if zk.wait_connected().await.is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    };
    tokio::select! {
        biased;
        () = snapshot => {}
        () = blip => {}
        () = deleted => {}
    }
}

/// One contender's attempt: its node, then wait until it is the lowest (watching only its
/// predecessor). Returns the node, its fencing token (czxid) and its session.
async fn acquire(zk: &Client, dir: &str, bugs: Bugs) -> zkit::Result<(String, i64, i64)> {
    zk.ensure_path(dir).await?;
    let tag = guid(zk);
    let name = if bugs.recreate_on_loss {
        "lock-".to_owned()
    } else {
        format!("_c_{tag}-lock-")
    };
    let (node, stat, session) = create_node(zk, dir, &name, &tag, bugs.recreate_on_loss).await?;
    let token = match bugs.token {
        Token::Czxid => stat.czxid,
        Token::Version => i64::from(stat.version),
        Token::Session => session,
    };
    let ours = node.rsplit('/').next().unwrap_or_default().to_owned();
    loop {
        let all = contenders(zk, dir, "lock-").await?;
        let Some(index) = all.iter().position(|c| *c == ours) else {
            return Err(Error::NoNode { path: node });
        };
        if index == 0 {
            return Ok((node, token, session));
        }
        let ahead = format!("{dir}/{}", all[index - 1]);
        let watched = loop {
            match zk.get_data_watch(&ahead).await {
                Err(Error::ConnectionLoss) => zk.wait_connected().await?,
                other => break other,
            }
        };
        match watched {
            Ok((_, _, watcher)) => {
                let _ = watcher.await;
            }
            Err(Error::NoNode { .. }) => {}
            Err(e) => return Err(e),
        }
    }
}

/// The lock contender loop of `workload::lock`, on the hand-written lock above.
async fn lock_contender(spec: ClientSpec, incarnation: u32, bugs: Bugs) -> workload::Result {
    let client = spec.client;
    let who = spec.host();
    let history: History = spec.history.clone();
    history.record(Event::Started {
        client,
        incarnation,
    });
    let mut rng = spec.rng(incarnation);
    let (lo, hi) = spec.workload.hold;
    sleep(Duration::from_millis(rng.random_range(0..500))).await;
    let zk = connect_with(&spec, rng.random(), bugs.planted).await;
    let dir = spec.workload.path.clone();
    loop {
        match acquire(&zk, &dir, bugs).await {
            Ok((node, token, session)) => {
                // A frozen application learns of the acquisition when it wakes.
                history.pause_point(client).await;
                history.record(Event::Acquired { client, token });
                history.record(Event::HeldIn { client, session });
                history.write(client, token);
                let start = Instant::now();
                let hold = rng.random_range(lo..=hi);
                let lost = {
                    let doubt = doubt(&zk, session, Some(&node), bugs.doubt);
                    tokio::pin!(doubt);
                    let mut lost = false;
                    for (i, deadline) in [start + hold / 2, start + hold].into_iter().enumerate() {
                        tokio::select! {
                            biased;
                            () = &mut doubt => {
                                if history.is_paused(client) {
                                    // Frozen with its belief: on waking it writes first,
                                    // as the lock workload does.
                                    history.pause_point(client).await;
                                    history.write(client, token);
                                }
                                lost = true;
                                break;
                            }
                            () = sleep_until(deadline) => {
                                history.pause_point(client).await;
                                if i == 0 {
                                    history.write(client, token);
                                }
                            }
                        }
                    }
                    lost
                };
                if lost {
                    history.record(Event::Lost { client });
                    if let Err(e) = delete_node(&zk, &node, false).await {
                        history.note(&who, format!("delete after loss failed: {e}"));
                    }
                } else {
                    history.record(Event::Released { client });
                    if let Err(e) = delete_node(&zk, &node, bugs.forget_failed_delete).await {
                        history.note(&who, format!("release failed, not retried: {e}"));
                    }
                }
            }
            Err(e) => {
                history.note(&who, format!("acquire failed: {e}"));
                sleep(Duration::from_millis(200)).await;
            }
        }
        sleep(Duration::from_millis(rng.random_range(0..300))).await;
    }
}

// ----- the broken election -----

/// A leader-latch-like candidate (protected node, lowest leads, watch the predecessor) that
/// gives leadership up when suspended. With `recheck` it lists the election again once
/// connected; without (variant 4) it takes leadership back with its old epoch without
/// checking that its node still exists and is the lowest: after its session expired and was
/// renewed, another candidate leads.
async fn candidate(spec: ClientSpec, incarnation: u32, recheck: bool) -> workload::Result {
    let client = spec.client;
    let who = spec.host();
    let history: History = spec.history.clone();
    history.record(Event::Started {
        client,
        incarnation,
    });
    let mut rng = spec.rng(incarnation);
    let (lo, hi) = spec.workload.hold;
    sleep(Duration::from_millis(rng.random_range(0..500))).await;
    let zk = workload::connect(&spec, rng.random()).await;
    let dir = spec.workload.path.clone();
    loop {
        if let Err(e) =
            candidate_round(&zk, &dir, &history, client, &mut rng, (lo, hi), recheck).await
        {
            history.note(&who, format!("election round failed: {e}"));
            sleep(Duration::from_millis(200)).await;
        }
        sleep(Duration::from_millis(rng.random_range(100..600))).await;
    }
}

/// One run for leadership: create, wait to be the lowest, lead until stepping down.
async fn candidate_round(
    zk: &Client,
    dir: &str,
    history: &History,
    client: usize,
    rng: &mut impl Rng,
    (lo, hi): (Duration, Duration),
    recheck: bool,
) -> zkit::Result<()> {
    zk.ensure_path(dir).await?;
    let tag = guid(zk);
    let (node, stat, session) =
        create_node(zk, dir, &format!("_c_{tag}-latch-"), &tag, false).await?;
    let epoch = stat.czxid;
    let ours = node.rsplit('/').next().unwrap_or_default().to_owned();
    loop {
        let all = contenders(zk, dir, "latch-").await?;
        let Some(index) = all.iter().position(|c| *c == ours) else {
            return Err(Error::NoNode { path: node });
        };
        if index > 0 {
            let ahead = format!("{dir}/{}", all[index - 1]);
            match zk.get_data_watch(&ahead).await {
                Ok((_, _, watcher)) => {
                    let _ = watcher.await;
                }
                Err(Error::NoNode { .. }) => {}
                Err(Error::ConnectionLoss) => zk.wait_connected().await?,
                Err(e) => return Err(e),
            }
            continue;
        }
        history.record(Event::Leader { client, epoch });
        history.record(Event::HeldIn { client, session });
        let until = Instant::now() + rng.random_range(lo..=hi);
        let mut watched = Some(node.as_str());
        let owner = session;
        let mut session = session;
        let stepped_down = loop {
            let doubted = tokio::select! {
                biased;
                () = doubt(zk, session, watched, Doubt::Suspended) => true,
                () = sleep_until(until) => false,
            };
            if !doubted {
                history.record(Event::SteppedDown { client });
                break true;
            }
            history.record(Event::LeaderLost { client });
            zk.wait_connected().await?;
            if recheck {
                break false;
            }
            // The bug: connected again, it leads again with what it remembers, without
            // listing the election (its node may be gone with its old session).
            history.record(Event::Leader { client, epoch });
            history.record(Event::HeldIn {
                client,
                session: owner,
            });
            session = zk.session_id();
            watched = None;
        };
        if stepped_down {
            return delete_node(zk, &node, false).await;
        }
        // Look again: the node may be gone (a new session), or no longer the lowest.
    }
}

// ----- the broken double barrier -----

/// Variant 9: a double-barrier participant (ZooKeeper's recipe on the plain API: an
/// ephemeral node per participant, a `ready` node created by the one that sees the barrier
/// full) whose leave deletes its node and returns at once, without waiting for the others.
fn hasty_barrier_body() -> ClientBody {
    Rc::new(move |spec: ClientSpec, incarnation: u32| -> BoxedRun {
        Box::pin(async move { hasty_participant(spec, incarnation, false).await })
    })
}

/// Variant 19: the participant of variant 9 whose enter does not wait either: it creates
/// its node and goes in without looking for the `ready` node.
fn hasty_enter_body() -> ClientBody {
    Rc::new(move |spec: ClientSpec, incarnation: u32| -> BoxedRun {
        Box::pin(async move { hasty_participant(spec, incarnation, true).await })
    })
}

async fn hasty_participant(
    spec: ClientSpec,
    incarnation: u32,
    hasty_enter: bool,
) -> workload::Result {
    let client = spec.client;
    let who = spec.host();
    let history: History = spec.history.clone();
    history.record(Event::Started {
        client,
        incarnation,
    });
    let mut rng = spec.rng(incarnation);
    let (lo, hi) = spec.workload.hold;
    sleep(Duration::from_millis(rng.random_range(0..500))).await;
    let zk = workload::connect(&spec, rng.random()).await;
    let dir = spec.workload.path.clone();
    let ready = format!("{dir}/ready");
    for round in 0u64.. {
        let node = format!("{dir}/p{client}-{incarnation}-{round}");
        history.record(Event::BarrierEntering { client });
        let outcome = async {
            zk.ensure_path(&dir).await?;
            let (up, watcher) = zk.exists_watch(&ready).await?;
            zk.create(&node, &[], CreateMode::Ephemeral).await?;
            if up.is_none() && !hasty_enter {
                let present = zk
                    .get_children(&dir)
                    .await?
                    .iter()
                    .filter(|c| *c != "ready")
                    .count();
                if present >= spec.workload.count {
                    match zk.create(&ready, &[], CreateMode::Persistent).await {
                        Ok(_) | Err(Error::NodeExists { .. }) => {}
                        Err(e) => return Err(e),
                    }
                } else if watcher.await.is_session_end() {
                    return Err(Error::SessionExpired);
                }
            }
            history.record(Event::BarrierEntered { client });
            sleep(rng.random_range(lo..=hi)).await;
            history.record(Event::BarrierLeaving { client });
            // The bug: delete and go, without waiting for the others to leave.
            zk.delete(&node, None).await?;
            if zk.get_children(&dir).await?.iter().all(|c| c == "ready") {
                match zk.delete(&ready, None).await {
                    Ok(()) | Err(Error::NoNode { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            history.record(Event::BarrierLeft { client });
            Ok::<(), Error>(())
        }
        .await;
        if let Err(e) = outcome {
            history.record(Event::BarrierFailed {
                client,
                error: e.to_string(),
            });
            history.note(&who, "starting over");
        }
        sleep(Duration::from_millis(rng.random_range(500..1000))).await;
    }
    Ok(())
}

// ----- bugs planted in the client's session engine -----

/// `workload::connect` (retry until connected, log states and sessions into the history),
/// with `bug` planted in the client (zkit's test-only `planted-bugs` feature).
async fn connect_with(spec: &ClientSpec, seed: u64, bug: Option<PlantedBug>) -> Client {
    match bug {
        Some(bug) => workload::connect_configured(spec, seed, |b| b.planted_bug(bug)).await,
        None => workload::connect(spec, seed).await,
    }
}

/// The config workloads with `bug` planted in every watcher's client (writers correct).
fn planted_watcher_body(bug: PlantedBug) -> ClientBody {
    Rc::new(move |spec: ClientSpec, incarnation: u32| -> BoxedRun {
        Box::pin(async move {
            if spec.workload.role != Role::ConfigWatcher {
                return workload::run(spec, incarnation).await;
            }
            spec.history.record(Event::Started {
                client: spec.client,
                incarnation,
            });
            config_watcher(&spec, incarnation, bug).await
        })
    })
}

/// `workload::config::watch`, on a client with `bug` planted.
async fn config_watcher(spec: &ClientSpec, incarnation: u32, bug: PlantedBug) -> workload::Result {
    let client = spec.client;
    let history = &spec.history;
    let mut rng = spec.rng(incarnation);
    sleep(Duration::from_millis(rng.random_range(0..500))).await;
    let zk = connect_with(spec, rng.random(), Some(bug)).await;
    let mut values = DataWatch::start(&zk, &spec.workload.path)?;
    while let Some(v) = values.next().await {
        history.pause_point(client).await;
        history.record(match v {
            Some(v) => Event::ConfigSeen {
                client,
                value: Some(String::from_utf8_lossy(&v.data).into_owned()),
                mzxid: v.stat.mzxid,
                version: v.stat.version,
            },
            None => Event::ConfigSeen {
                client,
                value: None,
                mzxid: 0,
                version: -1,
            },
        });
    }
    Err(format!("{}: the data watch ended", spec.host()).into())
}

/// Variant 17: the tree workloads with watches not restored in every cache's client.
fn planted_tree_cache_body(bug: PlantedBug) -> ClientBody {
    Rc::new(move |spec: ClientSpec, incarnation: u32| -> BoxedRun {
        Box::pin(async move {
            if spec.workload.role != Role::TreeCache {
                return workload::run(spec, incarnation).await;
            }
            spec.history.record(Event::Started {
                client: spec.client,
                incarnation,
            });
            tree_cache(&spec, incarnation, bug).await
        })
    })
}

/// `workload::tree::cache`, on a client with `bug` planted.
async fn tree_cache(spec: &ClientSpec, incarnation: u32, bug: PlantedBug) -> workload::Result {
    let who = spec.host();
    let client = spec.client;
    let history = &spec.history;
    let mut rng = spec.rng(incarnation);
    sleep(Duration::from_millis(rng.random_range(0..500))).await;
    let zk = connect_with(spec, rng.random(), Some(bug)).await;
    loop {
        let mut cache = match TreeCache::start(&zk, &spec.workload.path).await {
            Ok(c) => c,
            Err(e) => {
                history.note(&who, format!("tree cache start failed: {e}"));
                let _ = zk.wait_connected().await;
                sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        history.record(Event::TreeCacheStarted { client });
        while let Some(event) = cache.next().await {
            history.pause_point(client).await;
            let (node, value) = match event {
                TreeEvent::Added { path, value } | TreeEvent::Updated { path, value } => (
                    path,
                    Some(String::from_utf8_lossy(&value.data).into_owned()),
                ),
                TreeEvent::Removed { path, .. } => (path, None),
                TreeEvent::Initialized | TreeEvent::Resynced => continue,
            };
            history.record(Event::TreeCacheSeen {
                client,
                node,
                value,
            });
        }
        let _ = zk.wait_connected().await;
        sleep(Duration::from_millis(200)).await;
    }
}

/// Variant 18: a read-write lock (ZooKeeper's recipe on the plain API: `read-` and `write-`
/// ephemeral-sequential nodes; a writer waits to be the lowest) whose readers ignore the
/// writers: a reader takes the lock as soon as its node exists.
fn reader_ignores_writers_body() -> ClientBody {
    Rc::new(move |spec: ClientSpec, incarnation: u32| -> BoxedRun {
        Box::pin(async move { rw_contender(spec, incarnation).await })
    })
}

async fn rw_contender(spec: ClientSpec, incarnation: u32) -> workload::Result {
    let client = spec.client;
    let who = spec.host();
    let history: History = spec.history.clone();
    history.record(Event::Started {
        client,
        incarnation,
    });
    let mut rng = spec.rng(incarnation);
    let (lo, hi) = spec.workload.hold;
    sleep(Duration::from_millis(rng.random_range(0..500))).await;
    let zk = workload::connect(&spec, rng.random()).await;
    let dir = spec.workload.path.clone();
    loop {
        let writer = rng.random_range(0..3) == 0;
        let taken = async {
            zk.ensure_path(&dir).await?;
            let tag = guid(&zk);
            let kind = if writer { "write-" } else { "read-" };
            let (node, stat, session) =
                create_node(&zk, &dir, &format!("_c_{tag}-{kind}"), &tag, false).await?;
            if !writer {
                // The bug: a reader does not wait for the writers ahead of it.
                return Ok::<_, Error>((node, stat.czxid, session));
            }
            let ours = node.rsplit('/').next().unwrap_or_default().to_owned();
            loop {
                let mut all: Vec<(u64, String)> = zk
                    .get_children(&dir)
                    .await?
                    .into_iter()
                    .filter_map(|c| sequence(&c).map(|s| (s, c)))
                    .collect();
                all.sort();
                let Some(index) = all.iter().position(|(_, c)| *c == ours) else {
                    return Err(Error::NoNode { path: node });
                };
                if index == 0 {
                    return Ok((node, stat.czxid, session));
                }
                let ahead = format!("{dir}/{}", all[index - 1].1);
                match zk.get_data_watch(&ahead).await {
                    Ok((_, _, watcher)) => {
                        let _ = watcher.await;
                    }
                    Err(Error::NoNode { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        .await;
        match taken {
            Ok((node, token, session)) => {
                history.pause_point(client).await;
                history.record(if writer {
                    Event::WriteAcquired { client, token }
                } else {
                    Event::ReadAcquired { client, token }
                });
                history.record(Event::HeldIn { client, session });
                let lost = tokio::select! {
                    biased;
                    () = doubt(&zk, session, Some(&node), Doubt::Suspended) => true,
                    () = sleep(rng.random_range(lo..=hi)) => false,
                };
                history.record(if lost {
                    Event::Lost { client }
                } else {
                    Event::Released { client }
                });
                if let Err(e) = delete_node(&zk, &node, false).await {
                    history.note(&who, format!("release failed: {e}"));
                }
            }
            Err(e) => {
                history.note(&who, format!("acquire failed: {e}"));
                let _ = zk.wait_connected().await;
                sleep(Duration::from_millis(200)).await;
            }
        }
        sleep(Duration::from_millis(rng.random_range(0..300))).await;
    }
}

// ----- broken recipes on the plain API (semaphore, counter, queue) -----

/// Variant 14: a semaphore holder that counts the leases out (the children of the
/// semaphore's node) and, if fewer than `leases`, takes one: no lock around count-and-take,
/// so two holders that count at once both take the last lease.
fn greedy_semaphore_body() -> ClientBody {
    Rc::new(move |spec: ClientSpec, incarnation: u32| -> BoxedRun {
        Box::pin(async move { semaphore_holder(spec, incarnation, true, Doubt::Suspended).await })
    })
}

/// Variant 20: a semaphore (a lease is held by the first `leases` nodes by sequence, a
/// correct count) whose holder ignores `Suspended` and the client's `Lost`.
fn trusting_semaphore_body() -> ClientBody {
    Rc::new(move |spec: ClientSpec, incarnation: u32| -> BoxedRun {
        Box::pin(async move { semaphore_holder(spec, incarnation, false, Doubt::ServerOnly).await })
    })
}

async fn semaphore_holder(
    spec: ClientSpec,
    incarnation: u32,
    greedy: bool,
    doubting: Doubt,
) -> workload::Result {
    let client = spec.client;
    let who = spec.host();
    let history: History = spec.history.clone();
    history.record(Event::Started {
        client,
        incarnation,
    });
    let mut rng = spec.rng(incarnation);
    let (lo, hi) = spec.workload.hold;
    sleep(Duration::from_millis(rng.random_range(0..500))).await;
    let zk = workload::connect(&spec, rng.random()).await;
    let dir = spec.workload.path.clone();
    let leases = spec.workload.leases;
    loop {
        let taken = async {
            zk.ensure_path(&dir).await?;
            loop {
                if !greedy {
                    break;
                }
                let (children, watcher) = zk.get_children_watch(&dir).await?;
                // The bug: count, then take, with nothing making the two one step.
                if children.len() < leases {
                    let (node, stat) = zk
                        .create(
                            &format!("{dir}/lease-"),
                            &[],
                            CreateMode::EphemeralSequential,
                        )
                        .await?;
                    return Ok::<_, Error>((node, stat.czxid, stat.ephemeral_owner));
                }
                if watcher.await.is_session_end() {
                    return Err(Error::SessionExpired);
                }
            }
            // A lease is the node's: held while among the first `leases` by sequence.
            let tag = guid(&zk);
            let (node, stat, session) =
                create_node(&zk, &dir, &format!("_c_{tag}-lease-"), &tag, false).await?;
            let ours = node.rsplit('/').next().unwrap_or_default().to_owned();
            loop {
                zk.wait_connected().await?;
                let (_, watcher) = zk.get_children_watch(&dir).await?;
                let all = contenders(&zk, &dir, "lease-").await?;
                let Some(index) = all.iter().position(|c| *c == ours) else {
                    return Err(Error::NoNode { path: node });
                };
                if index < leases {
                    return Ok((node, stat.czxid, session));
                }
                if watcher.await.is_session_end() {
                    return Err(Error::SessionExpired);
                }
            }
        }
        .await;
        match taken {
            Ok((node, token, session)) => {
                history.pause_point(client).await;
                history.record(Event::LeaseAcquired { client, token });
                history.record(Event::HeldIn { client, session });
                let hold = rng.random_range(lo..=hi);
                let lost = tokio::select! {
                    biased;
                    () = doubt(&zk, session, Some(&node), doubting) => true,
                    () = sleep(hold) => false,
                };
                history.record(if lost {
                    Event::Lost { client }
                } else {
                    Event::Released { client }
                });
                if let Err(e) = delete_node(&zk, &node, false).await {
                    history.note(&who, format!("release failed: {e}"));
                }
            }
            Err(e) => {
                history.note(&who, format!("acquire failed: {e}"));
                let _ = zk.wait_connected().await;
                sleep(Duration::from_millis(200)).await;
            }
        }
        sleep(Duration::from_millis(rng.random_range(0..300))).await;
    }
}

/// Variant 15: the counter role, its add a read and an unconditional `set` (no version
/// check, no retry): two adders that read the same value both write value + 1.
fn blind_counter_body() -> ClientBody {
    Rc::new(move |spec: ClientSpec, incarnation: u32| -> BoxedRun {
        Box::pin(async move { blind_adder(spec, incarnation).await })
    })
}

async fn blind_adder(spec: ClientSpec, incarnation: u32) -> workload::Result {
    let client = spec.client;
    let who = spec.host();
    let history = spec.history.clone();
    history.record(Event::Started {
        client,
        incarnation,
    });
    let path = spec.workload.path.clone();
    let (lo, hi) = spec.workload.hold;
    let (mut rng, zk) = workload::start(&spec, incarnation).await;
    let counter = Counter::new(&zk, &path, 0)?;
    let mut next_read = Instant::now() + Duration::from_millis(rng.random_range(2000..3000));
    loop {
        history.record(Event::CounterAdding { client });
        let added = async {
            let now = counter.get().await?;
            // The bug: no compare-and-set on the version read.
            counter.set(now.value + 1).await?;
            Ok::<_, Error>(now.value + 1)
        }
        .await;
        match added {
            Ok(value) => {
                history.pause_point(client).await;
                history.record(Event::CounterAdded { client, value });
            }
            Err(e) => {
                history.record(Event::CounterUncertain { client });
                history.note(&who, format!("add failed: {e}"));
                let _ = zk.wait_connected().await;
                sleep(Duration::from_millis(200)).await;
            }
        }
        if Instant::now() >= next_read {
            next_read = Instant::now() + Duration::from_millis(rng.random_range(2000..3000));
            let asked_at = history.now();
            let read = async {
                zk.sync(&path).await?;
                counter.get().await
            }
            .await;
            if let Ok(v) = read {
                history.pause_point(client).await;
                history.record(Event::CounterRead {
                    client,
                    asked_at,
                    value: v.value,
                });
            }
        }
        sleep(rng.random_range(lo..=hi)).await;
    }
}

/// Variant 16: queue consumers whose take treats a delete that finds the entry gone
/// (another consumer took it) as their own take: an entry taken twice. Producers correct.
fn careless_consumer_body() -> ClientBody {
    Rc::new(move |spec: ClientSpec, incarnation: u32| -> BoxedRun {
        Box::pin(async move {
            if spec.workload.role != Role::QueueConsumer {
                return workload::run(spec, incarnation).await;
            }
            careless_consumer(spec, incarnation).await
        })
    })
}

async fn careless_consumer(spec: ClientSpec, incarnation: u32) -> workload::Result {
    let client = spec.client;
    let who = spec.host();
    let history = spec.history.clone();
    history.record(Event::Started {
        client,
        incarnation,
    });
    let dir = spec.workload.path.clone();
    let (lo, hi) = spec.workload.hold;
    let (mut rng, zk) = workload::start(&spec, incarnation).await;
    loop {
        let started = history.now();
        let taken = async {
            loop {
                zk.ensure_path(&dir).await?;
                let (children, watcher) = zk.get_children_watch(&dir).await?;
                let mut entries: Vec<_> = children
                    .into_iter()
                    .filter(|c| c.starts_with("entry-"))
                    .collect();
                entries.sort();
                let Some(first) = entries.first() else {
                    if watcher.await.is_session_end() {
                        return Err(Error::SessionExpired);
                    }
                    continue;
                };
                let node = format!("{dir}/{first}");
                let data = match zk.get_data(&node).await {
                    Ok((data, _)) => data,
                    Err(Error::NoNode { .. }) => continue,
                    Err(e) => return Err(e),
                };
                match zk.delete(&node, None).await {
                    // The bug: gone means someone else took it, not us.
                    Ok(()) | Err(Error::NoNode { .. }) => return Ok::<_, Error>(data),
                    Err(e) => return Err(e),
                }
            }
        }
        .await;
        match taken {
            Ok(data) => {
                history.pause_point(client).await;
                history.record(Event::QueueTaken {
                    client,
                    item: String::from_utf8_lossy(&data).into_owned(),
                    started,
                });
                sleep(rng.random_range(lo..=hi)).await;
            }
            Err(e) => {
                history.record(Event::QueueTakeFailed { client });
                history.note(&who, format!("get failed: {e}"));
                let _ = zk.wait_connected().await;
                sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

// ----- the scenarios written for the variants -----

/// Variant 11: lock holders cut off for far longer than their session (so the ensemble
/// expires it) with a short `syncLimit` (so the bound on reporting `Lost` is tight).
const HOLDER_CUT_OFF_LONG: &str = r#"
name = "sensitivity_holder_cut_off_long"

[ensemble]
servers = 3
tick_ms = 500
session_timeout_ms = 4000
sync_limit = 4

[run]
duration_s = 50
liveness_s = 10

[[workload]]
role = "lock"
count = 3
path = "/locks/a"
hold_ms = [2000, 6000]

[[fault]]
at_s = 5
kind = "partition"
target = "lock-holder"
for_s = 20

[[fault]]
at_s = 27
kind = "partition"
target = "lock-holder"
for_s = 12
"#;

/// Variant 3: lock holders cut off (both ways) for a second while they release: the delete is
/// dropped, the connection stalls, and the client hears `ConnectionLoss` for it a little later;
/// the session survives the reconnect. Short holds make every cut holder release inside it.
const RELEASE_MEETS_LOSS: &str = r#"
name = "sensitivity_release_meets_loss"

[ensemble]
servers = 3
tick_ms = 500
session_timeout_ms = 6000

[run]
duration_s = 45
liveness_s = 12

[[workload]]
role = "lock"
count = 5
path = "/locks/a"
hold_ms = [20, 200]

[[fault]]
at_s = 4
kind = "partition"
target = "lock-holder"
for_s = 1

[[fault]]
at_s = 10
kind = "partition"
target = "random-client"
for_s = 1

[[fault]]
at_s = 16
kind = "partition"
target = "lock-holder"
for_s = 1

[[fault]]
at_s = 22
kind = "latency"
target = "random-client"
ms = 1500
for_s = 1
"#;

/// Variant 4: three latch candidates; the leader is cut off for twice its session timeout,
/// twice: its session expires, another candidate leads, then it reconnects in a new session.
const LEADER_PARTITIONED: &str = r#"
name = "sensitivity_leader_partitioned"

[ensemble]
servers = 3
tick_ms = 500
session_timeout_ms = 4000

[run]
duration_s = 45
liveness_s = 10

[[workload]]
role = "leader-latch"
count = 3
path = "/election"
hold_ms = [3000, 12000]

[[fault]]
at_s = 5
kind = "partition"
target = "leader-candidate"
for_s = 8

[[fault]]
at_s = 20
kind = "partition"
target = "leader-candidate"
for_s = 8
"#;

// ----- the tests -----

#[test]
fn variant_1_unprotected_create_is_caught() {
    let scenario = shipped("lost_create_reply.toml");
    let body = lock_body(Bugs {
        recreate_on_loss: true,
        ..Bugs::default()
    });
    let caught = first_catch(
        "variant 1 (create again after a lost reply)",
        &scenario,
        &body,
        &["liveness", "mutual-exclusion"],
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

#[test]
fn variant_2_ignoring_suspended_is_caught() {
    let scenario = shipped("lock_holder_partitioned.toml");
    let body = lock_body(Bugs {
        doubt: Doubt::ServerOnly,
        ..Bugs::default()
    });
    let caught = first_catch(
        "variant 2 (holder ignores Suspended)",
        &scenario,
        &body,
        // The connection-policy checker sees the belief outlive Suspended, often before
        // the overlap it leads to.
        &["mutual-exclusion", "connection-policy"],
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

/// Variant 2a, informational (`--ignored`): a holder that ignores `Suspended` but honours
/// zkit's `Lost`. zkit's client publishes `Lost` from its own timer (last heard + negotiated
/// timeout) while suspended, which comes before the ensemble's tick-rounded expiry and the next
/// holder's acquire, so on this scenario the overlap does not happen: prints how many seeds of
/// the budget failed.
#[test]
#[ignore]
fn variant_2a_session_loss_only() {
    let scenario = shipped("lock_holder_partitioned.toml");
    let options = Options {
        faults: None,
        body: Some(lock_body(Bugs {
            doubt: Doubt::SessionLoss,
            ..Bugs::default()
        })),
    };
    let failed: Vec<u64> = (0..budget())
        .filter(|&seed| !runner::run_with(&scenario, seed, &options).passed())
        .collect();
    println!(
        "variant 2a (ignores Suspended, honours Lost): {} of {} seeds of {} fail: {failed:?}",
        failed.len(),
        budget(),
        scenario.name
    );
}

#[test]
fn variant_3_unretried_release_is_caught() {
    let scenario = inline("release_meets_loss", RELEASE_MEETS_LOSS);
    let body = lock_body(Bugs {
        forget_failed_delete: true,
        ..Bugs::default()
    });
    let caught = first_catch(
        "variant 3 (release not retried after a failed delete)",
        &scenario,
        &body,
        &["liveness"],
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

#[test]
fn variant_4_election_without_recheck_is_caught() {
    let scenario = inline("leader_partitioned", LEADER_PARTITIONED);
    let caught = first_catch(
        "variant 4 (leadership resumed after reconnect without a re-check)",
        &scenario,
        &election_body(false),
        &["single-leader"],
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

#[test]
fn variant_5_same_token_for_every_holder_is_caught() {
    let scenario = shipped("lock_holder_paused.toml");
    let body = lock_body(Bugs {
        token: Token::Version,
        ..Bugs::default()
    });
    let caught = first_catch(
        "variant 5 (every holder gets the same token)",
        &scenario,
        &body,
        &["fencing"],
    );
    // Beyond the tokens not increasing: within the budget, a seed where the paused holder's
    // stale write went through (whether the pause lands in a hold is up to the seed).
    let options = Options {
        faults: None,
        body: Some(body.clone()),
    };
    let accepted = (0..budget()).find(|&seed| {
        runner::run_with(&scenario, seed, &options)
            .violations
            .iter()
            .any(|v| v.checker == "fencing" && v.message.contains("accepted c"))
    });
    assert!(
        accepted.is_some(),
        "no seed of {} showed a stale write accepted",
        budget()
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

/// Real mode catches a planted recipe bug too: variant 5 (every holder gets the same
/// token) run by every client against a real ZooKeeper ensemble, in one run.
#[test]
fn variant_5_is_caught_against_a_real_ensemble() {
    let scenario = shipped("lock_holder_paused.toml");
    let bugs = Bugs {
        token: Token::Version,
        ..Bugs::default()
    };
    let body: RealBody = Arc::new(move |spec: ClientSpec, incarnation: u32| -> BoxedRun {
        Box::pin(async move { lock_contender(spec, incarnation, bugs).await })
    });
    let options = RealOptions {
        body: Some(body),
        ..RealOptions::default()
    };
    let outcome = run_real(&scenario, 0, &options)
        .unwrap_or_else(|e| panic!("a real ZooKeeper must start for this test: {e}"));
    assert!(
        checkers(&outcome).contains(&"fencing"),
        "variant 5 not caught against the real ensemble: {:?}\n{}",
        outcome.violations,
        outcome.coverage
    );
}

#[test]
fn variant_6_non_monotonic_tokens_are_caught() {
    let scenario = shipped("lock_holder_paused.toml");
    let body = lock_body(Bugs {
        token: Token::Session,
        ..Bugs::default()
    });
    let caught = first_catch(
        "variant 6 (the session id as the token)",
        &scenario,
        &body,
        &["fencing"],
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

#[test]
fn variant_7_ignoring_suspended_breaks_the_connection_policy() {
    let scenario = shipped("lock_holder_partitioned.toml");
    let body = lock_body(Bugs {
        doubt: Doubt::SessionLoss,
        ..Bugs::default()
    });
    let caught = first_catch(
        "variant 7 (holder ignores Suspended, honours Lost)",
        &scenario,
        &body,
        &["connection-policy"],
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

#[test]
fn variant_8_leading_with_an_old_session_is_caught_by_the_session_checker() {
    let scenario = inline("leader_partitioned", LEADER_PARTITIONED);
    let caught = first_catch(
        "variant 8 (leadership resumed with the expired session's node)",
        &scenario,
        &election_body(false),
        &["session"],
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

#[test]
fn variant_9_a_leave_that_does_not_wait_is_caught() {
    let scenario = shipped("double_barrier_dying_participant.toml");
    let caught = first_catch(
        "variant 9 (double-barrier leave does not wait)",
        &scenario,
        &hasty_barrier_body(),
        &["double-barrier"],
    );
    // Not only the early releases that follow: the leave itself.
    assert!(
        caught
            .violations
            .iter()
            .any(|v| v.message.contains("had not called leave")),
        "{:#?}",
        caught.violations
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

#[test]
fn variant_10_suspended_not_published_is_caught() {
    let scenario = shipped("lock_holder_partitioned.toml");
    let body = lock_body(Bugs {
        planted: Some(PlantedBug::SuspendedNotPublished),
        ..Bugs::default()
    });
    let caught = first_catch(
        "variant 10 (client: Suspended not published)",
        &scenario,
        &body,
        &["connection-policy"],
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

#[test]
fn variant_11_late_expiry_timer_is_caught() {
    let scenario = inline("holder_cut_off_long", HOLDER_CUT_OFF_LONG);
    let body = lock_body(Bugs {
        planted: Some(PlantedBug::LateExpiryTimer),
        ..Bugs::default()
    });
    let caught = first_catch(
        "variant 11 (client: expiry timer three sessions late)",
        &scenario,
        &body,
        &["connection-policy"],
    );
    assert!(
        caught
            .violations
            .iter()
            .any(|v| v.message.contains("did not report Lost")),
        "{:#?}",
        caught.violations
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

#[test]
fn variant_12_watches_not_restored_is_caught() {
    let scenario = shipped("config_watcher_across_reconnects.toml");
    let caught = first_catch(
        "variant 12 (client: watches not restored after a reconnect)",
        &scenario,
        &planted_watcher_body(PlantedBug::WatchesNotRestored),
        &["config"],
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

/// Variant 13, informational (`--ignored`): not caught, and not catchable with today's
/// faults. The scenario does push clients onto the lagging follower (its trace shows the
/// correct client refused there: "refused a client that has seen a newer zxid"), but no
/// read went backwards in 100 seeds. Probably because `lag` holds all of the follower's
/// traffic: the leader's revalidation of a reconnecting session is held too, so the bugged
/// client is not served there before the follower gives up on its leader. Not yet
/// confirmed. What it likely needs is a follower slow to *apply* while its links flow (a
/// new fault).
#[test]
#[ignore]
fn variant_13_last_zxid_not_sent_is_caught() {
    let scenario = inline(
        "readers_pushed_to_a_lagging_follower",
        READERS_PUSHED_TO_A_LAGGING_FOLLOWER,
    );
    let caught = first_catch(
        "variant 13 (client: last_zxid_seen not sent)",
        &scenario,
        &planted_register_body(PlantedBug::NoLastZxidSeen),
        &["monotonic-reads"],
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

/// The register role, its client built with `bug`.
fn planted_register_body(bug: PlantedBug) -> ClientBody {
    Rc::new(move |spec: ClientSpec, incarnation: u32| -> BoxedRun {
        Box::pin(async move {
            spec.history.record(Event::Started {
                client: spec.client,
                incarnation,
            });
            register::run_configured(&spec, incarnation, |b| b.planted_bug(bug)).await
        })
    })
}

/// Three servers, one follower lagging (its replication held) while register clients read
/// and write; then the server each client is on crashes in turn, so a client reconnects in
/// the same session to one of the others, sometimes the lagging one. A client that sends
/// its `last_zxid_seen` is refused there; one that sends 0 is served from behind what it
/// has read (variant 13).
const READERS_PUSHED_TO_A_LAGGING_FOLLOWER: &str = r#"
name = "sensitivity_readers_pushed_to_a_lagging_follower"

[ensemble]
servers = 3
tick_ms = 500
session_timeout_ms = 6000

[run]
duration_s = 30
liveness_s = 5

[[workload]]
role = "register"
count = 4
path = "/registers/r"
hold_ms = [10, 60]

[[fault]]
at_s = 3
kind = "lag"
target = "random-follower"
for_s = 20

[[fault]]
at_s = 6
kind = "crash"
target = "follower-of:1"
for_s = 2

[[fault]]
at_s = 9
kind = "crash"
target = "follower-of:2"
for_s = 2

[[fault]]
at_s = 12
kind = "crash"
target = "follower-of:3"
for_s = 2

[[fault]]
at_s = 15
kind = "crash"
target = "follower-of:4"
for_s = 2
"#;

#[test]
fn variant_14_semaphore_without_a_lock_is_caught() {
    let scenario = shipped("semaphore_holders_expire.toml");
    let caught = first_catch(
        "variant 14 (semaphore counts and takes without a lock)",
        &scenario,
        &greedy_semaphore_body(),
        &["semaphore"],
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

#[test]
fn variant_15_counter_without_cas_is_caught() {
    let scenario = shipped("counter_lost_replies.toml");
    let caught = first_catch(
        "variant 15 (counter add without compare-and-set)",
        &scenario,
        &blind_counter_body(),
        &["counter"],
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

#[test]
fn variant_16_queue_entry_taken_twice_is_caught() {
    let scenario = shipped("queue_lost_replies.toml");
    let caught = first_catch(
        "variant 16 (queue take counts an entry gone as taken)",
        &scenario,
        &careless_consumer_body(),
        &["queue"],
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

#[test]
fn variant_17_tree_cache_watches_not_restored_is_caught() {
    let scenario = shipped("tree_cache_reconnects.toml");
    let caught = first_catch(
        "variant 17 (client: watches not restored, under a tree cache)",
        &scenario,
        &planted_tree_cache_body(PlantedBug::WatchesNotRestored),
        &["tree-cache"],
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

#[test]
fn variant_18_reader_ignoring_writers_is_caught() {
    let scenario = shipped("rwlock_mixed_holders_fail.toml");
    let caught = first_catch(
        "variant 18 (read-write lock: a reader ignores the writers)",
        &scenario,
        &reader_ignores_writers_body(),
        &["mutual-exclusion"],
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

#[test]
fn variant_19_an_enter_that_does_not_wait_is_caught() {
    let scenario = shipped("double_barrier_dying_participant.toml");
    let caught = first_catch(
        "variant 19 (double-barrier enter does not wait)",
        &scenario,
        &hasty_enter_body(),
        &["double-barrier"],
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

#[test]
fn variant_20_semaphore_holder_ignoring_suspended_is_caught() {
    let scenario = shipped("semaphore_holders_expire.toml");
    let caught = first_catch(
        "variant 20 (semaphore holder ignores Suspended and Lost)",
        &scenario,
        &trusting_semaphore_body(),
        &["connection-policy", "semaphore"],
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

/// The shipped roles, the lock contenders' and latch candidates' clients built with `bug`.
fn planted_recipes_body(bug: PlantedBug) -> ClientBody {
    Rc::new(move |spec: ClientSpec, incarnation: u32| -> BoxedRun {
        Box::pin(async move {
            let configure = |b: zkit::Builder| b.planted_bug(bug);
            match spec.workload.role {
                Role::Lock => {
                    spec.history.record(Event::Started {
                        client: spec.client,
                        incarnation,
                    });
                    workload::lock::run_configured(&spec, incarnation, configure).await
                }
                Role::LeaderLatch => {
                    spec.history.record(Event::Started {
                        client: spec.client,
                        incarnation,
                    });
                    workload::leader_latch::run_configured(&spec, incarnation, configure).await
                }
                _ => workload::run(spec, incarnation).await,
            }
        })
    })
}

#[test]
fn variant_24_a_cancelled_release_losing_its_node_is_caught() {
    let scenario = shipped("cancelled_calls.toml");
    let caught = first_catch(
        "variant 24 (recipes: a cancelled release or close loses its node)",
        &scenario,
        &planted_recipes_body(PlantedBug::CancelledDeleteLosesNode),
        &["liveness"],
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

#[test]
fn caught_swarm_seed_shrinks_and_replays() {
    let text = std::fs::read_to_string(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios/lock_holder_partitioned.toml"),
    )
    .expect("read lock_holder_partitioned.toml");
    let text = format!(
        "{text}\n[swarm]\nkinds = [\"partition\", \"latency\"]\nfaults = [1, 3]\nfor_s = [1, 4]\n\
         from_s = 2\nuntil_s = 30\n"
    );
    let scenario = inline("lock_holder_partitioned_swarm", &text);
    let body = lock_body(Bugs {
        doubt: Doubt::ServerOnly,
        ..Bugs::default()
    });
    let caught = first_catch(
        "variant 2 under a swarm",
        &scenario,
        &body,
        // The connection-policy checker sees the belief outlive Suspended, often before
        // the overlap it leads to.
        &["mutual-exclusion", "connection-policy"],
    );
    let seed = caught.seed;
    let checker = caught.violations[0].checker;
    let wall = WallClock::now();
    let shrunk = shrink::shrink(&scenario, seed, 16, Some(body.clone()))
        .expect("the caught seed fails again under shrink");
    let file = shrunk.scenario_file(&scenario);
    println!(
        "shrunk seed {seed} from {} to {} faults in {} runs ({:.1} s wall):\n{file}",
        shrunk.original.len(),
        shrunk.faults.len(),
        shrunk.runs,
        wall.elapsed().as_secs_f64()
    );
    assert_eq!(shrunk.original, caught.schedule);
    assert!(shrunk.faults.len() <= shrunk.original.len());
    assert!(!shrunk.outcome.passed(), "the shrunk schedule's run passes");
    assert!(checkers(&shrunk.outcome).contains(&checker));
    let parsed = scenario::parse("<shrunk>", "shrunk", &file).unwrap_or_else(|e| panic!("{e}"));
    assert!(parsed.swarm.is_none());
    assert_eq!(parsed.faults, shrunk.faults);
    let replay = runner::run_with(
        &parsed,
        seed,
        &Options {
            faults: None,
            body: Some(body),
        },
    );
    assert!(
        replay.violations.iter().any(|v| v.checker == checker),
        "the shrunk scenario file, replayed, does not fail {checker}: {:#?}\n{}",
        replay.violations,
        replay.trace
    );
}

// ----- the broken register -----

/// How a broken register client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StaleRead {
    /// Variant 10: a read recorded as synced sends no `sync`.
    SkipSync,
    /// Variant 11: every other read returns the last value and version the client saw
    /// (read or wrote) without asking the server.
    Cache,
}

fn register_body(bug: StaleRead) -> ClientBody {
    Rc::new(move |spec: ClientSpec, incarnation: u32| -> BoxedRun {
        Box::pin(async move { stale_register(spec, incarnation, bug).await })
    })
}

/// The register role's loop ([`register::run`]) with `bug` in its synced reads.
async fn stale_register(spec: ClientSpec, incarnation: u32, bug: StaleRead) -> workload::Result {
    spec.history.record(Event::Started {
        client: spec.client,
        incarnation,
    });
    let path = spec.workload.path.clone();
    let (lo, hi) = spec.workload.hold;
    let (mut rng, zk, mut n) = register::setup(&spec, incarnation).await;
    let mut last_version = 0;
    let mut cache: Option<(String, i32)> = None;
    loop {
        sleep(rng.random_range(lo..=hi)).await;
        let value = format!("c{}-{incarnation}-{n}", spec.client);
        let op = register::choose(&mut rng, last_version, value);
        let id = register::op_id(incarnation, n);
        n += 1;
        let stale = matches!(op, RegisterOp::Read { synced: true });
        let use_cache = bug == StaleRead::Cache && stale && rng.random_bool(0.5);
        let result = match (&op, cache.clone()) {
            (_, Some(cached)) if use_cache => {
                register::recorded(&spec, &zk, id, op.clone(), async {
                    RegisterResult::Read(Some(cached))
                })
                .await
            }
            (RegisterOp::Read { .. }, _) if stale && bug == StaleRead::SkipSync => {
                register::recorded(&spec, &zk, id, op.clone(), async {
                    register::apply(&zk, &path, &RegisterOp::Read { synced: false }).await
                })
                .await
            }
            _ => {
                register::recorded(&spec, &zk, id, op.clone(), register::apply(&zk, &path, &op))
                    .await
            }
        };
        match (&op, &result) {
            (_, RegisterResult::Read(Some(seen))) => cache = Some(seen.clone()),
            (
                RegisterOp::Write { value } | RegisterOp::Cas { value, .. },
                RegisterResult::Written { version },
            ) => cache = Some((value.clone(), *version)),
            _ => {}
        }
        if let Some(v) = register::version_of(&result) {
            last_version = v;
        }
        register::recover(&zk, &result).await;
    }
}

#[test]
fn variant_21_reads_without_sync_are_caught() {
    let scenario = shipped("register_under_faults.toml");
    let caught = first_catch(
        "variant 21 (register reads skip the sync)",
        &scenario,
        &register_body(StaleRead::SkipSync),
        &["linearizable"],
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

#[test]
fn variant_23_register_watches_not_restored_are_caught() {
    let scenario = shipped("register_under_faults.toml");
    let caught = first_catch(
        "variant 23 (client: watches not restored, register data watches)",
        &scenario,
        &planted_register_body(PlantedBug::WatchesNotRestored),
        &["watches"],
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

#[test]
fn variant_22_reads_from_a_stale_cache_are_caught() {
    let scenario = shipped("register_under_faults.toml");
    let caught = first_catch(
        "variant 22 (register reads from a local cache)",
        &scenario,
        &register_body(StaleRead::Cache),
        &["linearizable"],
    );
    control(&scenario, caught.seed.max(CONTROL_SEEDS - 1));
}

/// The hand-written recipes with no bug planted pass the variants' scenarios: what the
/// variants are caught for is their bug, not the hand-written recipe around it.
#[test]
fn hand_written_recipes_without_their_bug_pass() {
    let seeds = 2;
    let lock = lock_body(Bugs::default());
    let cases = [
        (shipped("lost_create_reply.toml"), lock.clone()),
        (shipped("lock_holder_partitioned.toml"), lock.clone()),
        (shipped("lock_holder_paused.toml"), lock.clone()),
        (inline("release_meets_loss", RELEASE_MEETS_LOSS), lock),
        (
            inline("leader_partitioned", LEADER_PARTITIONED),
            election_body(true),
        ),
    ];
    for (scenario, body) in cases {
        let wall = WallClock::now();
        let options = Options {
            faults: None,
            body: Some(body),
        };
        for seed in 0..seeds {
            let outcome = runner::run_with(&scenario, seed, &options);
            assert!(
                outcome.passed(),
                "the bug-free hand-written recipe fails {} seed {seed}: {:#?}\n{}",
                scenario.name,
                outcome.violations,
                outcome.trace
            );
        }
        println!(
            "bug-free hand-written recipe passes {} seeds 0..{seeds} ({:.1} s wall)",
            scenario.name,
            wall.elapsed().as_secs_f64()
        );
    }
}
