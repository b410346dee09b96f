//! The replicated ensemble inside turmoil, with real `zkit` clients: a leader crash while two
//! clients write (no acknowledged write lost, invariants hold, clients end on the same tree),
//! a minority partition (its server drops its clients, who move to the majority with their
//! sessions alive), election convergence after faults heal within a stated bound, a stale read
//! on a lagging follower that `sync` fixes, determinism, and a seed sweep of the crash
//! scenario (`ZKIT_SEEDS` seeds, 50 by default).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use zkit::{Client, CreateMode, Error};
use zkit_sim::ensemble::{Ensemble, EnsembleConfig};
use zkit_sim::net::TurmoilConnector;

type Log = Rc<RefCell<Vec<String>>>;

fn note(log: &Log, who: &str, what: String) {
    let at = turmoil::sim_elapsed().unwrap_or_default().as_millis();
    log.borrow_mut().push(format!("{at:>7} ms {who}: {what}"));
}

fn count(log: &Log, needle: &str) -> usize {
    log.borrow().iter().filter(|l| l.contains(needle)).count()
}

fn sim<'a>(seed: u64, secs: u64) -> turmoil::Sim<'a> {
    turmoil::Builder::new()
        .epoch(UNIX_EPOCH + Duration::from_secs(1_704_067_200))
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(secs))
        .build()
}

fn ensemble(seed: u64) -> Ensemble {
    Ensemble::new(EnsembleConfig {
        seed,
        ..EnsembleConfig::default()
    })
}

async fn client(hosts: &str, seed: u64) -> zkit::Result<Client> {
    Client::builder(hosts)
        .connector(TurmoilConnector)
        .seed(seed)
        .session_timeout(Duration::from_secs(8))
        .connect()
        .await
}

/// Steps until `done`; false if the simulation ended or `limit` of simulated time passed.
fn step_until(sim: &mut turmoil::Sim<'_>, limit: Duration, done: impl Fn() -> bool) -> bool {
    let until = sim.elapsed() + limit;
    while !done() {
        if sim.elapsed() > until {
            return false;
        }
        // `step` says "finished" when every client host has (or none exists yet): the
        // servers run on regardless.
        if let Err(e) = sim.step() {
            eprintln!("simulation failed: {e}");
            return false;
        }
    }
    true
}

fn fail(ens: &Ensemble, log: &Log, what: &str) -> ! {
    panic!(
        "{what}\nclients: {:#?}\nservers: {:#?}\nstatus: {:#?}",
        log.borrow(),
        ens.events(),
        ens.status()
    );
}

