//! The real `zkit::Client` inside a turmoil simulation, over [`TurmoilConnector`], against the
//! simulated server on its own host: create, watch, set; a client host partitioned away whose
//! session expires (the client sees Suspended, then Lost; the other client sees its ephemeral
//! node go); and the same seed giving the same event log twice.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use zkit::{Client, CreateMode, Error, EventType, State};
use zkit_sim::net::TurmoilConnector;
use zkit_sim::server::{Server, ServerConfig};

type Log = Rc<RefCell<Vec<String>>>;

fn note(log: &Log, who: &str, what: String) {
    let at = turmoil::elapsed().as_millis();
    log.borrow_mut().push(format!("{at:>6} ms {who}: {what}"));
}

fn has(log: &Log, needle: &str) -> bool {
    log.borrow().iter().any(|l| l.contains(needle))
}

async fn client(seed: u64, timeout: Duration) -> zkit::Result<Client> {
    Client::builder("zk:2181")
        .connector(TurmoilConnector)
        .seed(seed)
        .session_timeout(timeout)
        .connect()
        .await
}

/// Steps `sim` until `done` holds; panics if the simulation ends first.
fn step_until(sim: &mut turmoil::Sim<'_>, log: &Log, done: impl Fn(&Log) -> bool) {
    while !done(log) {
        let finished = sim.step().expect("simulation step");
        assert!(
            !finished || done(log),
            "simulation ended early: {:#?}",
            log.borrow()
        );
    }
}

fn run(seed: u64) -> Vec<String> {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let mut sim = turmoil::Builder::new()
        .epoch(UNIX_EPOCH + Duration::from_secs(1_704_067_200))
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(120))
        .build();
    sim.host("zk", move || async move {
        let listener = turmoil::net::TcpListener::bind("0.0.0.0:2181").await?;
        let config = ServerConfig {
            seed,
            tick_time: Duration::from_millis(500),
            ..ServerConfig::default()
        };
        Server::start(config, listener).wait().await;
        Ok(())
    });

    let l = log.clone();
    sim.client("alice", async move {
        let zk = client(seed ^ 1, Duration::from_secs(4)).await?;
        note(
            &l,
            "alice",
            format!("connected, timeout {:?}", zk.session_timeout()),
        );
        let mut states = zk.state_changes();
        let sl = l.clone();
        // turmoil runs each host on a LocalSet: a local task may share the log.
        tokio::task::spawn_local(async move {
            while let Ok(s) = states.recv().await {
                note(&sl, "alice", format!("state {s:?}"));
            }
        });
        let (p, stat) = zk.create("/data", b"v0", CreateMode::Persistent).await?;
        note(&l, "alice", format!("created {p} version {}", stat.version));
        let (p, stat) = zk.create("/owner", b"alice", CreateMode::Ephemeral).await?;
        note(
            &l,
            "alice",
            format!("created {p} owner set {}", stat.ephemeral_owner != 0),
        );
        zk.create("/ready", b"", CreateMode::Persistent).await?;
        // Wait (by watch, not by sleeping) until bob has set his watches.
        let (exists, watcher) = zk.exists_watch("/watching").await?;
        if exists.is_none() {
            let ev = watcher.await;
            assert_eq!(ev.event_type, EventType::NodeCreated);
        }
        let stat = zk.set_data("/data", b"v1", Some(0)).await?;
        note(&l, "alice", format!("set /data version {}", stat.version));
        note(&l, "alice", "partition me".to_owned());
        let lost = zk.wait_for_state(|s| s == State::Lost).await;
        note(&l, "alice", format!("waited for {lost:?}"));
        let after = zk.get_data("/data").await;
        assert_eq!(after.err(), Some(Error::SessionExpired));
        note(&l, "alice", "requests fail with SessionExpired".to_owned());
        Ok(())
    });

    let l = log.clone();
    sim.client("bob", async move {
        let zk = client(seed ^ 2, Duration::from_secs(10)).await?;
        note(&l, "bob", "connected".to_owned());
        let (ready, watcher) = zk.exists_watch("/ready").await?;
        if ready.is_none() {
            let ev = watcher.await;
            assert_eq!(ev.event_type, EventType::NodeCreated);
        }
        let (data, stat, data_watch) = zk.get_data_watch("/data").await?;
        note(
            &l,
            "bob",
            format!(
                "read {:?} version {}",
                String::from_utf8_lossy(&data),
                stat.version
            ),
        );
        let (owner, owner_watch) = zk.exists_watch("/owner").await?;
        let owner = owner.expect("alice's ephemeral node exists");
        // The owner is alice's session, which is not bob's.
        assert_ne!(owner.ephemeral_owner, zk.session_id());
        zk.create("/watching", b"", CreateMode::Ephemeral).await?;
        let ev = data_watch.await;
        note(&l, "bob", format!("event {:?} {}", ev.event_type, ev.path));
        assert_eq!(ev.event_type, EventType::NodeDataChanged);
        let (data, stat) = zk.get_data("/data").await?;
        note(
            &l,
            "bob",
            format!(
                "read {:?} version {}",
                String::from_utf8_lossy(&data),
                stat.version
            ),
        );
        let ev = owner_watch.await;
        note(&l, "bob", format!("event {:?} {}", ev.event_type, ev.path));
        assert_eq!(ev.event_type, EventType::NodeDeleted);
        assert!(zk.exists("/owner").await?.is_none());
        zk.close().await;
        note(&l, "bob", "closed".to_owned());
        Ok(())
    });

    step_until(&mut sim, &log, |l| has(l, "alice: partition me"));
    sim.partition("alice", "zk");
    note_outside(&log, &sim, "partition alice <-> zk");
    step_until(&mut sim, &log, |l| has(l, "alice: state Lost"));
    sim.repair("alice", "zk");
    note_outside(&log, &sim, "repair alice <-> zk");
    sim.run().expect("simulation succeeds");
    let out = log.borrow().clone();
    out
}

