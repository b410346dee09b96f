//! Party, ShallowParty, Barrier and DoubleBarrier against a real ZooKeeper 3.8, with five
//! participants and one that dies; a double barrier's cancelled enter, stale `ready` and
//! participant renewed out of its session.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{connect, standalone, within};
use zkit::recipe::{Barrier, DoubleBarrier, Party, ShallowParty};
use zkit::{Client, State};
use zkit_tests::proxy::{Mode, Proxy};

async fn clients(n: u64, seed: u64) -> Vec<Client> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(
            Client::builder(standalone().connect_string())
                .seed(seed + i)
                .connect()
                .await
                .unwrap(),
        );
    }
    out
}

#[tokio::test]
async fn party_members_come_and_go() {
    let cs = clients(5, 400).await;
    let mut parties = Vec::new();
    for (i, c) in cs.iter().enumerate() {
        let mut p = Party::new(c, "/recipes/party", &format!("m{i}")).unwrap();
        p.join().await.unwrap();
        p.join().await.unwrap();
        parties.push(p);
    }
    assert_eq!(
        parties[0].members().await.unwrap(),
        ["m0", "m1", "m2", "m3", "m4"]
    );
    parties[1].leave().await.unwrap();
    assert!(!parties[1].is_joined());
    // A member that dies leaves by itself.
    let mut changes = parties[0].watch().unwrap();
    within("first listing", changes.next()).await;
    cs[4].close().await;
    within("membership change", changes.next()).await;
    assert_eq!(parties[0].members().await.unwrap(), ["m0", "m2", "m3"]);

    let c = connect(standalone().connect_string()).await;
    let mut a = ShallowParty::new(&c, "/recipes/shallow", "alpha").unwrap();
    let mut b = ShallowParty::new(&cs[0], "/recipes/shallow", "beta").unwrap();
    a.join().await.unwrap();
    b.join().await.unwrap();
    assert_eq!(a.members().await.unwrap(), ["alpha", "beta"]);
    b.leave().await.unwrap();
    assert_eq!(a.members().await.unwrap(), ["alpha"]);
}

