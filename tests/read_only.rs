//! Read-only mode against a real ZooKeeper 3.8 ensemble (issue 11 item 5): a client built with
//! `allow_read_only(true)` that holds a leader latch and a lock, attached to the one member
//! that survives when the other two die. The survivor loses quorum and, its members running
//! with `-Dreadonlymode.enabled=true` (see `scripts/zk`), serves read-only; a read-only
//! server is cut off from the quorum, which may be expiring sessions meanwhile, so the
//! recipes must give up what they hold and neither lead nor acquire until the client is
//! [`State::Connected`] to a read-write server again (Curator does not elect on `READ_ONLY`
//! either).
//!
//! What real ZooKeeper 3.8 does here: the survivor drops every connection when it loses quorum and
//! serves read-only again within seconds (here, before the 4 s session timeout), but it refuses to
//! reopen a *global* session ("Refusing global session reconnection in RO mode",
//! `RENEW_GLOBAL_SESSION_IN_RO_MODE`), and a session that owns ephemeral nodes is global. So the
//! holder's session cannot reach the read-only server at all: the client stays `Suspended` until
//! its session timeout passes and declares it `Lost`. A renewing client would then open a fresh
//! *local* session there, but zkit first closes the old session, which a read-only server cannot do
//! either, so it stays `Lost` until a read-write server is back. The read-only side is therefore
//! watched through a second client, started while the survivor serves read-only: every write it
//! sends is refused (`NotReadOnly`), so a latch could never *win* there; what the recipes' policy
//! decides is whether they even try, and the test checks on the server (`cons`) that the latch
//! sends nothing but pings. That a session which *kept* its nodes through a read-only reconnection
//! is not trusted (`ConnectionPolicy::is_lost`) is covered by the policy's unit test and the
//! simulator: ZooKeeper 3.8 never produces it.

mod common;

use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use zkit::recipe::{LeaderEvent, LeaderLatch, Lock};
use zkit::{Client, CreateMode, Error, State};
use zkit_tests::ZkServer;

/// How long the read-only window is watched for a latch or lock that wrongly takes over.
const RO_WINDOW: Duration = Duration::from_secs(4);

/// Collects the client's state transitions from `states` until `want` (at most 60 s, which
/// covers a session timeout, ZooKeeper's fall-back to read-only mode and a member restart);
/// returns them, `want` last.
async fn transitions_until(states: &mut broadcast::Receiver<State>, want: State) -> Vec<State> {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match states.recv().await {
                Ok(state) => {
                    seen.push(state);
                    if state == want {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    panic!("{n} state transitions missed (seen {seen:?})")
                }
                Err(broadcast::error::RecvError::Closed) => {
                    panic!("client gone before {want} (seen {seen:?})")
                }
            }
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "no {want} within 60 s; transitions seen: {seen:?}"
    );
    seen
}

/// The packets member `i` of `zk` has received on the connection of `session` (the `cons`
/// four-letter word's `recved`): pings and requests, including those a read-only server
/// refuses (it answers them without recording them as the connection's last operation).
fn packets_received(zk: &ZkServer, i: usize, session: i64) -> u64 {
    let cons = zk.four_letter(i, "cons").expect("cons");
    let sid = format!("sid=0x{session:x},");
    let line = cons
        .lines()
        .find(|l| l.contains(&sid))
        .unwrap_or_else(|| panic!("no connection of 0x{session:x} in {cons}"));
    let recved = line.split("recved=").nth(1).expect("recved=");
    recved[..recved.find(',').expect("recved=N,")]
        .parse()
        .expect("a packet count")
}

/// Every `Elected` the latch publishes, with the client's state when it is seen; the task
/// returns the list once the latch's event channel closes (the latch closed).
fn record_elections(latch: &LeaderLatch, client: &Client) -> JoinHandle<Vec<(i64, State)>> {
    let (mut events, client) = (latch.events(), client.clone());
    tokio::spawn(async move {
        let mut log = Vec::new();
        loop {
            if let LeaderEvent::Elected { epoch } = *events.borrow_and_update() {
                log.push((epoch, client.state()));
            }
            if events.changed().await.is_err() {
                return log;
            }
        }
    })
}