fn note_outside(log: &Log, sim: &turmoil::Sim<'_>, what: &str) {
    let at = sim.elapsed().as_millis();
    log.borrow_mut().push(format!("{at:>6} ms sim: {what}"));
}

fn position(log: &[String], needle: &str) -> usize {
    log.iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} in {log:#?}"))
}

#[test]
fn real_client_create_watch_set_and_expiry_under_partition() {
    let log = run(3);
    let in_order = |order: &[&str]| {
        let mut last = 0;
        for needle in order {
            let at = position(&log, needle);
            assert!(at >= last, "{needle:?} out of order in {log:#?}");
            last = at;
        }
    };
    in_order(&[
        "alice: created /data version 0",
        "alice: created /owner owner set true",
        "alice: set /data version 1",
        "sim: partition alice <-> zk",
        "alice: state Suspended",
        "alice: state Lost",
    ]);
    in_order(&[
        "sim: partition alice <-> zk",
        "alice: requests fail with SessionExpired",
    ]);
    in_order(&[
        "alice: created /owner",
        "bob: read \"v0\" version 0",
        "bob: event NodeDataChanged /data",
        "bob: read \"v1\" version 1",
        "sim: partition alice <-> zk",
        "bob: event NodeDeleted /owner",
    ]);
    // The server expired alice's session: bob saw her ephemeral node go, after the partition.
    let deleted = position(&log, "bob: event NodeDeleted /owner");
    assert!(deleted > position(&log, "sim: partition"), "{log:#?}");
    // Suspended comes before Lost and nothing reconnects alice in between.
    let suspended = position(&log, "alice: state Suspended");
    let lost = position(&log, "alice: state Lost");
    assert!(
        !log[suspended..lost]
            .iter()
            .any(|l| l.contains("alice: state Connected")),
        "{log:#?}"
    );
}

#[test]
fn same_seed_same_event_log() {
    let a = run(17);
    let b = run(17);
    assert_eq!(a, b);
}

/// The session timeout of the client cut off in [`one_way_partition_run`].
const CUT_TIMEOUT: Duration = Duration::from_secs(4);

