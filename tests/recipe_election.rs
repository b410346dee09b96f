//! The leader latch against a real ZooKeeper 3.8: one leader among five, handover on close
//! (also when the close is cancelled while offline), participants, and the 3-node ensemble
//! losing the leader's server.

mod common;

use std::time::Duration;

use common::{connect, standalone, within};
use zkit::recipe::{LeaderEvent, LeaderLatch};
use zkit::{Client, State};
use zkit_tests::proxy::{Mode, Proxy};
use zkit_tests::ZkServer;

/// Waits (on the latches' own events) until one of them leads; returns its index.
async fn any_leader(latches: &[LeaderLatch]) -> usize {
    within("a leader", async {
        loop {
            if let Some(i) = latches.iter().position(|l| l.has_leadership()) {
                return i;
            }
            let mut changes = tokio::task::JoinSet::new();
            for l in latches {
                let mut rx = l.events();
                rx.mark_unchanged();
                changes.spawn(async move {
                    let _ = rx.changed().await;
                });
            }
            // Re-check after the receivers are armed, so no change slips between.
            if latches.iter().any(|l| l.has_leadership()) {
                continue;
            }
            let _ = changes.join_next().await;
        }
    })
    .await
}

#[tokio::test]
async fn one_leader_among_five_and_handover_in_order() {
    let hosts = standalone().connect_string();
    let mut latches = Vec::new();
    let mut ids = Vec::new();
    for i in 0..5u64 {
        let client = Client::builder(hosts)
            .seed(200 + i)
            .connect()
            .await
            .unwrap();
        let id = format!("c{i}");
        latches.push(LeaderLatch::start(&client, "/recipes/election-five", &id).unwrap());
        ids.push(id);
    }
    let mut last_epoch = 0;
    for round in 0..5 {
        // Exactly one leads; it is the longest-standing candidate.
        let leader = any_leader(&latches).await;
        let epoch = latches[leader].epoch().expect("leader has an epoch");
        assert!(epoch > last_epoch, "epochs increase");
        last_epoch = epoch;
        assert_eq!(
            latches.iter().filter(|l| l.has_leadership()).count(),
            1,
            "round {round}"
        );
        let observer = connect(hosts).await;
        let participants = LeaderLatch::participants(&observer, "/recipes/election-five")
            .await
            .unwrap();
        assert_eq!(participants.len(), 5 - round);
        assert_eq!(participants[0].id, ids[leader]);
        assert!(participants[1..].iter().all(|p| !p.is_leader));
        ids.remove(leader);
        let l = latches.remove(leader);
        l.close().await.unwrap();
    }
}

#[tokio::test]
async fn the_leader_steps_down_when_its_server_dies_and_someone_leads_again() {
    let zk =
        ZkServer::ensemble(3).expect("a real 3-node ZooKeeper ensemble must start for this test");
    let addrs = zk.addresses();
    // Each candidate talks to one server, so killing one server affects one candidate.
    let mut latches = Vec::new();
    let mut clients = Vec::new();
    for (i, a) in addrs.iter().enumerate() {
        let client = Client::builder(&a.to_string())
            .session_timeout(Duration::from_secs(4))
            .seed(300 + i as u64)
            .connect()
            .await
            .unwrap();
        latches
            .push(LeaderLatch::start(&client, "/recipes/election-kill", &format!("s{i}")).unwrap());
        clients.push(client);
    }
    let leader = any_leader(&latches).await;
    let mut events = latches[leader].events();
    zk.kill(leader).expect("kill the leader's server");
    within(
        "leader steps down",
        events.wait_for(|e| *e == LeaderEvent::NotLeader),
    )
    .await
    .unwrap();
    // Its session expires (it can reach no other server), so another candidate leads.
    let start = tokio::time::Instant::now();
    let next = any_leader(&latches).await;
    assert_ne!(next, leader);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "new leader within the bound"
    );
    assert!(!latches[leader].has_leadership());
}

/// Issue 11, bug 1: a `close` dropped before it finishes (here by a timeout while the client
/// is offline) still deletes the candidate's node once the client is back in the same
/// session, so the next candidate is elected without the first client closing.
#[tokio::test]
async fn a_close_cancelled_while_offline_still_leaves_the_election() {
    let zk = standalone();
    let path = "/recipes/latch-cancelled-close";
    let proxy = Proxy::start(zk.address(0).unwrap()).await.unwrap();
    let leaving = connect(&proxy.connect_string()).await;
    let other = connect(zk.connect_string()).await;
    let latch = LeaderLatch::start(&leaving, path, "leaving").unwrap();
    within("first candidate leads", latch.wait_for_leadership())
        .await
        .unwrap();
    let node = latch.node().expect("the leader has a node");
    let rival = LeaderLatch::start(&other, path, "rival").unwrap();
    within("rival queues", async {
        loop {
            let (children, watch) = other.get_children_watch(path).await.unwrap();
            if children.len() == 2 {
                return;
            }
            watch.await;
        }
    })
    .await;
    let session = leaving.session_id();

    proxy.set_mode(Mode::Refuse);
    proxy.cut();
    within(
        "first candidate suspended",
        leaving.wait_for_state(|s| s == State::Suspended),
    )
    .await;
    // The timeout only cancels the close: whenever it fires, the node must still go.
    let closed = tokio::time::timeout(Duration::from_millis(300), latch.close()).await;
    assert!(closed.is_err(), "a close cannot finish offline: {closed:?}");
    proxy.set_mode(Mode::Forward);
    within(
        "first candidate reconnects",
        leaving.wait_for_state(|s| s == State::Connected),
    )
    .await;
    assert_eq!(leaving.session_id(), session, "the same, live session");

    within("rival leads", rival.wait_for_leadership())
        .await
        .unwrap();
    assert!(other.exists(&node).await.unwrap().is_none());
    assert_eq!(leaving.session_id(), session);
    rival.close().await.unwrap();
    leaving.close().await;
}
