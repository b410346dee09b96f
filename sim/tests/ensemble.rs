//! The replicated ensemble inside turmoil, with real `zkit` clients: a leader crash while two
//! clients write (no acknowledged write lost, invariants hold, clients end on the same tree),
//! a minority partition (its server drops its clients, who move to the majority with their
//! sessions alive), election convergence after faults heal within a stated bound, a stale read
//! on a lagging follower that `sync` fixes, recovery by `SNAP` (a follower behind the
//! compacted log) and by `TRUNC` (an uncommitted proposal of an older epoch dropped), a
//! server behind a client refusing it, the `ack_before_fsync` fault caught by the checker,
//! and seed sweeps of the crash scenario with 3 and 5 servers (`ZKIT_SEEDS` seeds each; 40
//! and 10 by default). Determinism has its own binary (`ensemble_determinism.rs`).

mod ensemble_common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use ensemble_common::*;
use zkit::CreateMode;
use zkit_sim::ensemble::{Ensemble, EnsembleConfig};

#[test]
fn leader_crash_while_clients_write_loses_nothing() {
    let _serial = serial();
    let run = crash_scenario(1);
    assert!(run.servers.iter().any(|e| e.contains("crashed")));
    assert!(
        run.servers
            .iter()
            .filter(|e| e.contains("established leader"))
            .count()
            >= 2,
        "a new leader after the crash: {:#?}",
        run.servers
    );
}