/// Creates `/w/<who>-<k>` until it is acknowledged; a lost reply is retried and a
/// `NodeExists` then means the first attempt applied.
async fn write(zk: &Client, who: &str, k: usize) -> zkit::Result<()> {
    let path = format!("/w/{who}-{k}");
    loop {
        match zk.create(&path, b"x", CreateMode::Persistent).await {
            Ok(_) | Err(Error::NodeExists { .. }) => return Ok(()),
            Err(Error::ConnectionLoss) | Err(Error::Timeout(_)) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Outcome of the crash scenario.
struct CrashRun {
    clients: Vec<String>,
    servers: Vec<String>,
}

const WRITES: usize = 20;

/// 3 servers, 2 clients writing; the leader crashes after a seed-chosen number of
/// acknowledged writes and comes back after a seed-chosen downtime.
fn crash_scenario(seed: u64) -> CrashRun {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let crash_after = rng.random_range(2..WRITES);
    let downtime = Duration::from_millis(rng.random_range(200..3000));
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let ens = ensemble(seed);
    let mut sim = sim(seed, 120);
    ens.register(&mut sim);
    if !step_until(&mut sim, Duration::from_secs(10), || ens.leader().is_some()) {
        fail(&ens, &log, "no leader elected");
    }
    let hosts = ens.connect_string();
    for (i, who) in ["c1", "c2"].into_iter().enumerate() {
        let l = log.clone();
        let hosts = hosts.clone();
        sim.client(who, async move {
            let zk = client(&hosts, seed.wrapping_mul(31).wrapping_add(i as u64)).await?;
            match zk.create("/w", b"", CreateMode::Persistent).await {
                Ok(_) | Err(Error::NodeExists { .. }) | Err(Error::ConnectionLoss) => {}
                Err(e) => return Err(e.into()),
            }
            for k in 0..WRITES {
                write(&zk, who, k).await?;
                note(&l, who, format!("acked /w/{who}-{k}"));
            }
            note(&l, who, "done writing".to_owned());
            // Wait for the other client, then read the whole tree after a sync.
            while count(&l, "done writing") < 2 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            zk.sync("/w").await?;
            let mut children = zk.get_children("/w").await?;
            children.sort();
            note(&l, who, format!("final {}", children.join(",")));
            zk.close().await;
            Ok(())
        });
    }
    let acked = || count(&log, "acked") >= crash_after;
    if !step_until(&mut sim, Duration::from_secs(30), acked) {
        fail(&ens, &log, "writes did not start");
    }
    let Some(leader) = ens.leader() else {
        fail(&ens, &log, "no leader to crash");
    };
    ens.crash(&mut sim, leader);
    let until = sim.elapsed() + downtime;
    step_until(&mut sim, downtime + Duration::from_millis(10), || false);
    assert!(sim.elapsed() >= until);
    ens.bounce(&mut sim, leader);
    if !step_until(&mut sim, Duration::from_secs(60), || count(&log, "final") == 2) {
        fail(&ens, &log, "clients did not finish");
    }
    if !step_until(&mut sim, Duration::from_secs(10), || ens.converged()) {
        fail(&ens, &log, "ensemble did not converge after the restart");
    }
    let violations = ens.check();
    if !violations.is_empty() {
        fail(&ens, &log, &format!("invariants violated: {violations:#?}"));
    }
    // No acknowledged write lost, and both clients end on the same tree.
    let finals: Vec<String> = log
        .borrow()
        .iter()
        .filter_map(|l| l.split_once("final ").map(|(_, f)| f.to_owned()))
        .collect();
    if finals.len() != 2 || finals[0] != finals[1] {
        fail(&ens, &log, "clients ended on different trees");
    }
    let tree: BTreeSet<&str> = finals[0].split(',').collect();
    for who in ["c1", "c2"] {
        for k in 0..WRITES {
            let name = format!("{who}-{k}");
            if !tree.contains(name.as_str()) {
                fail(&ens, &log, &format!("acknowledged write {name} lost"));
            }
        }
    }
    // Every server's committed log holds every write.
    for id in 1..=3 {
        let store = ens.store(id).expect("store");
        assert_eq!(
            store.committed_log().len(),
            ens.store(1).expect("store").committed_log().len()
        );
    }
    let clients = log.borrow().clone();
    CrashRun {
        clients,
        servers: ens.events(),
    }
}

#[test]
fn leader_crash_while_clients_write_loses_nothing() {
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
fn same_seed_same_event_log() {
    let a = crash_scenario(7);
    let b = crash_scenario(7);
    assert_eq!(a.clients, b.clients);
    assert_eq!(a.servers, b.servers);
}

#[test]
fn seed_sweep_of_the_crash_scenario() {
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
            match tokio::time::timeout(Duration::from_millis(50), states.recv()).await {
                Ok(Ok(s)) => note(&l, "c", format!("state {s:?}")),
                Ok(Err(_)) => break,
                Err(_) => {}
            }
        }
        let stat = zk.exists("/e").await?.ok_or("ephemeral node gone")?;
        assert_eq!(stat.ephemeral_owner, session);
        assert_eq!(zk.session_id(), session);
        zk.create("/after", b"", CreateMode::Persistent).await?;
        note(&l, "c", "session alive on the majority".to_owned());
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
    note_sim(&log, &sim, format!("partition zk{minority} from the others"));
    // The minority server stops serving and drops the client; the client reconnects to the
    // majority, which has (or elects) a leader.
    let moved = || {
        let st = ens.status();
        let m = st[&minority];
        count(&log, "state Connected") >= 1
            && !m.serving
            && m.clients == 0
            && st.iter().any(|(id, s)| *id != minority && s.serving && s.clients == 1)
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

fn note_sim(log: &Log, sim: &turmoil::Sim<'_>, what: String) {
    let at = sim.elapsed().as_millis();
    log.borrow_mut().push(format!("{at:>7} ms sim: {what}"));
}

/// The bound on re-election after faults heal: a follower notices a silent leader within
/// the peer timeout, listens for the election wait, then the sync takes a few round trips.
const ELECTION_BOUND: Duration = Duration::from_secs(3);

#[test]
fn election_converges_after_faults_heal_within_the_bound() {
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
        note(&l, "reader", format!("read {}", String::from_utf8_lossy(&v)));
        zk.sync("/v").await?;
        let (v, _) = zk.get_data("/v").await?;
        note(&l, "reader", format!("after sync read {}", String::from_utf8_lossy(&v)));
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
    assert_eq!(count(&log, "reader: read 0"), 1, "stale read: {:#?}", log.borrow());
    assert_eq!(
        count(&log, "reader: after sync read 1"),
        1,
        "{:#?}",
        log.borrow()
    );
    assert_eq!(ens.check(), Vec::<String>::new());
}
