//! Party, ShallowParty, Barrier and DoubleBarrier against a real ZooKeeper 3.8, with five
//! participants and one that dies.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{connect, standalone, within};
use zkit::recipe::{Barrier, DoubleBarrier, Party, ShallowParty};
use zkit::Client;

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