/// Seeds of a sweep: `ZKIT_SEEDS` if set, else `default`.
fn seeds(default: u64) -> u64 {
    std::env::var("ZKIT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn sweep(servers: u8, first: u64, seeds: u64) {
    let (mut diff, mut trunc, mut snap) = (0, 0, 0);
    for seed in first..first + seeds {
        let run = crash_scenario_of(seed, servers);
        let (d, t, s) = sync_kinds(&run.servers);
        diff += d;
        trunc += t;
        snap += s;
    }
    eprintln!(
        "{seeds} seeds with {servers} servers: syncs by diff {diff}, trunc {trunc}, snap {snap}"
    );
    assert!(diff > 0);
}

#[test]
fn seed_sweep_of_the_crash_scenario() {
    let _serial = serial();
    sweep(3, 100, seeds(40));
}

/// 5 servers: the leader and another server crash together (2 of 5) and come back.
#[test]
fn seed_sweep_of_the_crash_scenario_with_5_servers() {
    let _serial = serial();
    sweep(5, 100_000, seeds(10));
}

/// Writes `n` nodes under `/s` (from `first`), each acknowledged.
async fn write_n(zk: &zkit::Client, first: usize, n: usize) -> zkit::Result<()> {
    for k in first..first + n {
        create_retrying(zk, &format!("/s/{k}")).await?;
    }
    Ok(())
}

/// A follower that was down while the others wrote past their snapshot is synced by SNAP;
/// the snapshot it installed survives its next crash (it restarts from it and then only
/// needs a DIFF), and every server keeps applying the committed history exactly.
#[test]
fn a_follower_behind_the_compacted_log_is_synced_by_snapshot_that_survives_a_crash() {
    let _serial = serial();
    let seed = 51;
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let ens = Ensemble::new(EnsembleConfig {
        seed,
        snapshot_every: 5,
        ..EnsembleConfig::default()
    });
    let mut sim = sim(seed, 120);
    ens.register(&mut sim);
    assert!(step_until(&mut sim, Duration::from_secs(10), || ens.converged()));
    let leader = ens.leader().expect("leader");
    let f = (1..=3).find(|&i| i != leader).expect("follower");
    let port = ens.config().server.client_port;
    let leader_host = format!("{}:{port}", Ensemble::host(leader));
    let follower_host = format!("{}:{port}", Ensemble::host(f));
    let l = log.clone();
    sim.client("w", async move {
        let zk = client(&leader_host, 1).await?;
        create_retrying(&zk, "/s").await?;
        write_n(&zk, 0, 3).await?;
        note(&l, "w", "phase 1 done".to_owned());
        while count(&l, "sim: follower down") == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        write_n(&zk, 3, 20).await?;
        note(&l, "w", "phase 2 done".to_owned());
        while count(&l, "sim: follower restarted twice") == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        write_n(&zk, 23, 3).await?;
        note(&l, "w", "phase 3 done".to_owned());
        park(zk).await;
        Ok(())
    });
    assert!(step_until(&mut sim, Duration::from_secs(10), || count(
        &log,
        "phase 1 done"
    ) == 1));
    ens.crash(&mut sim, f);
    log.borrow_mut().push("sim: follower down".to_owned());
    if !step_until(&mut sim, Duration::from_secs(20), || {
        count(&log, "phase 2 done") == 1
    }) {
        fail(&ens, &log, "phase 2");
    }
    let compacted = ens.store(leader).expect("leader store");
    let behind = ens.store(f).expect("follower store").last_zxid();
    assert!(
        compacted.base() > behind,
        "the leader's snapshot 0x{:x} is past the follower's last zxid 0x{behind:x}",
        compacted.base()
    );
    ens.bounce(&mut sim, f);
    if !step_until(&mut sim, Duration::from_secs(10), || ens.converged()) {
        fail(&ens, &log, "no convergence after the restart");
    }
    let snap_line = format!("zk{f}: synced with zk{leader} by snap");
    let events = ens.events();
    assert_eq!(
        events.iter().filter(|e| e.contains(&snap_line)).count(),
        1,
        "{events:#?}"
    );
    let installed = ens.store(f).expect("follower store").base();
    assert!(installed >= compacted.base());
    // The snapshot is durable: a crash now restarts the follower from it.
    ens.crash(&mut sim, f);
    step_until(&mut sim, Duration::from_millis(500), || false);
    ens.bounce(&mut sim, f);
    if !step_until(&mut sim, Duration::from_secs(10), || ens.converged()) {
        fail(&ens, &log, "no convergence after the second restart");
    }
    let events = ens.events();
    let started = format!("zk{f}: started (incarnation 3, snapshot 0x{installed:x}");
    assert!(
        events.iter().any(|e| e.contains(&started)),
        "{started}: {events:#?}"
    );
    let diff_line = format!("zk{f}: synced with zk{leader} by diff");
    assert!(events.iter().any(|e| e.contains(&diff_line)), "{events:#?}");
    assert_eq!(
        events.iter().filter(|e| e.contains(&snap_line)).count(),
        1,
        "{events:#?}"
    );
    log.borrow_mut()
        .push("sim: follower restarted twice".to_owned());
    if !step_until(&mut sim, Duration::from_secs(10), || {
        count(&log, "phase 3 done") == 1
    }) {
        fail(&ens, &log, "phase 3");
    }
    // A reader on the restarted follower sees every write.
    let l = log.clone();
    sim.client("r", async move {
        let zk = client(&follower_host, 2).await?;
        zk.sync("/s").await?;
        let children = zk.get_children("/s").await?;
        note(&l, "r", format!("read {} children", children.len()));
        park(zk).await;
        Ok(())
    });
    if !step_until(&mut sim, Duration::from_secs(10), || {
        count(&log, "r: read") == 1
    }) {
        fail(&ens, &log, "no read on the follower");
    }
    assert_eq!(count(&log, "r: read 26 children"), 1, "{:#?}", log.borrow());
    assert!(step_until(&mut sim, Duration::from_secs(5), || ens.converged()));
    assert_eq!(ens.check(), Vec::<String>::new());
}

/// A leader cut off from its followers logs a proposal nobody else sees; the others elect a
/// new leader and go on. When it comes back, the new leader sends it TRUNC: the proposal of
/// the older epoch is dropped from its log and from the tree everybody reads.
#[test]
fn an_uncommitted_proposal_of_an_older_epoch_is_dropped_by_trunc() {
    let _serial = serial();
    let seed = 61;
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let ens = ensemble(seed);
    let mut sim = sim(seed, 120);
    ens.register(&mut sim);
    assert!(step_until(&mut sim, Duration::from_secs(10), || ens.converged()));
    let old = ens.leader().expect("leader");
    let others: Vec<u8> = (1..=3).filter(|&i| i != old).collect();
    let port = ens.config().server.client_port;
    let old_host = format!("{}:{port}", Ensemble::host(old));
    let others_hosts = others
        .iter()
        .map(|&i| format!("{}:{port}", Ensemble::host(i)))
        .collect::<Vec<_>>()
        .join(",");
    let l = log.clone();
    sim.client("a", async move {
        let zk = client(&old_host, 1).await?;
        create_retrying(&zk, "/t").await?;
        note(&l, "a", "ready".to_owned());
        while count(&l, "sim: cut") == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let lost = zk.create("/t/lost", b"", CreateMode::Persistent).await;
        note(&l, "a", format!("create /t/lost: {:?}", lost.map(|_| ())));
        park(zk).await;
        Ok(())
    });
    assert!(step_until(&mut sim, Duration::from_secs(10), || count(
        &log, "a: ready"
    ) == 1));
    let before = ens.store(old).expect("store").last_zxid();
    for &o in &others {
        sim.partition(Ensemble::host(old), Ensemble::host(o));
    }
    log.borrow_mut().push("sim: cut".to_owned());
    if !step_until(&mut sim, Duration::from_secs(5), || {
        ens.store(old).is_some_and(|s| s.last_zxid() > before)
    }) {
        fail(&ens, &log, "the cut-off leader logged no proposal");
    }
    let orphan = ens.store(old).expect("store").last_zxid();
    let new_leader = || ens.leader().filter(|&l| l != old);
    if !step_until(&mut sim, Duration::from_secs(10), || new_leader().is_some()) {
        fail(&ens, &log, "no new leader");
    }
    let new = new_leader().expect("new leader");
    let l = log.clone();
    sim.client("b", async move {
        let zk = client(&others_hosts, 2).await?;
        create_retrying(&zk, "/t/after").await?;
        note(&l, "b", "wrote".to_owned());
        while count(&l, "sim: healed") == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        zk.sync("/t").await?;
        let mut children = zk.get_children("/t").await?;
        children.sort();
        note(&l, "b", format!("children {}", children.join(",")));
        park(zk).await;
        Ok(())
    });
    if !step_until(&mut sim, Duration::from_secs(10), || {
        count(&log, "b: wrote") == 1
    }) {
        fail(&ens, &log, "no write in the new epoch");
    }
    for &o in &others {
        sim.repair(Ensemble::host(old), Ensemble::host(o));
    }
    if !step_until(&mut sim, Duration::from_secs(10), || ens.converged()) {
        fail(&ens, &log, "no convergence after healing");
    }
    log.borrow_mut().push("sim: healed".to_owned());
    if !step_until(&mut sim, Duration::from_secs(10), || {
        count(&log, "b: children") == 1
    }) {
        fail(&ens, &log, "no read after healing");
    }
    let events = ens.events();
    let trunc = format!("zk{old}: synced with zk{new} by trunc");
    assert_eq!(
        events.iter().filter(|e| e.contains(&trunc)).count(),
        1,
        "{events:#?}"
    );
    let store = ens.store(old).expect("store");
    assert!(!store.holds(orphan), "0x{orphan:x} still logged");
    assert!(store.last_zxid() >> 32 > orphan >> 32);
    assert_eq!(count(&log, "b: children after"), 1, "{:#?}", log.borrow());
    assert_eq!(
        count(&log, "a: create /t/lost: Err(ConnectionLoss)"),
        1,
        "{:#?}",
        log.borrow()
    );
    assert_eq!(ens.check(), Vec::<String>::new());
}

/// A client that has seen a write reconnects to a follower that has not applied it (its link
/// to the leader is held, and a long `sync_limit` keeps it serving): the follower refuses
/// the session, as ZooKeeper does, and the client moves on to a server that is up to date,
/// with its session.
#[test]
fn a_server_behind_the_client_refuses_it_and_the_client_moves_on_with_its_session() {
    let _serial = serial();
    let seed = 71;
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let ens = Ensemble::new(EnsembleConfig {
        seed,
        sync_limit: 60,
        ..EnsembleConfig::default()
    });
    let mut sim = sim(seed, 120);
    ens.register(&mut sim);
    assert!(step_until(&mut sim, Duration::from_secs(10), || ens.converged()));
    let leader = ens.leader().expect("leader");
    let followers: Vec<u8> = (1..=3).filter(|&i| i != leader).collect();
    let (on, behind) = (followers[0], followers[1]);
    let hosts = ens.connect_string();
    let l = log.clone();
    sim.client("c", async move {
        let zk = zkit::Client::builder(&hosts)
            .connector(zkit_sim::net::TurmoilConnector)
            .seed(3)
            .session_timeout(Duration::from_secs(12))
            .connect()
            .await?;
        let session = zk.session_id();
        create_retrying(&zk, "/r0").await?;
        note(&l, "c", "ready".to_owned());
        while count(&l, "sim: held") == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        zk.create("/r1", b"", CreateMode::Persistent).await?;
        note(&l, "c", "wrote /r1".to_owned());
        let mut states = zk.state_changes();
        while count(&l, "sim: leader reachable") == 0 {
            let next = tokio::time::timeout(Duration::from_millis(5), states.recv()).await;
            if let Ok(Ok(s)) = next {
                note(&l, "c", format!("state {s:?}"));
            }
        }
        let seen = loop {
            match zk.exists("/r1").await {
                Ok(stat) => break stat.is_some(),
                Err(zkit::Error::ConnectionLoss) => {
                    note(&l, "c", "exists: connection loss".to_owned());
                    zk.wait_for_state(|s| s == zkit::State::Connected).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        // (No write here: with one server down and one held, the leader has no quorum.)
        note(
            &l,
            "c",
            format!(
                "back: same session {}, /r1 seen {seen}",
                zk.session_id() == session
            ),
        );
        park(zk).await;
        Ok(())
    });
    // The client can only reach `on` at first.
    sim.partition("c", Ensemble::host(leader));
    sim.partition("c", Ensemble::host(behind));
    if !step_until(&mut sim, Duration::from_secs(20), || {
        count(&log, "c: ready") == 1
    }) {
        fail(&ens, &log, "client did not start");
    }
    assert!(ens.status()[&on].clients == 1);
    sim.hold(Ensemble::host(leader), Ensemble::host(behind));
    log.borrow_mut().push("sim: held".to_owned());
    if !step_until(&mut sim, Duration::from_secs(5), || {
        count(&log, "wrote /r1") == 1
    }) {
        fail(&ens, &log, "no write");
    }
    // Statuses are published every heartbeat.
    let lagging = || {
        let st = ens.status();
        st[&behind].serving && st[&behind].applied < st[&on].applied
    };
    if !step_until(&mut sim, Duration::from_millis(500), lagging) {
        fail(
            &ens,
            &log,
            "the held follower is not serving behind the others",
        );
    }
    // The client loses its server; the only one it can reach is behind it.
    sim.repair("c", Ensemble::host(behind));
    ens.crash(&mut sim, on);
    if !step_until(&mut sim, Duration::from_secs(10), || {
        ens.status()[&behind].refused_behind >= 1
    }) {
        fail(&ens, &log, "the server behind did not refuse the client");
    }
    sim.repair("c", Ensemble::host(leader));
    note_sim(&log, &sim, "leader reachable".to_owned());
    if !step_until(&mut sim, Duration::from_secs(15), || {
        count(&log, "c: back") == 1
    }) {
        fail(&ens, &log, "client did not move on");
    }
    assert_eq!(
        count(&log, "c: back: same session true, /r1 seen true"),
        1,
        "{:#?}",
        log.borrow()
    );
    assert_eq!(count(&log, "state Lost"), 0, "{:#?}", log.borrow());
    let events = ens.events();
    let refused = format!("zk{behind}: refused a client that has seen a newer zxid");
    assert!(events.iter().any(|e| e.contains(&refused)), "{events:#?}");
    assert_eq!(ens.status()[&leader].clients, 1);
    sim.release(Ensemble::host(leader), Ensemble::host(behind));
    ens.bounce(&mut sim, on);
    if !step_until(&mut sim, Duration::from_secs(10), || ens.converged()) {
        fail(&ens, &log, "no convergence");
    }
    assert_eq!(ens.check(), Vec::<String>::new());
}

/// The checker is sensitive: with `ack_before_fsync` some seed of the fsync scenario loses
/// a committed transaction and the checker says so; without the fault the same seeds are
/// clean.
#[test]
fn ack_before_fsync_loses_a_committed_txn_that_the_checker_reports() {
    let _serial = serial();
    let mut tried = 0;
    let mut caught = None;
    for seed in 500..540 {
        tried += 1;
        let clean = fsync_scenario(seed, false);
        assert_eq!(clean.violations, Vec::<String>::new(), "seed {seed}");
        let faulty = fsync_scenario(seed, true);
        if !faulty.violations.is_empty() {
            caught = Some((seed, faulty.violations));
            break;
        }
    }
    let Some((seed, violations)) = caught else {
        panic!("no seed of {tried} lost a committed txn with ack_before_fsync");
    };
    eprintln!("ack_before_fsync caught after {tried} seed(s) (seed {seed}): {violations:#?}");
    assert!(
        violations
            .iter()
            .any(|v| v.contains("lost") || v.contains("committed history")),
        "{violations:#?}"
    );
}

/// The server a client is connected to is cut off from the other two: it stops serving and
/// drops the client, which moves to the majority with its session (and ephemeral node).
#[test]
fn minority_server_drops_its_clients_who_move_with_their_sessions() {
    let _serial = serial();
    let seed = 11;
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let ens = ensemble(seed);
    let mut sim = sim(seed, 60);
    ens.register(&mut sim);
    assert!(step_until(&mut sim, Duration::from_secs(10), || ens
        .leader()
        .is_some()));
    let hosts = ens.connect_string();
    let l = log.clone();
    sim.client("c", async move {
        let zk = client(&hosts, 5).await?;
        let session = zk.session_id();
        zk.create("/e", b"", CreateMode::Ephemeral).await?;
        let mut states = zk.state_changes();
        note(&l, "c", "ready".to_owned());
        while count(&l, "healed") == 0 {
            let next = tokio::time::timeout(Duration::from_millis(50), states.recv()).await;
            if let Ok(Ok(s)) = next {
                note(&l, "c", format!("state {s:?}"));
            }
        }
        let stat = zk.exists("/e").await?.ok_or("ephemeral node gone")?;
        assert_eq!(stat.ephemeral_owner, session);
        assert_eq!(zk.session_id(), session);
        zk.create("/after", b"", CreateMode::Persistent).await?;
        note(&l, "c", "session alive on the majority".to_owned());
        // Close explicitly: a dropped client is not what this test is about.
        finish(zk).await;
        Ok(())
    });
    assert!(step_until(&mut sim, Duration::from_secs(10), || count(
        &log, "c: ready"
    ) == 1));
    let status = ens.status();
    let (&minority, _) = status
        .iter()
        .find(|(_, s)| s.clients > 0)
        .unwrap_or_else(|| fail(&ens, &log, "client on no server"));
    for other in (1..=3).filter(|&o| o != minority) {
        sim.partition(Ensemble::host(minority), Ensemble::host(other));
    }
    note_sim(
        &log,
        &sim,
        format!("partition zk{minority} from the others"),
    );
    // The minority server stops serving and drops the client; the client reconnects to the
    // majority, which has (or elects) a leader.
    let moved = || {
        let st = ens.status();
        let m = st[&minority];
        count(&log, "state Connected") >= 1
            && !m.serving
            && m.clients == 0
            && st
                .iter()
                .any(|(id, s)| *id != minority && s.serving && s.clients == 1)
    };
    if !step_until(&mut sim, Duration::from_secs(10), moved) {
        fail(&ens, &log, "client did not move to the majority");
    }
    assert_eq!(count(&log, "state Lost"), 0, "{:#?}", log.borrow());
    log.borrow_mut().push("sim: healed".to_owned());
    for other in (1..=3).filter(|&o| o != minority) {
        sim.repair(Ensemble::host(minority), Ensemble::host(other));
    }
    if !step_until(&mut sim, Duration::from_secs(10), || {
        count(&log, "session alive") == 1
    }) {
        fail(&ens, &log, "session did not survive");
    }
    assert!(step_until(&mut sim, Duration::from_secs(10), || ens.converged()));
    assert_eq!(ens.check(), Vec::<String>::new());
}

/// The bound on re-election after faults heal (everybody was already looking): the links
/// stalled by the partition are dialed again, a looking server listens for the election
/// wait, then the sync takes a few round trips.
const ELECTION_BOUND: Duration = Duration::from_secs(3);

#[test]
fn election_converges_after_faults_heal_within_the_bound() {
    let _serial = serial();
    for seed in [21, 22, 23] {
        let ens = ensemble(seed);
        let log: Log = Rc::new(RefCell::new(Vec::new()));
        let mut sim = sim(seed, 60);
        ens.register(&mut sim);
        assert!(step_until(&mut sim, ELECTION_BOUND, || ens.converged()));
        // Cut every link: nobody has a quorum, everybody stops serving.
        sim.partition("zk1", "zk2");
        sim.partition("zk2", "zk3");
        sim.partition("zk1", "zk3");
        // Followers give up on a silent leader after syncLimit ticks, the leader on its
        // followers at the next tick boundary after that.
        let quorum_lost = ens.config().sync_timeout() + ens.config().tick() * 2;
        if !step_until(&mut sim, quorum_lost, || {
            ens.status().values().all(|s| !s.serving)
        }) {
            fail(&ens, &log, "servers kept serving without a quorum");
        }
        // The leader crashes too, then everything heals.
        step_until(&mut sim, Duration::from_secs(2), || false);
        ens.crash(&mut sim, 3);
        sim.repair("zk1", "zk2");
        sim.repair("zk2", "zk3");
        sim.repair("zk1", "zk3");
        ens.bounce(&mut sim, 3);
        let healed = sim.elapsed();
        if !step_until(&mut sim, ELECTION_BOUND, || ens.converged()) {
            fail(&ens, &log, "no convergence within the bound");
        }
        let took = sim.elapsed() - healed;
        assert!(took <= ELECTION_BOUND, "took {took:?}");
        assert_eq!(ens.check(), Vec::<String>::new());
    }
}

/// A follower whose link to the leader is held serves a stale read; `sync` waits until the
/// follower has caught up, and the next read is fresh.
#[test]
fn lagging_follower_serves_stale_read_that_sync_fixes() {
    let _serial = serial();
    let seed = 31;
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let ens = ensemble(seed);
    let mut sim = sim(seed, 60);
    ens.register(&mut sim);
    assert!(step_until(&mut sim, Duration::from_secs(10), || ens.converged()));
    let leader = ens.leader().expect("leader");
    let follower = (1..=3).find(|&i| i != leader).expect("follower");
    let port = ens.config().server.client_port;
    let writer_host = format!("{}:{port}", Ensemble::host(leader));
    let reader_host = format!("{}:{port}", Ensemble::host(follower));

    let l = log.clone();
    sim.client("writer", async move {
        let zk = client(&writer_host, 1).await?;
        zk.create("/v", b"0", CreateMode::Persistent).await?;
        note(&l, "writer", "created".to_owned());
        while count(&l, "reader: ready") == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        while count(&l, "sim: held") == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        zk.set_data("/v", b"1", None).await?;
        note(&l, "writer", "set 1 acknowledged".to_owned());
        while count(&l, "after sync") == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        park(zk).await;
        Ok(())
    });
    let l = log.clone();
    sim.client("reader", async move {
        let zk = client(&reader_host, 2).await?;
        while count(&l, "writer: created") == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        zk.sync("/v").await?;
        let (v, _) = zk.get_data("/v").await?;
        assert_eq!(v, b"0");
        note(&l, "reader", "ready".to_owned());
        while count(&l, "set 1 acknowledged") == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (v, _) = zk.get_data("/v").await?;
        note(
            &l,
            "reader",
            format!("read {}", String::from_utf8_lossy(&v)),
        );
        zk.sync("/v").await?;
        let (v, _) = zk.get_data("/v").await?;
        note(
            &l,
            "reader",
            format!("after sync read {}", String::from_utf8_lossy(&v)),
        );
        park(zk).await;
        Ok(())
    });
    assert!(step_until(&mut sim, Duration::from_secs(10), || count(
        &log,
        "reader: ready"
    ) == 1));
    sim.hold(Ensemble::host(leader), Ensemble::host(follower));
    log.borrow_mut().push("sim: held".to_owned());
    if !step_until(&mut sim, Duration::from_millis(300), || {
        count(&log, "reader: read") == 1
    }) {
        fail(&ens, &log, "no read while held");
    }
    sim.release(Ensemble::host(leader), Ensemble::host(follower));
    if !step_until(&mut sim, Duration::from_secs(5), || {
        count(&log, "after sync") == 1
    }) {
        fail(&ens, &log, "sync did not finish");
    }
    assert_eq!(
        count(&log, "reader: read 0"),
        1,
        "stale read: {:#?}",
        log.borrow()
    );
    assert_eq!(
        count(&log, "reader: after sync read 1"),
        1,
        "{:#?}",
        log.borrow()
    );
    assert_eq!(ens.check(), Vec::<String>::new());
}

/// A client cut off from every server: the leader alone expires its session, through the
/// quorum, and a client on any server sees its ephemeral node go; the cut-off client ends
/// Lost.
#[test]
fn leader_expires_the_session_of_a_client_cut_off_from_every_server() {
    let _serial = serial();
    let seed = 41;
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let ens = ensemble(seed);
    let mut sim = sim(seed, 60);
    ens.register(&mut sim);
    assert!(step_until(&mut sim, Duration::from_secs(10), || ens.converged()));
    let hosts = ens.connect_string();
    let (l, h) = (log.clone(), hosts.clone());
    sim.client("a", async move {
        let zk = client(&h, 1).await?;
        zk.create("/owner", b"", CreateMode::Ephemeral).await?;
        note(&l, "a", "created".to_owned());
        let lost = zk.wait_for_state(|s| s == zkit::State::Lost).await;
        note(&l, "a", format!("{lost:?}"));
        park(zk).await;
        Ok(())
    });
    let l = log.clone();
    sim.client("b", async move {
        let zk = client(&hosts, 2).await?;
        while count(&l, "a: created") == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (stat, watcher) = zk.exists_watch("/owner").await?;
        assert!(stat.is_some());
        let ev = watcher.await;
        note(&l, "b", format!("event {:?}", ev.event_type));
        park(zk).await;
        Ok(())
    });
    assert!(step_until(&mut sim, Duration::from_secs(10), || count(
        &log,
        "a: created"
    ) == 1));
    for id in 1..=3 {
        sim.partition("a", Ensemble::host(id));
    }
    let expired = || count(&log, "b: event NodeDeleted") == 1 && count(&log, "a: Lost") == 1;
    if !step_until(&mut sim, Duration::from_secs(30), expired) {
        fail(&ens, &log, "session not expired");
    }
    assert_eq!(ens.check(), Vec::<String>::new());
}

/// When each client event of [`a_client_on_a_cut_off_follower_outlives_its_session`]
/// happened, in simulated time.
type Times = Rc<RefCell<Vec<(Duration, String)>>>;

fn at(times: &Times, what: &str) -> Option<Duration> {
    times
        .borrow()
        .iter()
        .find(|(_, w)| w == what)
        .map(|(t, _)| *t)
}

fn mark(times: &Times, what: &str) {
    let now = turmoil::sim_elapsed().unwrap_or_default();
    times.borrow_mut().push((now, what.to_owned()));
}

/// ZooKeeper's most dangerous window, as the real ensemble has it: a follower cut off from
/// the other servers (not from its client) keeps serving until it has not heard its leader
/// for `syncLimit` ticks (10 × 500 ms, the fixture's), answering its client's pings, so the
/// client stays Connected, while the leader, which no longer hears about the session, expires
/// it after the session timeout (4 s) and another client sees its ephemeral node deleted.
/// The stale client can still read its deleted node on its follower.
#[test]
fn a_client_on_a_cut_off_follower_outlives_its_session() {
    let _serial = serial();
    let seed = 51;
    let ens = ensemble(seed);
    let config = ens.config().clone();
    let session_timeout = Duration::from_secs(4);
    assert!(session_timeout < config.sync_timeout());
    let mut sim = sim(seed, 60);
    ens.register(&mut sim);
    assert!(step_until(&mut sim, Duration::from_secs(10), || ens.converged()));
    let leader = ens.leader().expect("a leader");
    let follower = (1..=3).find(|&i| i != leader).expect("a follower");
    let port = config.server.client_port;
    let times: Times = Rc::new(RefCell::new(Vec::new()));
    let t = times.clone();
    let on_follower = format!("{}:{port}", Ensemble::host(follower));
    sim.client("a", async move {
        let zk = zkit::Client::builder(&on_follower)
            .connector(zkit_sim::net::TurmoilConnector)
            .seed(1)
            .session_timeout(session_timeout)
            .connect()
            .await?;
        zk.create("/owner", b"", CreateMode::Ephemeral).await?;
        mark(&t, "a created");
        let mut states = zk.state_changes();
        loop {
            tokio::select! {
                biased;
                s = states.recv() => {
                    let s = s?;
                    mark(&t, &format!("a {s:?}"));
                    if s == zkit::State::Lost {
                        break;
                    }
                }
                _ = tokio::time::sleep(Duration::from_millis(20)) => {
                    if at(&t, "b deleted").is_some() && at(&t, "a read").is_none() {
                        // Still Connected: the follower answers from its stale tree.
                        zk.get_data("/owner").await?;
                        mark(&t, "a read");
                    }
                }
            }
        }
        park(zk).await;
        Ok(())
    });
    let t = times.clone();
    let on_leader = format!("{}:{port}", Ensemble::host(leader));
    sim.client("b", async move {
        let zk = zkit::Client::builder(&on_leader)
            .connector(zkit_sim::net::TurmoilConnector)
            .seed(2)
            .session_timeout(Duration::from_secs(8))
            .connect()
            .await?;
        while at(&t, "a created").is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (stat, watcher) = zk.exists_watch("/owner").await?;
        assert!(stat.is_some());
        let ev = watcher.await;
        assert_eq!(ev.event_type, zkit::EventType::NodeDeleted);
        mark(&t, "b deleted");
        park(zk).await;
        Ok(())
    });
    assert!(step_until(&mut sim, Duration::from_secs(10), || at(
        &times,
        "a created"
    )
    .is_some()));
    // Let b set its watch, then cut the follower off from both other servers.
    step_until(&mut sim, Duration::from_millis(500), || false);
    for other in (1..=3).filter(|&o| o != follower) {
        sim.partition(Ensemble::host(follower), Ensemble::host(other));
    }
    let cut = sim.elapsed();
    let done = || at(&times, "a Lost").is_some() && at(&times, "b deleted").is_some();
    let report = |what: &str| -> ! {
        panic!(
            "{what}\nclients: {:#?}\nservers: {:#?}",
            times.borrow(),
            ens.events()
        )
    };
    if !step_until(&mut sim, Duration::from_secs(30), done) {
        report("the session did not expire, or a never saw it");
    }
    let since = |what: &str| at(&times, what).map(|t| t.saturating_sub(cut));
    let deleted = since("b deleted").expect("b saw the deletion");
    let suspended = since("a Suspended").unwrap_or_else(|| report("a never suspended"));
    let read = since("a read").unwrap_or_else(|| report("a did not read after the expiry"));
    // The leader last heard of the session at most a heartbeat (plus latency) before the
    // cut, and expires it in the first tick bucket past its timeout.
    let tick = config.tick();
    let slack = config.heartbeat * 2;
    if deleted + slack < session_timeout || deleted > session_timeout + tick + slack {
        report(&format!("expired {deleted:?} after the cut"));
    }
    // The follower gives up on its silent leader after syncLimit ticks of silence (checked
    // every heartbeat), and only then drops its client.
    let sync = config.sync_timeout();
    if suspended + slack < sync || suspended > sync + slack {
        report(&format!("a suspended {suspended:?} after the cut"));
    }
    assert!(
        read < suspended && deleted < suspended,
        "a was Connected after its session expired"
    );
    eprintln!("cut at {cut:?}: {:#?}", times.borrow());
    assert_eq!(ens.check(), Vec::<String>::new());
}

/// Which request the old connection of a moved session sends in
/// [`request_sent_before_the_session_moved`].
#[derive(Clone, Copy)]
enum LateRequest {
    Create,
    Sync,
}

/// A client's request, stuck on a follower cut off from the leader while the session moves
/// to another member and writes there; the held link is then released. Returns the log,
/// after the request on the old connection was answered (or failed) and an observer on the
/// new member looked for `/late`.
fn request_sent_before_the_session_moved(seed: u64, late: LateRequest) -> Log {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let ens = ensemble(seed);
    let mut sim = sim(seed, 60);
    ens.register(&mut sim);
    assert!(step_until(&mut sim, Duration::from_secs(10), || ens.converged()));
    let leader = ens.leader().expect("leader");
    let old = (1..=3).find(|&i| i != leader).expect("a follower");
    let new = (1..=3).find(|&i| i != leader && i != old).expect("another");
    let port = ens.config().server.client_port;
    let old_host = format!("{}:{port}", Ensemble::host(old));
    let new_host = format!("{}:{port}", Ensemble::host(new));
    let credentials = Credentials::default();

    let (l, c) = (log.clone(), credentials.clone());
    sim.client("first", async move {
        let zk = client(&old_host, 1).await?;
        *c.borrow_mut() = Some(zk.session_credentials());
        note(&l, "first", "connected".to_owned());
        while count(&l, "sim: held") == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let outcome = match late {
            LateRequest::Create => format!(
                "{:?}",
                zk.create("/late", b"x", CreateMode::Persistent).await
            ),
            LateRequest::Sync => format!("{:?}", zk.sync("/").await),
        };
        note(&l, "first", format!("request answered {outcome}"));
        park(zk).await;
        Ok(())
    });
    let (l, c) = (log.clone(), credentials.clone());
    sim.client("moved", async move {
        while count(&l, "sim: moving") == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (id, zk) = resume(&new_host, 2, &c).await?;
        assert_eq!(
            zk.session_id(),
            id,
            "the session moved, it was not replaced"
        );
        zk.create("/moved", b"x", CreateMode::Persistent).await?;
        note(&l, "moved", "created /moved".to_owned());
        park(zk).await;
        Ok(())
    });
    // A third session looks: the two connections of the moved one now fight over it (each
    // reconnect moves it back), as two ZooKeeper clients sharing a session would.
    let (l, look_host) = (log.clone(), format!("{}:{port}", Ensemble::host(new)));
    sim.client("observer", async move {
        while count(&l, "first: request answered") == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let zk = client(&look_host, 3).await?;
        zk.sync("/").await?;
        let late = zk.exists("/late").await?;
        note(
            &l,
            "observer",
            format!("after the heal /late exists: {}", late.is_some()),
        );
        park(zk).await;
        Ok(())
    });
    assert!(step_until(&mut sim, Duration::from_secs(10), || count(
        &log,
        "first: connected"
    ) == 1));
    sim.hold(Ensemble::host(leader), Ensemble::host(old));
    log.borrow_mut().push("sim: held".to_owned());
    // The request reaches the held link before the session moves.
    step_until(&mut sim, Duration::from_millis(200), || false);
    log.borrow_mut().push("sim: moving".to_owned());
    if !step_until(&mut sim, Duration::from_secs(3), || {
        count(&log, "moved: created /moved") == 1
    }) {
        fail(&ens, &log, "the moved session did not write");
    }
    sim.release(Ensemble::host(leader), Ensemble::host(old));
    log.borrow_mut().push("sim: released".to_owned());
    if !step_until(&mut sim, Duration::from_secs(10), || {
        count(&log, "after the heal") == 1 && count(&log, "request answered") == 1
    }) {
        fail(&ens, &log, "no verdict after the heal");
    }
    assert_eq!(ens.check(), Vec::<String>::new());
    log
}

/// ZooKeeper's session owner: a client's create, stuck on a follower cut off from the leader,
/// must not apply after the session has moved to another member and written there. The
/// leader refuses the late forward (SESSIONMOVED) and the old member closes the connection
/// instead of answering, as ZooKeeper 3.8 does (`PrepRequestProcessor`, ZOOKEEPER-710).
#[test]
fn a_write_forwarded_after_its_session_moved_is_refused_and_its_connection_closed() {
    let _serial = serial();
    let log = request_sent_before_the_session_moved(43, LateRequest::Create);
    assert_eq!(
        count(&log, "after the heal /late exists: false"),
        1,
        "the write sent on the old connection applied after the move: {:#?}",
        log.borrow()
    );
    assert_eq!(
        count(&log, "request answered Err(ConnectionLoss)"),
        1,
        "the old member must close the connection rather than answer: {:#?}",
        log.borrow()
    );
}

/// A `sync` forwarded by the member a session has left is answered all the same: ZooKeeper
/// 3.8's `PrepRequestProcessor` finds the session moved, but a sync makes no transaction, so
/// the exception only marks the leader's copy and `Leader.processSync` still answers the old
/// member, which answers the client. (The simulation used to drop it, leaving it unanswered.)
#[test]
fn a_sync_forwarded_after_its_session_moved_is_still_answered() {
    let _serial = serial();
    let log = request_sent_before_the_session_moved(43, LateRequest::Sync);
    assert_eq!(
        count(&log, "first: request answered Ok(())"),
        1,
        "the sync on the old connection must be answered: {:#?}",
        log.borrow()
    );
}

/// `REVALIDATE`: a session reconnecting to a follower is resumed only once the leader says
/// it lives, so the handshake stalls on a follower cut off from its leader (which still
/// serves for `syncLimit` ticks) and completes once the link heals, as in ZooKeeper 3.8.
#[test]
fn a_reconnect_to_a_follower_cut_off_from_its_leader_stalls_until_the_leader_answers() {
    let _serial = serial();
    let seed = 47;
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let ens = ensemble(seed);
    let mut sim = sim(seed, 60);
    ens.register(&mut sim);
    assert!(step_until(&mut sim, Duration::from_secs(10), || ens.converged()));
    let leader = ens.leader().expect("leader");
    let follower = (1..=3).find(|&i| i != leader).expect("a follower");
    let port = ens.config().server.client_port;
    let leader_host = format!("{}:{port}", Ensemble::host(leader));
    let follower_host = format!("{}:{port}", Ensemble::host(follower));
    let credentials = Credentials::default();

    let (l, c) = (log.clone(), credentials.clone());
    sim.client("first", async move {
        let zk = client(&leader_host, 1).await?;
        *c.borrow_mut() = Some(zk.session_credentials());
        note(&l, "first", "connected".to_owned());
        park(zk).await;
        Ok(())
    });
    let (l, c) = (log.clone(), credentials.clone());
    sim.client("moved", async move {
        while count(&l, "sim: held") == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (id, zk) = resume(&follower_host, 2, &c).await?;
        assert_eq!(
            zk.session_id(),
            id,
            "the session resumed, it was not replaced"
        );
        note(&l, "moved", "resumed".to_owned());
        park(zk).await;
        Ok(())
    });
    assert!(step_until(&mut sim, Duration::from_secs(10), || count(
        &log,
        "first: connected"
    ) == 1));
    sim.hold(Ensemble::host(leader), Ensemble::host(follower));
    log.borrow_mut().push("sim: held".to_owned());
    // Well within syncLimit (5 s): the follower still serves, but cannot revalidate.
    step_until(&mut sim, Duration::from_secs(2), || false);
    assert_eq!(
        count(&log, "moved: resumed"),
        0,
        "the handshake completed without the leader: {:#?}",
        log.borrow()
    );
    assert!(
        ens.status()[&follower].serving,
        "the follower must still serve while it waits for its leader"
    );
    sim.release(Ensemble::host(leader), Ensemble::host(follower));
    if !step_until(&mut sim, Duration::from_secs(10), || {
        count(&log, "moved: resumed") == 1
    }) {
        fail(
            &ens,
            &log,
            "the session did not resume once the link healed",
        );
    }
    assert_eq!(ens.check(), Vec::<String>::new());
}

/// A stop-the-world pause of the leader, as measured on a real 3-node ZooKeeper 3.8: frozen
/// for 6 s (past the 4 s session timeout and the 5 s `syncLimit`), it answers nothing, so
/// its client gives up on its own timer (`Lost`), while the followers elect a new leader
/// that starts every session's clock afresh. The client's ephemeral node outlives the
/// client's belief, by seconds, until the new leader expires the session; and the resumed
/// old leader, acting on its stale timers, rejoins without any of its own uncommitted
/// closes applying anywhere.
#[test]
fn a_frozen_leader_leaves_its_clients_session_alive_past_its_lost() {
    let _serial = serial();
    let seed = 53;
    let ens = ensemble(seed);
    let config = ens.config().clone();
    let session_timeout = Duration::from_secs(4);
    let pause = Duration::from_secs(6);
    assert!(session_timeout < config.sync_timeout() && config.sync_timeout() < pause);
    let mut sim = sim(seed, 60);
    ens.register(&mut sim);
    assert!(step_until(&mut sim, Duration::from_secs(10), || ens.converged()));
    let leader = ens.leader().expect("a leader");
    let port = config.server.client_port;
    let followers: Vec<String> = (1..=3)
        .filter(|&i| i != leader)
        .map(|i| format!("{}:{port}", Ensemble::host(i)))
        .collect();
    let times: Times = Rc::new(RefCell::new(Vec::new()));
    let t = times.clone();
    let on_leader = format!("{}:{port}", Ensemble::host(leader));
    sim.client("a", async move {
        let zk = zkit::Client::builder(&on_leader)
            .connector(zkit_sim::net::TurmoilConnector)
            .seed(1)
            .session_timeout(session_timeout)
            .connect()
            .await?;
        zk.create("/a", b"", CreateMode::Ephemeral).await?;
        mark(&t, "a created");
        let mut states = zk.state_changes();
        loop {
            let s = states.recv().await?;
            mark(&t, &format!("a {s:?}"));
            if s == zkit::State::Lost {
                return Ok(());
            }
        }
    });
    let t = times.clone();
    sim.client("b", async move {
        let zk = zkit::Client::builder(&followers.join(","))
            .connector(zkit_sim::net::TurmoilConnector)
            .seed(2)
            .session_timeout(Duration::from_secs(8))
            .connect()
            .await?;
        while at(&t, "a created").is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // A follower may not have applied the create yet.
        zk.sync("/a").await?;
        loop {
            let (stat, watcher) = zk.exists_watch("/a").await?;
            if stat.is_none() {
                mark(&t, "b deleted");
                break;
            }
            mark(&t, "b watching");
            if watcher.await.event_type == zkit::EventType::NodeDeleted {
                mark(&t, "b deleted");
                break;
            }
        }
        park(zk).await;
        Ok(())
    });
    assert!(
        step_until(&mut sim, Duration::from_secs(10), || at(
            &times,
            "b watching"
        )
        .is_some()),
        "{:#?}",
        times.borrow()
    );
    let host = Ensemble::host(leader);
    let others: Vec<String> = (1..=3)
        .filter(|&i| i != leader)
        .map(Ensemble::host)
        .chain(["a".to_owned(), "b".to_owned()])
        .collect();
    for o in &others {
        sim.hold(host.as_str(), o.as_str());
    }
    ens.freeze(&sim, leader, true);
    let frozen = sim.elapsed();
    step_until(&mut sim, pause, || false);
    // The frozen leader still says what it said before it froze.
    let during: Vec<u8> = ens
        .status()
        .into_iter()
        .filter(|&(id, s)| id != leader && s.up && s.established && s.serving)
        .map(|(id, _)| id)
        .collect();
    ens.freeze(&sim, leader, false);
    for o in &others {
        sim.release(host.as_str(), o.as_str());
    }
    let report = |what: &str| -> ! {
        panic!(
            "{what}\nclients: {:#?}\nservers: {:#?}",
            times.borrow(),
            ens.events()
        )
    };
    if !step_until(&mut sim, Duration::from_secs(30), || {
        at(&times, "b deleted").is_some()
    }) {
        report("the session never expired");
    }
    let since = |what: &str| at(&times, what).map(|t| t.saturating_sub(frozen));
    let lost = since("a Lost").unwrap_or_else(|| report("a never gave up"));
    let deleted = since("b deleted").expect("b saw the deletion");
    assert_eq!(
        during.len(),
        1,
        "no new leader while the old one was frozen: {during:?}"
    );
    // The client's own timer: the session timeout after it last heard from the leader.
    if lost > session_timeout + Duration::from_millis(500) {
        report(&format!("a gave up {lost:?} after the freeze"));
    }
    // The new leader's clock for the session starts at its election (after syncLimit).
    if deleted < config.sync_timeout() + session_timeout {
        report(&format!("/a deleted {deleted:?} after the freeze"));
    }
    assert!(
        deleted > lost + Duration::from_secs(1),
        "{:#?}",
        times.borrow()
    );
    eprintln!("frozen at {frozen:?}: {:#?}", times.borrow());
    assert_eq!(ens.check(), Vec::<String>::new());
}
