//! Sessions under failure against a real ZooKeeper 3.8: expiry for real on the server,
//! connection cuts with requests in flight, the client's own expiry timer, failover across a
//! 3-node ensemble with a watch set before the move, and read-only mode.

mod common;

use std::time::Duration;

use common::{connect, standalone, wait_state, within};
use zkit::{Client, CreateMode, Error, EventType, KeeperState, State};
use zkit_tests::proxy::{Mode, Proxy};
use zkit_tests::ZkServer;

/// Collects transitions until `last` arrives.
async fn transitions_until(
    rx: &mut tokio::sync::broadcast::Receiver<State>,
    last: State,
) -> Vec<State> {
    let mut seen = Vec::new();
    loop {
        let s = within("state transition", rx.recv())
            .await
            .expect("transition stream open");
        seen.push(s);
        if s == last {
            return seen;
        }
    }
}

/// Expires `victim`'s session on the server: a second connection with the same id and
/// password closes it (what Curator's KillSession did). The victim talks through `proxy`,
/// which keeps it away meanwhile: ZooKeeper 3.8 drops the other connection of a session when
/// one reattaches, and a quick victim would otherwise steal the session back.
async fn expire_for_real(hosts: &str, victim: &Client, proxy: &Proxy) {
    let (id, password) = victim.session_credentials();
    proxy.set_mode(Mode::Refuse);
    proxy.cut();
    let killer = Client::builder(hosts)
        .resume_session(id, &password)
        .connect()
        .await
        .unwrap();
    assert_eq!(killer.session_id(), id);
    killer.close().await;
    proxy.set_mode(Mode::Forward);
}

#[tokio::test]
async fn expiry_on_the_server_ends_the_session() {
    let hosts = standalone().connect_string();
    let observer = connect(hosts).await;
    observer.ensure_path("/expiry").await.unwrap();
    let proxy = Proxy::start(standalone().address(0).unwrap())
        .await
        .unwrap();
    let victim = connect(&proxy.connect_string()).await;
    victim
        .create("/expiry/mine", b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    let (_, _, watcher) = victim.get_data_watch("/expiry/mine").await.unwrap();
    let (_, gone) = observer.exists_watch("/expiry/mine").await.unwrap();
    let mut states = victim.state_changes();

    expire_for_real(hosts, &victim, &proxy).await;

    assert_eq!(
        within("ephemeral deleted", gone).await.event_type,
        EventType::NodeDeleted
    );
    assert_eq!(
        transitions_until(&mut states, State::Lost).await,
        [State::Suspended, State::Lost]
    );
    // The victim's own watch fired for the deletion or ended with the session, never hangs.
    let event = within("victim watch resolves", watcher).await;
    assert!(
        event.event_type == EventType::NodeDeleted || event.state == KeeperState::Expired,
        "{event:?}"
    );
    assert_eq!(victim.get_data("/expiry").await, Err(Error::SessionExpired));
    assert_eq!(victim.state(), State::Lost);
}

#[tokio::test]
async fn watches_end_with_a_session_event_when_the_session_is_lost() {
    let hosts = standalone().connect_string();
    let proxy = Proxy::start(standalone().address(0).unwrap())
        .await
        .unwrap();
    let victim = connect(&proxy.connect_string()).await;
    let (_, watcher) = victim.exists_watch("/never-created").await.unwrap();
    let mut persistent = victim
        .add_watch("/never-created", zkit::AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    expire_for_real(hosts, &victim, &proxy).await;
    let event = within("watcher resolves", watcher).await;
    assert_eq!(
        (event.event_type, event.state),
        (EventType::None, KeeperState::Expired)
    );
    let event = within("persistent watcher ends", persistent.recv())
        .await
        .expect("session event");
    assert_eq!(
        (event.event_type, event.state),
        (EventType::None, KeeperState::Expired)
    );
    assert_eq!(within("stream closes", persistent.recv()).await, None);
}

#[tokio::test]
async fn a_request_in_flight_when_the_connection_drops_fails_with_connection_loss() {
    let zk = standalone();
    let proxy = Proxy::start(zk.address(0).unwrap()).await.unwrap();
    let observer = connect(zk.connect_string()).await;
    observer.ensure_path("/inflight").await.unwrap();
    let client = connect(&proxy.connect_string()).await;
    let session = client.session_id();
    let mut states = client.state_changes();
    let mut drops = client.state_changes();

    // The create reaches the server and applies, but its reply is swallowed.
    let (_, created) = observer.exists_watch("/inflight/x").await.unwrap();
    proxy.set_mode(Mode::SwallowReplies);
    let pending = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .create("/inflight/x", b"", CreateMode::Persistent)
                .await
        }
    });
    assert_eq!(
        within("create applied", created).await.event_type,
        EventType::NodeCreated
    );
    // Replies stay swallowed until the client has seen its connection drop: forwarding
    // again first let the create's reply slip through when the proxy read it late.
    proxy.cut();
    within("the connection drops", async {
        loop {
            match drops.recv().await {
                Ok(State::Suspended) => break,
                Ok(_) => {}
                Err(e) => panic!("state changes: {e}"),
            }
        }
    })
    .await;
    proxy.set_mode(Mode::Forward);

    assert_eq!(pending.await.unwrap(), Err(Error::ConnectionLoss));
    assert_eq!(
        transitions_until(&mut states, State::Connected).await,
        [State::Suspended, State::Connected]
    );
    assert_eq!(client.session_id(), session, "same session after reconnect");
    // A later read shows the write applied.
    assert!(client.exists("/inflight/x").await.unwrap().is_some());
}