/// A client (`cut`) with a persistent watch on `/ticker` and an ephemeral node, while a second
/// client (`writer`) changes `/ticker` every 100 ms and watches the ephemeral node. Once `cut`
/// is ready, its messages to the server are dropped (a one-way partition): the server keeps
/// sending it notifications but hears nothing from it, and expires its session.
fn one_way_partition_run(seed: u64) -> Vec<String> {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let mut sim = turmoil::Builder::new()
        .epoch(UNIX_EPOCH + Duration::from_secs(1_704_067_200))
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(60))
        .build();
    sim.host("zk", move || async move {
        let listener = turmoil::net::TcpListener::bind("0.0.0.0:2181").await?;
        let config = ServerConfig {
            seed,
            tick_time: Duration::from_millis(500),
            ..ServerConfig::default()
        };
        Server::start(config, listener).wait().await;
        Ok(())
    });

    // Set once the partition is in place (turmoil runs every host on this thread).
    let is_cut = Rc::new(std::cell::Cell::new(false));
    let l = log.clone();
    let c = is_cut.clone();
    sim.client("cut", async move {
        let zk = client(seed ^ 1, CUT_TIMEOUT).await?;
        assert_eq!(zk.session_timeout(), CUT_TIMEOUT);
        let mut states = zk.state_changes();
        let sl = l.clone();
        tokio::task::spawn_local(async move {
            while let Ok(s) = states.recv().await {
                note(&sl, "cut", format!("state {s:?}"));
            }
        });
        let mut ticks = zk
            .add_watch("/ticker", zkit::AddWatchMode::Persistent)
            .await?;
        zk.create("/cut", b"", CreateMode::Ephemeral).await?;
        note(&l, "cut", "ready".to_owned());
        while let Some(ev) = ticks.recv().await {
            if ev.event_type == EventType::NodeDataChanged
                && c.get()
                && !has(&l, "cut: heard a tick after the cut")
            {
                note(&l, "cut", "heard a tick after the cut".to_owned());
            }
        }
        zk.wait_for_state(|s| s == State::Lost).await;
        Ok(())
    });

    let l = log.clone();
    sim.client("writer", async move {
        let zk = client(seed ^ 2, Duration::from_secs(10)).await?;
        zk.create("/ticker", b"0", CreateMode::Persistent).await?;
        let (cut, watcher) = zk.exists_watch("/cut").await?;
        if cut.is_none() {
            assert_eq!(watcher.await.event_type, EventType::NodeCreated);
        }
        let (cut, gone) = zk.exists_watch("/cut").await?;
        assert!(cut.is_some());
        let gl = l.clone();
        tokio::task::spawn_local(async move {
            let ev = gone.await;
            assert_eq!(ev.event_type, EventType::NodeDeleted);
            note(&gl, "writer", "saw /cut deleted".to_owned());
        });
        let mut n = 0u64;
        loop {
            n += 1;
            zk.set_data("/ticker", n.to_string().as_bytes(), None)
                .await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    step_until(&mut sim, &log, |l| has(l, "cut: ready"));
    sim.partition_oneway("cut", "zk");
    is_cut.set(true);
    note_outside(&log, &sim, "partition cut -> zk");
    step_until(&mut sim, &log, |l| {
        has(l, "cut: state Lost") && has(l, "writer: saw /cut deleted")
    });
    let out = log.borrow().clone();
    out
}

/// The time (ms) of the first log line containing `needle`.
fn time_of(log: &[String], needle: &str) -> u128 {
    let line = &log[position(log, needle)];
    line.split_whitespace()
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no time in {line:?}"))
}

/// Notifications prove nothing about the server hearing the client: with its messages to the
/// server dropped, a client that keeps receiving watch notifications must still suspend within
/// its read timeout (2/3 of the session timeout) of the cut, and declare its session lost no
/// later than the server expires it, here observed as the moment another client sees the
/// session's ephemeral node deleted (the bound: 0 ms; the client's clock runs from the send
/// time of the newest request or ping the server answered, which the server received no
/// earlier).
#[test]
fn notifications_do_not_keep_a_one_way_partitioned_client_alive() {
    for seed in [5, 6, 7] {
        let log = one_way_partition_run(seed);
        let cut = time_of(&log, "sim: partition cut -> zk");
        // The server kept talking to the client after the cut: this is the case under test.
        assert!(
            time_of(&log, "cut: heard a tick after the cut") > cut,
            "{log:#?}"
        );
        let suspended = time_of(&log, "cut: state Suspended");
        let lost = time_of(&log, "cut: state Lost");
        let deleted = time_of(&log, "writer: saw /cut deleted");
        let read_timeout = (CUT_TIMEOUT * 2 / 3).as_millis();
        assert!(
            suspended <= cut + read_timeout,
            "seed {seed}: suspended at {suspended} ms, cut at {cut} ms, read timeout {read_timeout} ms: {log:#?}"
        );
        assert!(
            lost <= deleted,
            "seed {seed}: lost at {lost} ms, after the server expired the session ({deleted} ms): {log:#?}"
        );
    }
}

/// A renewing client (`cut`) whose server's messages to it are dropped (a one-way partition
/// the other way): its pings still reach the server, which keeps the session, while the
/// client hears nothing and its own timer declares the session lost. The partition is
/// repaired at that moment; the client renews, and reports whether its old session's
/// ephemeral node is still there once it is connected in the new session.
fn stale_session_run(seed: u64) -> Vec<String> {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let mut sim = turmoil::Builder::new()
        .epoch(UNIX_EPOCH + Duration::from_secs(1_704_067_200))
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(60))
        .build();
    sim.host("zk", move || async move {
        let listener = turmoil::net::TcpListener::bind("0.0.0.0:2181").await?;
        let config = ServerConfig {
            seed,
            tick_time: Duration::from_millis(500),
            ..ServerConfig::default()
        };
        Server::start(config, listener).wait().await;
        Ok(())
    });

    let l = log.clone();
    sim.client("cut", async move {
        let zk = Client::builder("zk:2181")
            .connector(TurmoilConnector)
            .seed(seed ^ 1)
            .session_timeout(CUT_TIMEOUT)
            .max_reconnect_backoff(Duration::from_millis(50))
            .renew_expired_session(true)
            .connect()
            .await?;
        let mut states = zk.state_changes();
        let sl = l.clone();
        tokio::task::spawn_local(async move {
            while let Ok(s) = states.recv().await {
                note(&sl, "cut", format!("state {s:?}"));
            }
        });
        let old = zk.session_id();
        zk.create("/cut", b"", CreateMode::Ephemeral).await?;
        note(&l, "cut", "ready".to_owned());
        zk.wait_for_state(|s| s == State::Lost).await;
        zk.wait_connected().await?;
        assert_ne!(zk.session_id(), old);
        let stat = zk.exists("/cut").await?;
        note(
            &l,
            "cut",
            format!("renewed; old ephemeral present {}", stat.is_some()),
        );
        Ok(())
    });

    let l = log.clone();
    sim.client("watcher", async move {
        let zk = client(seed ^ 2, Duration::from_secs(10)).await?;
        let (cut, watcher) = zk.exists_watch("/cut").await?;
        if cut.is_none() {
            assert_eq!(watcher.await.event_type, EventType::NodeCreated);
        }
        let (cut, gone) = zk.exists_watch("/cut").await?;
        assert!(cut.is_some());
        assert_eq!(gone.await.event_type, EventType::NodeDeleted);
        note(&l, "watcher", "saw /cut deleted".to_owned());
        Ok(())
    });

    step_until(&mut sim, &log, |l| has(l, "cut: ready"));
    sim.partition_oneway("zk", "cut");
    note_outside(&log, &sim, "partition zk -> cut");
    step_until(&mut sim, &log, |l| has(l, "cut: state Lost"));
    sim.repair_oneway("zk", "cut");
    note_outside(&log, &sim, "repair zk -> cut");
    step_until(&mut sim, &log, |l| {
        has(l, "cut: renewed") && has(l, "watcher: saw /cut deleted")
    });
    let out = log.borrow().clone();
    out
}

/// After its own timer declared the session lost, a renewing client that reaches a server
/// closes the old session before it opens the new one: the old session's ephemeral node is
/// gone by the time the client is connected again, although the server had not expired it
/// (it heard the client's pings all along: the client's Lost came first).
#[test]
fn a_renewing_client_closes_the_session_its_timer_gave_up() {
    for seed in [5, 6, 7] {
        let log = stale_session_run(seed);
        assert!(
            position(&log, "cut: state Lost") < position(&log, "watcher: saw /cut deleted"),
            "seed {seed}: {log:#?}"
        );
        assert!(
            has_line(&log, "cut: renewed; old ephemeral present false"),
            "seed {seed}: {log:#?}"
        );
    }
}

fn has_line(log: &[String], needle: &str) -> bool {
    log.iter().any(|l| l.contains(needle))
}

/// A session's id and password, once known.
type Creds = Rc<RefCell<Option<(i64, Vec<u8>)>>>;

/// A second client takes the session of a renewing client (`w`) over and closes it (as the
/// harness's expire fault does). `w` starts following `/cfg` with a `DataWatch` and a
/// `ChildrenWatch` while it is suspended, so their first reads wait in its queue when it
/// learns the session expired (and the renewal fails them with `SessionExpired`). Once `w` is
/// connected in its new session, `/cfg` changes: both watches must report it.
fn data_watch_renewal_run(seed: u64) -> Vec<String> {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let mut sim = turmoil::Builder::new()
        .epoch(UNIX_EPOCH + Duration::from_secs(1_704_067_200))
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(60))
        .build();
    sim.host("zk", move || async move {
        let listener = turmoil::net::TcpListener::bind("0.0.0.0:2181").await?;
        let config = ServerConfig {
            seed,
            tick_time: Duration::from_millis(500),
            ..ServerConfig::default()
        };
        Server::start(config, listener).wait().await;
        Ok(())
    });
    let creds: Creds = Rc::default();
    let l = log.clone();
    let c = creds.clone();
    sim.client("w", async move {
        let zk = Client::builder("zk:2181")
            .connector(TurmoilConnector)
            .seed(seed ^ 1)
            .session_timeout(CUT_TIMEOUT)
            .max_reconnect_backoff(Duration::from_millis(50))
            .renew_expired_session(true)
            .connect()
            .await?;
        zk.create("/cfg", b"a", CreateMode::Persistent).await?;
        let mut states = zk.state_changes();
        let sl = l.clone();
        tokio::task::spawn_local(async move {
            while let Ok(s) = states.recv().await {
                note(&sl, "w", format!("state {s:?}"));
            }
        });
        *c.borrow_mut() = Some(zk.session_credentials());
        zk.wait_for_state(|s| s == State::Suspended).await;
        let mut values = zkit::recipe::DataWatch::start(&zk, "/cfg")?;
        let mut children = zkit::recipe::ChildrenWatch::start(&zk, "/cfg")?;
        let cl = l.clone();
        tokio::task::spawn_local(async move {
            while let Some(c) = children.next().await {
                note(&cl, "w", format!("children {c:?}"));
            }
            note(&cl, "w", "children watch ended".to_owned());
        });
        while let Some(v) = values.next().await {
            let v = v.map(|v| String::from_utf8_lossy(&v.data).into_owned());
            note(&l, "w", format!("value {v:?}"));
        }
        note(&l, "w", "data watch ended".to_owned());
        Ok(())
    });
    let l = log.clone();
    sim.client("x", async move {
        // Wait for w's session by polling the shared slot at simulated intervals.
        let (id, password) = loop {
            if let Some(c) = creds.borrow().clone() {
                break c;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let x = Client::builder("zk:2181")
            .connector(TurmoilConnector)
            .seed(seed ^ 2)
            .resume_session(id, &password)
            .session_timeout(CUT_TIMEOUT)
            .connect()
            .await?;
        x.close().await;
        note(&l, "x", "closed w's session".to_owned());
        Ok(())
    });
    step_until(&mut sim, &log, |l| has(l, "x: closed w's session"));
    step_until(&mut sim, &log, |l| {
        has(l, "w: state Connected") || has(l, "w: data watch ended")
    });
    let l = log.clone();
    sim.client("y", async move {
        let zk = client(seed ^ 3, Duration::from_secs(10)).await?;
        zk.set_data("/cfg", b"b", None).await?;
        zk.create("/cfg/k", b"", CreateMode::Persistent).await?;
        note(&l, "y", "set b, created /cfg/k".to_owned());
        Ok(())
    });
    step_until(&mut sim, &log, |l| {
        (has(l, "w: value Some(\"b\")") || has(l, "w: data watch ended"))
            && (has(l, "w: children Some([\"k\"])") || has(l, "w: children watch ended"))
    });
    let out = log.borrow().clone();
    out
}

#[test]
fn a_data_watch_carries_on_across_a_session_renewal() {
    for seed in [5, 6, 7] {
        let log = data_watch_renewal_run(seed);
        assert!(has_line(&log, "w: state Lost"), "seed {seed}: {log:#?}");
        assert!(
            has_line(&log, "w: value Some(\"b\")"),
            "seed {seed}: {log:#?}"
        );
        assert!(
            has_line(&log, "w: children Some([\"k\"])"),
            "seed {seed}: {log:#?}"
        );
    }
}
