//! Real mode's ensemble: a real ZooKeeper 3.8 behind the fault proxies.
//!
//! These tests need Java and ZooKeeper (`scripts/zk install`); they never skip: when
//! ZooKeeper cannot start they fail with the reason. They run one at a time (up to five
//! JVMs each, with a short tick: several ensembles at once on a small machine would starve
//! each other's heartbeats).

use std::time::Duration;

use zkit::{Client, State};
use zkit_sim::real::ensemble::{RealConfig, RealEnsemble};

fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A short tick, so that losing a peer is noticed within about a second.
fn fast(size: usize) -> RealConfig {
    let mut config = RealConfig::new(size);
    config.tick = Duration::from_millis(200);
    config.sync_limit = 5;
    config.init_limit = 10;
    config
}

/// Held by each test for its whole run: one real ensemble at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn start(config: RealConfig) -> RealEnsemble {
    init_logging();
    RealEnsemble::start(config)
        .await
        .unwrap_or_else(|e| panic!("a real ZooKeeper must start for this test: {e}"))
}

fn describe(modes: &[Option<String>]) -> String {
    modes
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{i}: {}", m.as_deref().unwrap_or("not serving")))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_leader_is_replaced_and_rejoins_as_follower() {
    let _one = ONE_AT_A_TIME.lock().await;
    let zk = start(fast(3)).await;
    let old = zk.leader().await.expect("one leader after start");
    let others: Vec<usize> = (0..3).filter(|&i| i != old).collect();

    // Cut the leader off from both followers (quorum and election links, both ways).
    zk.split(&[old]);
    let modes = zk
        .wait_for_modes(Duration::from_secs(60), |m| {
            let new_leader = others
                .iter()
                .filter(|&&i| m[i].as_deref() == Some("leader"))
                .count();
            let followers = others
                .iter()
                .filter(|&&i| m[i].as_deref() == Some("follower"))
                .count();
            new_leader == 1 && followers == 1 && m[old].as_deref() != Some("leader")
        })
        .await
        .unwrap_or_else(|m| {
            panic!(
                "no new leader among {others:?} with {old} cut off: {} (logs in {})",
                describe(&m),
                zk.dir().display()
            )
        });
    let new = others
        .iter()
        .copied()
        .find(|&i| modes[i].as_deref() == Some("leader"))
        .expect("a new leader");
    // The cut-off member reached nobody: its election traffic went through the proxies too.
    let dropped: u64 = others
        .iter()
        .map(|&o| {
            let link = zk.link(old, o);
            link.quorum.stats().dropped[0] + link.election.stats().dropped[0]
        })
        .sum();
    assert!(dropped > 0, "the old leader's traffic was not dropped");

    zk.heal_all();
    zk.wait_for_modes(Duration::from_secs(60), |m| {
        m[old].as_deref() == Some("follower") && m[new].as_deref() == Some("leader")
    })
    .await
    .unwrap_or_else(|m| {
        panic!(
            "member {old} did not rejoin as follower of {new}: {} (logs in {})",
            describe(&m),
            zk.dir().display()
        )
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_member_restarts_on_its_data_and_rejoins() {
    let _one = ONE_AT_A_TIME.lock().await;
    let zk = start(fast(3)).await;
    let leader = zk.leader().await.expect("one leader after start");
    let client = Client::builder(&zk.connect_string())
        .session_timeout(Duration::from_secs(10))
        .seed(3)
        .connect()
        .await
        .expect("connect through the client proxies");
    client
        .create("/survives", b"v1", zkit::CreateMode::Persistent)
        .await
        .expect("create");
    client.close().await;

    zk.crash(leader).await.expect("crash the leader");
    assert_eq!(zk.mode(leader).await, None, "a crashed member answers srvr");
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    zk.wait_for_modes(Duration::from_secs(60), |m| {
        others
            .iter()
            .filter(|&&i| m[i].as_deref() == Some("leader"))
            .count()
            == 1
    })
    .await
    .unwrap_or_else(|m| panic!("no leader after the crash: {}", describe(&m)));

    zk.restart(leader, true).await.expect("restart");
    let modes = zk
        .wait_for_modes(Duration::from_secs(60), |m| {
            m[leader].as_deref() == Some("follower")
        })
        .await
        .unwrap_or_else(|m| panic!("restarted member is no follower: {}", describe(&m)));
    assert_eq!(
        modes
            .iter()
            .filter(|m| m.as_deref() == Some("leader"))
            .count(),
        1
    );
    // Its data survived (it was written before the crash; read from the restarted member).
    let direct = Client::builder(&zk.client_proxy(leader).addr().to_string())
        .session_timeout(Duration::from_secs(10))
        .seed(4)
        .connect()
        .await
        .expect("connect to the restarted member");
    direct.sync("/survives").await.expect("sync");
    let (data, _) = direct.get_data("/survives").await.expect("read");
    assert_eq!(data, b"v1");
    direct.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_is_suspended_by_its_proxy_partition_and_reconnects_on_heal() {
    let _one = ONE_AT_A_TIME.lock().await;
    let zk = start(fast(1)).await;
    let proxy = zk.client_proxy(0);
    let client = Client::builder(&zk.connect_string())
        .session_timeout(Duration::from_secs(12))
        .seed(5)
        .connect()
        .await
        .expect("connect through the client proxy");
    assert_eq!(client.state(), State::Connected);
    let session = client.session_id();
    let mut changes = client.state_changes();

    proxy.partition();
    let state = tokio::time::timeout(
        Duration::from_secs(30),
        client.wait_for_state(|s| s != State::Connected),
    )
    .await
    .expect("the client noticed the partition within 30 s");
    // zkit calls "disconnected, the session may live" Suspended.
    assert_eq!(state, State::Suspended);
    assert!(
        proxy.stats().dropped.iter().sum::<u64>() > 0,
        "nothing dropped"
    );

    proxy.heal();
    let state = tokio::time::timeout(
        Duration::from_secs(30),
        client.wait_for_state(|s| s != State::Suspended),
    )
    .await
    .expect("the client reconnected within 30 s of the heal");
    assert_eq!(state, State::Connected);
    assert_eq!(client.session_id(), session, "the same session resumed");
    // The transitions, in order: suspended once, then connected (the stream may start with
    // the first connect's own transition).
    let mut seen = Vec::new();
    while seen.last() != Some(&State::Connected) || !seen.contains(&State::Suspended) {
        let next = tokio::time::timeout(Duration::from_secs(10), changes.recv())
            .await
            .unwrap_or_else(|_| panic!("transitions stopped at {seen:?}"))
            .expect("transition stream");
        seen.push(next);
    }
    if seen.first() == Some(&State::Connected) {
        seen.remove(0);
    }
    assert_eq!(seen, vec![State::Suspended, State::Connected]);
    client.exists("/").await.expect("a request after the heal");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_members_keep_their_leader_when_a_minority_is_split_off() {
    let _one = ONE_AT_A_TIME.lock().await;
    let zk = start(fast(5)).await;
    let leader = zk.leader().await.expect("one leader after start");
    let minority: Vec<usize> = (0..5).filter(|&i| i != leader).take(2).collect();

    zk.split(&minority);
    zk.wait_for_modes(Duration::from_secs(60), |m| {
        minority
            .iter()
            .all(|&i| m[i].as_deref() != Some("follower"))
    })
    .await
    .unwrap_or_else(|m| panic!("minority {minority:?} still follows: {}", describe(&m)));
    // The majority side never lost its quorum: same leader, the other two follow it.
    let modes = zk.modes().await;
    assert_eq!(
        modes[leader].as_deref(),
        Some("leader"),
        "{}",
        describe(&modes)
    );
    for i in (0..5).filter(|i| *i != leader && !minority.contains(i)) {
        assert_eq!(
            modes[i].as_deref(),
            Some("follower"),
            "{}",
            describe(&modes)
        );
    }

    zk.heal_all();
    zk.wait_for_modes(Duration::from_secs(60), |m| {
        m[leader].as_deref() == Some("leader")
            && (0..5)
                .filter(|&i| i != leader)
                .all(|i| m[i].as_deref() == Some("follower"))
    })
    .await
    .unwrap_or_else(|m| panic!("the minority did not rejoin: {}", describe(&m)));
}