#[tokio::test]
async fn the_clients_own_timer_declares_the_session_lost() {
    let zk = standalone();
    let proxy = Proxy::start(zk.address(0).unwrap()).await.unwrap();
    let client = Client::builder(&proxy.connect_string())
        .session_timeout(Duration::from_secs(2))
        .seed(3)
        .connect()
        .await
        .unwrap();
    let negotiated = client.session_timeout();
    let mut states = client.state_changes();
    proxy.set_mode(Mode::Refuse);
    proxy.cut();
    let start = tokio::time::Instant::now();
    assert_eq!(
        within("suspended", states.recv()).await.unwrap(),
        State::Suspended
    );
    // Requests made while suspended wait, then fail with SessionExpired once it is lost.
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.exists("/").await }
    });
    assert_eq!(within("lost", states.recv()).await.unwrap(), State::Lost);
    assert!(
        start.elapsed() >= negotiated / 2,
        "lost too early: {:?}",
        start.elapsed()
    );
    assert_eq!(waiting.await.unwrap(), Err(Error::SessionExpired));
}

#[tokio::test]
async fn bad_connect_strings_are_errors() {
    for bad in ["", "h:0", "h:x", "::1:2181"] {
        assert!(
            matches!(Client::builder(bad).build(), Err(Error::InvalidArgument(_))),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn failover_keeps_the_session_and_fires_the_watch_once() {
    let zk =
        ZkServer::ensemble(3).expect("a real 3-node ZooKeeper ensemble must start for this test");
    let client = connect(zk.connect_string()).await;
    client
        .create("/moving", b"0", CreateMode::Persistent)
        .await
        .unwrap();
    client
        .create("/eph", b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    let session = client.session_id();
    let server = client.server().expect("connected to someone");
    let addrs = zk.addresses();
    let index = addrs
        .iter()
        .position(|a| a.to_string() == server)
        .expect("connected server is a member");
    let other = connect(&addrs[(index + 1) % 3].to_string()).await;
    let (_, _, watcher) = client.get_data_watch("/moving").await.unwrap();
    let mut states = client.state_changes();

    zk.kill(index).expect("kill the member the client uses");
    assert_eq!(
        within("suspended", states.recv()).await.unwrap(),
        State::Suspended
    );
    // Changed while the client is moving.
    other.set_data("/moving", b"1", None).await.unwrap();
    assert_eq!(
        within("reconnected", states.recv()).await.unwrap(),
        State::Connected
    );
    assert_eq!(client.session_id(), session);
    assert_ne!(client.server(), Some(server));
    let event = within("watch fires", watcher).await;
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeDataChanged, "/moving")
    );
    // The session and its ephemeral survived.
    assert!(other.exists("/eph").await.unwrap().is_some());
    // Exactly once: a fresh watch sees the next change, nothing stale is pending.
    let (data, _, again) = client.get_data_watch("/moving").await.unwrap();
    assert_eq!(data, b"1");
    other.set_data("/moving", b"2", None).await.unwrap();
    assert_eq!(
        within("second watch", again).await.event_type,
        EventType::NodeDataChanged
    );
}

#[tokio::test]
async fn read_only_mode_serves_reads_and_refuses_writes() {
    // A read-only server can only hand out local sessions (a global one is a write).
    let zk = ZkServer::ensemble_with_config(
        3,
        "localSessionsEnabled=true\nlocalSessionsUpgradingEnabled=true",
    )
    .expect("a real 3-node ZooKeeper ensemble must start for this test");
    let setup = connect(zk.connect_string()).await;
    setup
        .create("/ro", b"data", CreateMode::Persistent)
        .await
        .unwrap();
    setup.close().await;
    // Two of three gone: the survivor has no quorum and, with read-only mode enabled,
    // serves reads only.
    zk.kill(1).unwrap();
    zk.kill(2).unwrap();
    let survivor = zk.address(0).unwrap().to_string();
    let client = Client::builder(&survivor)
        .allow_read_only(true)
        .session_timeout(Duration::from_secs(4))
        .build()
        .unwrap();
    wait_state(&client, State::ConnectedReadOnly).await;
    assert_eq!(client.get_data("/ro").await.unwrap().0, b"data");
    assert_eq!(
        client.set_data("/ro", b"x", None).await,
        Err(Error::NotReadOnly { path: "/ro".into() })
    );
}

#[tokio::test]
async fn a_renewing_client_starts_a_new_session_after_expiry_and_says_so() {
    let zk = standalone();
    let proxy = Proxy::start(zk.address(0).unwrap()).await.unwrap();
    let client = Client::builder(&proxy.connect_string())
        .session_timeout(Duration::from_secs(4))
        .renew_expired_session(true)
        .seed(11)
        .connect()
        .await
        .unwrap();
    let latch = zkit::recipe::LeaderLatch::start(&client, "/renew/election", "me").unwrap();
    let first_epoch = within("leads", latch.wait_for_leadership()).await.unwrap();
    client
        .create("/renew-eph", b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    let (_, watcher) = client.exists_watch("/renew-missing").await.unwrap();
    let old_session = client.session_id();
    let mut states = client.state_changes();

    expire_for_real(zk.connect_string(), &client, &proxy).await;

    assert_eq!(
        transitions_until(&mut states, State::Connected).await,
        [State::Suspended, State::Lost, State::Connected]
    );
    assert_ne!(client.session_id(), old_session, "a new session, visibly");
    assert!(!client.is_finished());
    // The old session's watch ended with it; its ephemeral is gone.
    let event = within("old watch ends", watcher).await;
    assert_eq!(
        (event.event_type, event.state),
        (EventType::None, KeeperState::Expired)
    );
    assert_eq!(client.exists("/renew-eph").await.unwrap(), None);
    // The latch re-created its node in the new session and leads again, in a later epoch.
    let mut events = latch.events();
    let epoch = within(
        "leads again",
        events.wait_for(
            |e| matches!(e, zkit::recipe::LeaderEvent::Elected { epoch } if *epoch > first_epoch),
        ),
    )
    .await
    .map(|e| *e)
    .unwrap();
    assert!(matches!(epoch, zkit::recipe::LeaderEvent::Elected { .. }));
    let participants = zkit::recipe::LeaderLatch::participants(&client, "/renew/election")
        .await
        .unwrap();
    assert_eq!(
        participants.len(),
        1,
        "the old node went with the old session"
    );
}

#[tokio::test]
async fn dropping_the_last_handle_closes_the_session() {
    let hosts = standalone().connect_string();
    let observer = connect(hosts).await;
    let client = connect(hosts).await;
    client
        .create("/dropped-eph", b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    let (_, gone) = observer.exists_watch("/dropped-eph").await.unwrap();
    drop(client);
    // Best effort closeSession: the ephemeral goes at once, not after the session timeout.
    let event = within("ephemeral deleted on drop", gone).await;
    assert_eq!(event.event_type, EventType::NodeDeleted);
}