#[tokio::test]
async fn barrier_holds_waiters_until_removed() {
    let cs = clients(6, 500).await;
    let barrier = Barrier::new(&cs[0], "/recipes/barrier").unwrap();
    barrier.raise().await.unwrap();
    barrier.raise().await.unwrap();
    let released = Arc::new(AtomicUsize::new(0));
    let mut waiters = Vec::new();
    for c in &cs[1..] {
        let b = Barrier::new(c, "/recipes/barrier").unwrap();
        let released = released.clone();
        waiters.push(tokio::spawn(async move {
            b.wait().await.unwrap();
            released.fetch_add(1, Ordering::SeqCst);
        }));
    }
    // The waiters are parked on the node: a sync round trip on each waiter's session shows
    // their exists calls were answered, and nobody has passed.
    for c in &cs[1..] {
        c.sync("/").await.unwrap();
    }
    assert_eq!(released.load(Ordering::SeqCst), 0);
    barrier.remove().await.unwrap();
    for w in waiters {
        within("waiter released", w).await.unwrap();
    }
    assert_eq!(released.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn double_barrier_enters_together_and_survives_a_dying_participant() {
    let cs = clients(5, 600).await;
    let entered = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (i, c) in cs.iter().enumerate() {
        let c = c.clone();
        let entered = entered.clone();
        tasks.push(tokio::spawn(async move {
            let b = DoubleBarrier::new(&c, "/recipes/double", 5).unwrap();
            entered.fetch_add(1, Ordering::SeqCst);
            b.enter().await.unwrap();
            // Nobody proceeds before all five have arrived.
            assert_eq!(entered.load(Ordering::SeqCst), 5);
            if i == 3 {
                // This participant dies inside the barrier.
                c.close().await;
                return;
            }
            b.leave().await.unwrap();
        }));
    }
    for t in tasks {
        within("participant done", t).await.unwrap();
    }
    let observer = connect(standalone().connect_string()).await;
    assert_eq!(
        observer.get_children("/recipes/double").await.unwrap(),
        Vec::<String>::new()
    );
}

/// Waits (on children watches) until the participants under `path` (the `ready` marker left
/// out) are exactly `n`.
async fn participants_become(client: &Client, path: &str, n: usize) {
    within(&format!("{n} participants under {path}"), async {
        loop {
            let (mut children, watch) = client.get_children_watch(path).await.unwrap();
            children.retain(|c| c != "ready");
            if children.len() == n {
                return;
            }
            watch.await;
        }
    })
    .await
}

/// Issue 11, bug 2: a cancelled `enter` removes its node (a ghost participant would make
/// the next round release one short), and the next round releases only when full.
#[tokio::test]
async fn a_cancelled_double_barrier_enter_leaves_no_node() {
    let path = "/recipes/double-cancel";
    let cs = clients(3, 620).await;
    let observer = connect(standalone().connect_string()).await;
    observer.ensure_path(path).await.unwrap();
    let cancelled = tokio::spawn({
        let b = DoubleBarrier::new(&cs[0], path, 2).unwrap();
        async move { b.enter().await }
    });
    participants_become(&observer, path, 1).await;
    cancelled.abort();
    participants_become(&observer, path, 0).await;

    // The next round: the first entrant waits for the second.
    let entered = Arc::new(AtomicUsize::new(0));
    let round = |c: &Client| {
        let b = DoubleBarrier::new(c, path, 2).unwrap();
        let entered = entered.clone();
        async move {
            entered.fetch_add(1, Ordering::SeqCst);
            b.enter().await.unwrap();
            assert_eq!(entered.load(Ordering::SeqCst), 2, "released one short");
            b.leave().await.unwrap();
        }
    };
    let first = tokio::spawn(round(&cs[1]));
    participants_become(&observer, path, 1).await;
    let second = tokio::spawn(round(&cs[2]));
    within("first done", first).await.unwrap();
    within("second done", second).await.unwrap();
    assert_eq!(
        observer.get_children(path).await.unwrap(),
        Vec::<String>::new()
    );
}

/// Issue 10 (the `cancel` fault): the lowest participant's `leave`, cancelled while it waits
/// for the others, must not keep its node once the barrier is dropped: the others' `leave`
/// waits for the lowest node to go, and would wait for as long as that session lives.
#[tokio::test]
async fn a_cancelled_double_barrier_leave_leaves_no_node() {
    let path = "/recipes/double-cancel-leave";
    let cs = clients(2, 700).await;
    let observer = connect(standalone().connect_string()).await;
    let (a, b) = (
        DoubleBarrier::new(&cs[0], path, 2).unwrap(),
        DoubleBarrier::new(&cs[1], path, 2).unwrap(),
    );
    let (ea, eb) = tokio::join!(a.enter(), b.enter());
    ea.unwrap();
    eb.unwrap();
    // Whose node sorts lowest (the one that leaves last, waiting for the others).
    let mut children = observer.get_children(path).await.unwrap();
    children.retain(|c| c != "ready");
    children.sort();
    let lowest_node = observer
        .exists(&format!("{path}/{}", children[0]))
        .await
        .unwrap()
        .unwrap();
    let (lowest, other) = if lowest_node.ephemeral_owner == cs[0].session_id() {
        (a, b)
    } else {
        (b, a)
    };
    let cancelled = tokio::time::timeout(Duration::from_millis(300), lowest.leave()).await;
    assert!(cancelled.is_err(), "the lowest leave waits for the other");
    drop(lowest);
    within("the other leaves", other.leave()).await.unwrap();
    participants_become(&observer, path, 0).await;
}

/// Issue 11, bug 2: a `ready` left by a round whose last participants died inside belongs to
/// that round (its generation): it must not release the next round early.
#[tokio::test]
async fn a_stale_ready_does_not_release_the_next_round() {
    let path = "/recipes/double-stale";
    let cs = clients(4, 640).await;
    let observer = connect(standalone().connect_string()).await;
    // A round of two that fills, then both die inside.
    let dying: Vec<_> = cs[..2]
        .iter()
        .map(|c| {
            let b = DoubleBarrier::new(c, path, 2).unwrap();
            tokio::spawn(async move { b.enter().await })
        })
        .collect();
    for d in dying {
        within("dying participant enters", d)
            .await
            .unwrap()
            .unwrap();
    }
    cs[0].close().await;
    cs[1].close().await;
    participants_become(&observer, path, 0).await;
    assert!(observer
        .exists(&format!("{path}/ready"))
        .await
        .unwrap()
        .is_some());

    let entered = Arc::new(AtomicUsize::new(0));
    let round = |c: &Client| {
        let b = DoubleBarrier::new(c, path, 2).unwrap();
        let entered = entered.clone();
        async move {
            entered.fetch_add(1, Ordering::SeqCst);
            b.enter().await.unwrap();
            assert_eq!(
                entered.load(Ordering::SeqCst),
                2,
                "released by a stale ready"
            );
            b.leave().await.unwrap();
        }
    };
    let first = tokio::spawn(round(&cs[2]));
    participants_become(&observer, path, 1).await;
    let second = tokio::spawn(round(&cs[3]));
    within("first done", first).await.unwrap();
    within("second done", second).await.unwrap();
    assert_eq!(
        observer.get_children(path).await.unwrap(),
        Vec::<String>::new(),
        "the last one out removed ready with its node"
    );
}

/// Issue 11, bug 2: a participant whose node went with its session (the client renewed it)
/// cannot tell whether the others have left: `leave` fails instead of waiting for whoever is
/// there (possibly the next round).
#[tokio::test]
async fn leave_fails_once_the_node_died_with_its_session() {
    let zk = standalone();
    let path = "/recipes/double-renewed";
    let proxy = Proxy::start(zk.address(0).unwrap()).await.unwrap();
    let renewing = Client::builder(&proxy.connect_string())
        .session_timeout(Duration::from_secs(4))
        .seed(660)
        .renew_expired_session(true)
        .connect()
        .await
        .unwrap();
    let other = connect(zk.connect_string()).await;
    let mine = DoubleBarrier::new(&renewing, path, 2).unwrap();
    let theirs = DoubleBarrier::new(&other, path, 2).unwrap();
    let (a, b) = tokio::join!(mine.enter(), theirs.enter());
    a.unwrap();
    b.unwrap();

    // Expire the renewing client's session while it is cut off; it comes back renewed.
    let first_session = renewing.session_id();
    let (id, password) = renewing.session_credentials();
    proxy.set_mode(Mode::Refuse);
    proxy.cut();
    let killer = Client::builder(zk.connect_string())
        .resume_session(id, &password)
        .connect()
        .await
        .unwrap();
    killer.close().await;
    participants_become(&other, path, 1).await;
    proxy.set_mode(Mode::Forward);
    within(
        "the client renews its session",
        renewing.wait_for_state(|s| s == State::Connected),
    )
    .await;
    assert_ne!(renewing.session_id(), first_session);

    let left = tokio::spawn(async move { mine.leave().await });
    theirs.leave().await.unwrap();
    assert_eq!(
        within("leave answers", left).await.unwrap(),
        Err(zkit::Error::SessionExpired)
    );
}
