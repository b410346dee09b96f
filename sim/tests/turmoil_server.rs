//! The same server inside a turmoil simulation: a server host, raw clients on other hosts,
//! simulated time and network; and the same seed giving the same trace twice.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use common::Raw;
use zkit::proto::*;
use zkit_sim::net::TurmoilConnector;
use zkit_sim::server::{Server, ServerConfig};

fn run(seed: u64) -> Vec<String> {
    let trace = Rc::new(RefCell::new(Vec::new()));
    let mut sim = turmoil::Builder::new()
        .epoch(UNIX_EPOCH + Duration::from_secs(1_704_067_200))
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(120))
        .build();
    sim.host("zk", move || async move {
        let listener = turmoil::net::TcpListener::bind("0.0.0.0:2181").await?;
        let config = ServerConfig {
            seed,
            ..ServerConfig::default()
        };
        Server::start(config, listener).wait().await;
        Ok(())
    });
    let t = trace.clone();
    sim.client("owner", async move {
        let stream = TurmoilConnector.connect_raw("zk:2181").await?;
        let mut c = Raw::handshake(stream, 0, vec![0; 16], 4000, 0)
            .await?
            .expect("answered");
        t.borrow_mut().push(format!(
            "owner session {:x} timeout {}",
            c.session.session_id, c.session.timeout
        ));
        let path = c
            .create("/leader-", b"me", CreateMode::EphemeralSequential)
            .await
            .expect("create");
        t.borrow_mut()
            .push(format!("owner created {path} at zxid {}", c.last_zxid));
        // Goes silent: the session must expire and the server close the connection.
        assert!(c.closed().await);
        t.borrow_mut().push(format!(
            "owner closed at {:?}",
            tokio::time::Instant::now().elapsed()
        ));
        Ok(())
    });
    let t = trace.clone();
    sim.client("observer", async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let stream = TurmoilConnector.connect_raw("zk:2181").await?;
        let mut c = Raw::handshake(stream, 0, vec![0; 16], 40_000, 0)
            .await?
            .expect("answered");
        let kids = c.children("/", true).await.expect("children");
        t.borrow_mut().push(format!("observer sees {kids:?}"));
        let leader = kids
            .iter()
            .find(|k| k.starts_with("leader-"))
            .expect("leader exists")
            .clone();
        let (data, stat) = c.get(&format!("/{leader}"), true).await.expect("get");
        assert_eq!(data, b"me");
        t.borrow_mut().push(format!(
            "leader owner {:x} ctime {}",
            stat.ephemeral_owner, stat.ctime
        ));
        let started = tokio::time::Instant::now();
        let a = c.next_event().await;
        let b = c.next_event().await;
        t.borrow_mut().push(format!(
            "after {:?}: {:?} {} / {:?} {}",
            started.elapsed(),
            a.event_type,
            a.path,
            b.event_type,
            b.path
        ));
        assert_eq!(a.event_type, EventType::NodeDeleted);
        assert_eq!(b.event_type, EventType::NodeChildrenChanged);
        assert!(started.elapsed() >= Duration::from_secs(3));
        Ok(())
    });
    sim.run().expect("simulation succeeds");
    let out = trace.borrow().clone();
    out
}

#[test]
fn server_runs_inside_turmoil_and_expires_sessions() {
    let trace = run(7);
    assert!(
        trace
            .iter()
            .any(|l| l.starts_with("owner created /leader-0000000000")),
        "{trace:#?}"
    );
    assert!(
        trace
            .iter()
            .any(|l| l.contains("NodeDeleted /leader-0000000000")),
        "{trace:#?}"
    );
}

#[test]
fn same_seed_same_trace() {
    assert_eq!(run(11), run(11));
}