/// A latch and a lock held through the one member left of three are given up as soon as the quorum
/// goes (`Suspended`); ZooKeeper 3.8 does not let that session onto the read-only server, so the
/// holder never becomes `ConnectedReadOnly` and its session is `Lost`. A client that does reach the
/// read-only server (a fresh local session) is served reads and refused writes, and there, with
/// nobody else contending, its latch sends no request and publishes no `Elected`, and its lock is
/// not acquired; once the other members are back and that client is `Connected` again, its latch
/// leads and its lock is acquired.
#[tokio::test]
async fn latch_and_lock_are_not_taken_through_a_read_only_server() {
    common::init_logging();
    // Local sessions: a read-only server can only hand out those (a global one is a write).
    let zk = ZkServer::ensemble_with_config(
        3,
        "localSessionsEnabled=true\nlocalSessionsUpgradingEnabled=true",
    )
    .expect("a real 3-node ZooKeeper ensemble must start for this test");
    let survivor = zk.address(0).unwrap().to_string();
    let builder = |seed| {
        Client::builder(&survivor)
            .allow_read_only(true)
            .session_timeout(Duration::from_secs(4))
            .seed(seed)
    };

    // The holder: leads and holds the lock through the survivor-to-be.
    let holder = builder(501).connect().await.expect("connect the holder");
    assert_eq!(holder.state(), State::Connected);
    holder
        .create("/ro-data", b"before", CreateMode::Persistent)
        .await
        .unwrap();
    let latch = LeaderLatch::start(&holder, "/ro/held-latch", "holder").unwrap();
    let holder_elections = record_elections(&latch, &holder);
    common::within("the holder's latch leads", latch.wait_for_leadership())
        .await
        .unwrap();
    let lock = Lock::new(&holder, "/ro/held-lock").unwrap();
    let guard = common::within("the holder's lock is acquired", lock.acquire())
        .await
        .unwrap();
    let holder_session = holder.session_id();
    let mut latch_events = latch.events();
    let mut holder_states = holder.state_changes();

    // The quorum goes: the survivor drops its clients, and the holder lets go at once.
    let quorum_lost = Instant::now();
    zk.kill(1).unwrap();
    zk.kill(2).unwrap();
    common::within(
        "the holder's latch steps down",
        latch_events.wait_for(|e| *e == LeaderEvent::NotLeader),
    )
    .await
    .unwrap();
    common::within("the holder's lock guard is lost", guard.lost()).await;
    drop(guard);
    // ZooKeeper 3.8 refuses to reopen the holder's (global) session read-only: it never gets
    // past Suspended, and its own timer ends it.
    let holder_transitions = transitions_until(&mut holder_states, State::Lost).await;
    eprintln!(
        "holder 0x{holder_session:x}: {holder_transitions:?}, Lost {:?} after the quorum went",
        quorum_lost.elapsed()
    );
    assert_eq!(holder_transitions, [State::Suspended, State::Lost]);
    latch.close().await.unwrap_or_default();
    let holder_elections = common::within("the holder's latch events end", holder_elections)
        .await
        .unwrap();
    assert_eq!(holder_elections.len(), 1, "{holder_elections:?}");
    assert_eq!(holder_elections[0].1, State::Connected);

    // A newcomer reaches the survivor once it serves read-only: a fresh local session.
    let client = builder(502)
        .renew_expired_session(true)
        .build()
        .expect("build the newcomer");
    common::within(
        "the newcomer is ConnectedReadOnly",
        client.wait_for_state(|s| s == State::ConnectedReadOnly || s == State::Connected),
    )
    .await;
    let ro_session = client.session_id();
    eprintln!(
        "newcomer ConnectedReadOnly {:?} after the quorum went, session 0x{ro_session:x}; \
         members:\n{}",
        quorum_lost.elapsed(),
        zk.status().unwrap_or_default()
    );
    assert_eq!(client.state(), State::ConnectedReadOnly);
    let mut states = client.state_changes();

    // It really is read-only: reads are served, writes refused.
    assert_eq!(
        client.get_data("/ro-data").await.unwrap().0,
        b"before",
        "a read through the read-only server"
    );
    assert!(client.exists("/ro/held-latch").await.unwrap().is_some());
    assert!(
        matches!(
            client
                .create("/ro-write", b"", CreateMode::Persistent)
                .await,
            Err(Error::NotReadOnly { .. })
        ),
        "a write through the read-only server must be refused"
    );

    // Neither a latch nor a lock with no other contender is taken while read-only.
    let packets_before = packets_received(&zk, 0, ro_session);
    let latch = LeaderLatch::start(&client, "/ro/latch", "newcomer").unwrap();
    let elections = record_elections(&latch, &client);
    let mut latch_events = latch.events();
    // The latch waits for a read-write server: it does not even try to create its node
    // through this one. Over `QUIET`, only pings reach the server (one every third of the
    // 4 s session timeout), where a latch that tried would send a refused create at once and
    // again after 100, 200, 400 and 800 ms.
    const QUIET: Duration = Duration::from_secs(2);
    let quiet = tokio::time::timeout(
        QUIET,
        latch_events.wait_for(|e| matches!(e, LeaderEvent::Elected { .. })),
    )
    .await
    .map(|e| e.map(|e| *e));
    let sent = packets_received(&zk, 0, ro_session) - packets_before;
    assert!(
        sent <= 2,
        "the latch sent {sent} packets through the read-only server in {QUIET:?} (pings only \
         would be at most 2)"
    );
    assert!(quiet.is_err(), "the latch was elected read-only: {quiet:?}");
    let elected = tokio::time::timeout(
        RO_WINDOW,
        latch_events.wait_for(|e| matches!(e, LeaderEvent::Elected { .. })),
    )
    .await;
    assert!(
        elected.is_err(),
        "the latch was elected through a read-only server: {elected:?}"
    );
    assert!(!latch.has_leadership());
    let lock = Lock::new(&client, "/ro/lock").unwrap();
    let acquired = lock.acquire_timeout(RO_WINDOW).await;
    eprintln!("lock.acquire_timeout while read-only: {acquired:?}");
    assert!(
        matches!(acquired, Ok(None) | Err(Error::NotReadOnly { .. })),
        "the lock was acquired through a read-only server: {acquired:?}"
    );
    // All of that happened on the read-only connection, not on a later one.
    assert_eq!(client.state(), State::ConnectedReadOnly);
    assert_eq!(client.session_id(), ro_session);
    assert!(
        matches!(
            states.try_recv(),
            Err(broadcast::error::TryRecvError::Empty)
        ),
        "the connection changed during the read-only window"
    );

    // The quorum comes back: the newcomer is Connected, its latch leads, its lock is taken.
    let restarting = Instant::now();
    zk.restart_no_wait(1).unwrap();
    zk.restart_no_wait(2).unwrap();
    let after_ro = transitions_until(&mut states, State::Connected).await;
    eprintln!(
        "newcomer Connected {:?} after the restarts; transitions {after_ro:?}; session 0x{:x}",
        restarting.elapsed(),
        client.session_id()
    );
    let epoch = common::within("the latch leads", latch.wait_for_leadership())
        .await
        .unwrap();
    let guard = common::within("the lock is acquired", lock.acquire())
        .await
        .unwrap();
    assert_eq!(guard.session_id(), client.session_id());
    guard.release().await.unwrap();
    latch.close().await.unwrap();

    // Every election the latch published happened on a read-write connection.
    let elections = common::within("the latch's events end", elections)
        .await
        .unwrap();
    assert_eq!(elections.last().map(|e| e.0), Some(epoch));
    assert!(
        elections.iter().all(|(_, s)| *s == State::Connected),
        "elected while not Connected: {elections:?}"
    );
    client.close().await;
    holder.close().await;
}
