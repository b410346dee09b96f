//! The replicated ensemble inside turmoil, with real `zkit` clients: a leader crash while two
//! clients write (no acknowledged write lost, invariants hold, clients end on the same tree),
//! a minority partition (its server drops its clients, who move to the majority with their
//! sessions alive), election convergence after faults heal within a stated bound, a stale read
//! on a lagging follower that `sync` fixes, and a seed sweep of the crash scenario
//! (`ZKIT_SEEDS` seeds, 50 by default). Determinism has its own binary
//! (`ensemble_determinism.rs`).

mod ensemble_common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use ensemble_common::*;
use zkit::CreateMode;
use zkit_sim::ensemble::Ensemble;

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

#[test]
fn seed_sweep_of_the_crash_scenario() {
    let _serial = serial();
    let seeds: u64 = std::env::var("ZKIT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    for seed in 100..100 + seeds {
        crash_scenario(seed);
    }
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

/// The bound on re-election after faults heal: a follower notices a silent leader within
/// the peer timeout, listens for the election wait, then the sync takes a few round trips.
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
        if !step_until(&mut sim, Duration::from_secs(5), || {
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
