//! The recipes' "API gaps" (issue 11) against a real ZooKeeper 3.8: contenders' ids in queue
//! order (Kazoo's `contenders()` / `lease_holders()`), lock re-entrancy for one owner, the
//! read-write lock's write-to-read downgrade, container parents, the latch's close modes and
//! bounded wait, and the Kazoo-named aliases.

mod common;

use std::time::Duration;

use common::{standalone, within};
use zkit::recipe::{Lock, ReadWriteLock, Semaphore};
use zkit::Client;

/// A client of `hosts` with its own seed (same-seeded clients would draw the same guids).
async fn seeded(hosts: &str, seed: u64) -> Client {
    common::init_logging();
    Client::builder(hosts)
        .session_timeout(Duration::from_secs(4))
        .seed(seed)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {hosts}: {e}"))
}

/// Waits (on children watches, no polling) until `path` has exactly `n` children.
async fn children_become(client: &Client, path: &str, n: usize) {
    within(&format!("{path} gets {n} children"), async {
        loop {
            match client.get_children_watch(path).await {
                Ok((children, watch)) => {
                    if children.len() == n {
                        return;
                    }
                    watch.await;
                }
                Err(zkit::Error::NoNode { .. }) if n == 0 => return,
                Err(zkit::Error::NoNode { .. }) => {
                    let (_, watch) = client.exists_watch(path).await.unwrap();
                    watch.await;
                }
                Err(e) => panic!("children of {path}: {e}"),
            }
        }
    })
    .await
}

// ----- 1. contenders' ids -----

#[tokio::test]
async fn lock_contender_ids_are_the_data_in_queue_order() {
    let hosts = standalone().connect_string();
    let path = "/api/lock-ids";
    let a = seeded(hosts, 1101).await;
    let b = seeded(hosts, 1102).await;
    let c = seeded(hosts, 1103).await;
    let la = Lock::new(&a, path).unwrap().data(b"alice");
    let lb = Lock::new(&b, path).unwrap().data(b"bob");
    let lc = Lock::new(&c, path).unwrap().data(b"carol");
    assert_eq!(la.contender_ids().await.unwrap(), Vec::<String>::new());
    let held = la.acquire().await.unwrap();
    let wb = tokio::spawn({
        let lb = lb.clone();
        async move { lb.acquire().await }
    });
    children_become(&a, path, 2).await;
    let wc = tokio::spawn({
        let lc = lc.clone();
        async move { lc.acquire().await }
    });
    children_become(&a, path, 3).await;
    assert_eq!(
        lc.contender_ids().await.unwrap(),
        ["alice", "bob", "carol"],
        "holder first, then the waiters in arrival order"
    );
    held.release().await.unwrap();
    let gb = within("bob takes the lock", wb).await.unwrap().unwrap();
    assert_eq!(la.contender_ids().await.unwrap(), ["bob", "carol"]);
    gb.release().await.unwrap();
    within("carol takes the lock", wc)
        .await
        .unwrap()
        .unwrap()
        .release()
        .await
        .unwrap();
    assert_eq!(la.contender_ids().await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn rwlock_contender_ids_and_semaphore_lease_holders() {
    let hosts = standalone().connect_string();
    let a = seeded(hosts, 1201).await;
    let b = seeded(hosts, 1202).await;
    let path = "/api/rw-ids";
    let ra = ReadWriteLock::new(&a, path).unwrap().data(b"reader-a");
    let wb = ReadWriteLock::new(&b, path).unwrap().data(b"writer-b");
    let read = ra.read().await.unwrap();
    let writing = tokio::spawn({
        let wb = wb.clone();
        async move { wb.write().await }
    });
    children_become(&a, path, 2).await;
    assert_eq!(ra.contender_ids().await.unwrap(), ["reader-a", "writer-b"]);
    read.release().await.unwrap();
    within("writer takes it", writing)
        .await
        .unwrap()
        .unwrap()
        .release()
        .await
        .unwrap();
    assert_eq!(ra.contender_ids().await.unwrap(), Vec::<String>::new());

    let path = "/api/sem-holders";
    let sa = Semaphore::new(&a, path, 2).unwrap().data(b"lease-a");
    let sb = Semaphore::new(&b, path, 2).unwrap().data(b"lease-b");
    assert_eq!(sa.lease_holders().await.unwrap(), Vec::<String>::new());
    let la = sa.acquire().await.unwrap();
    let lb = sb.acquire().await.unwrap();
    assert_eq!(sb.lease_holders().await.unwrap(), ["lease-a", "lease-b"]);
    la.release().await.unwrap();
    assert_eq!(sb.lease_holders().await.unwrap(), ["lease-b"]);
    lb.release().await.unwrap();
    assert_eq!(sa.lease_holders().await.unwrap(), Vec::<String>::new());
}

// ----- 2. re-entrancy -----

#[tokio::test]
async fn a_reentrant_lock_is_held_until_its_last_guard_goes() {
    let hosts = standalone().connect_string();
    let path = "/api/lock-reentrant";
    let a = seeded(hosts, 2101).await;
    let b = seeded(hosts, 2102).await;
    let owner = Lock::new(&a, path).unwrap().reentrant();
    assert!(owner.is_reentrant());
    let rival = Lock::new(&b, path).unwrap();
    let first = owner.acquire().await.unwrap();
    // Without re-entrancy this would queue behind `first` forever.
    let second = within("re-entry is immediate", owner.acquire())
        .await
        .unwrap();
    let third = owner
        .clone()
        .try_acquire()
        .await
        .unwrap()
        .expect("a clone is the same owner");
    assert_eq!(first.node(), second.node());
    assert_eq!(first.node(), third.node());
    assert_eq!(first.fencing_token(), second.fencing_token());
    assert_eq!(first.holds(), 3);
    assert_eq!(owner.contenders().await.unwrap().len(), 1, "one node only");
    assert!(rival.try_acquire().await.unwrap().is_none());

    let node = first.node().to_owned();
    first.release().await.unwrap();
    drop(third);
    assert_eq!(second.holds(), 1);
    assert!(
        a.exists(&node).await.unwrap().is_some(),
        "still held by the last guard"
    );
    assert!(rival.try_acquire().await.unwrap().is_none());
    let waiting = tokio::spawn({
        let rival = rival.clone();
        async move { rival.acquire().await }
    });
    children_become(&a, path, 2).await;
    second.release().await.unwrap();
    assert!(
        a.exists(&node).await.unwrap().is_none(),
        "last release deletes"
    );
    let g = within("rival gets it after the last release", waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.holds(), 1);
    // The owner's hold is over: acquiring again queues like anyone else.
    assert!(owner.try_acquire().await.unwrap().is_none());
    g.release().await.unwrap();
    let again = owner.try_acquire().await.unwrap().expect("free again");
    assert_ne!(again.node(), node, "a new hold is a new node");
}

#[tokio::test]
async fn a_plain_lock_is_not_reentrant() {
    let hosts = standalone().connect_string();
    let a = seeded(hosts, 2201).await;
    let lock = Lock::new(&a, "/api/lock-plain").unwrap();
    assert!(!lock.is_reentrant());
    let held = lock.acquire().await.unwrap();
    assert!(lock.try_acquire().await.unwrap().is_none());
    assert!(lock
        .acquire_timeout(Duration::from_millis(300))
        .await
        .unwrap()
        .is_none());
    assert_eq!(held.holds(), 1);
}

// ----- 3. write-to-read downgrade -----

#[tokio::test]
async fn a_downgraded_writer_keeps_reading_and_excludes_queued_writers() {
    let hosts = standalone().connect_string();
    let path = "/api/rw-downgrade";
    let a = seeded(hosts, 3101).await;
    let b = seeded(hosts, 3102).await;
    let c = seeded(hosts, 3103).await;
    let la = ReadWriteLock::new(&a, path).unwrap().data(b"a");
    let lb = ReadWriteLock::new(&b, path).unwrap().data(b"b");
    let lc = ReadWriteLock::new(&c, path).unwrap().data(b"c");
    let write = la.write().await.unwrap();
    // Another writer queues behind the holder, then a reader behind it.
    let writer_b = tokio::spawn({
        let lb = lb.clone();
        async move { lb.write().await }
    });
    children_become(&a, path, 2).await;
    let reader_c = tokio::spawn({
        let lc = lc.clone();
        async move { lc.read().await }
    });
    children_become(&a, path, 3).await;

    // Read while writing: immediate, though a writer waits ahead of the new reader node.
    let read = within(
        "read on the strength of the write hold",
        la.read_with(&write),
    )
    .await
    .unwrap();
    assert_ne!(read.node(), write.node());
    assert!(read.fencing_token() > write.fencing_token());
    // The write guard of another lock path is refused.
    let other = ReadWriteLock::new(&a, "/api/rw-downgrade-other").unwrap();
    assert!(matches!(
        other.read_with(&write).await,
        Err(zkit::Error::InvalidArgument(_))
    ));
    write.release().await.unwrap();
    assert_eq!(la.contender_ids().await.unwrap(), ["b", "c", "a"]);
    // B's writer is now at the head of the queue, yet must not get in while A reads.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !writer_b.is_finished(),
        "a writer took the lock while the downgraded reader held it"
    );
    assert!(lb
        .try_acquire(zkit::recipe::Access::Write)
        .await
        .unwrap()
        .is_none());
    assert!(!reader_c.is_finished(), "C queued behind B's writer (fair)");
    read.release().await.unwrap();
    let wb = within("writer after the downgraded read", writer_b)
        .await
        .unwrap()
        .unwrap();
    wb.release().await.unwrap();
    within("reader after the writer", reader_c)
        .await
        .unwrap()
        .unwrap()
        .release()
        .await
        .unwrap();

    // `downgrade` does both steps; readers waiting behind the writer get in at once.
    let write = la.write().await.unwrap();
    let reader_c = tokio::spawn({
        let lc = lc.clone();
        async move { lc.read().await }
    });
    children_become(&a, path, 2).await;
    let read = la.downgrade(write).await.unwrap();
    let rc = within("a waiting reader shares with the downgraded one", reader_c)
        .await
        .unwrap()
        .unwrap();
    assert!(lb
        .try_acquire(zkit::recipe::Access::Write)
        .await
        .unwrap()
        .is_none());
    rc.release().await.unwrap();
    read.release().await.unwrap();
    assert!(lb
        .try_acquire(zkit::recipe::Access::Write)
        .await
        .unwrap()
        .is_some());
}

// ----- 4. container parents -----

/// Waits (on exists watches) until `path` is gone.
async fn gone(client: &Client, path: &str) {
    within(&format!("{path} is reaped"), async {
        loop {
            match client.exists_watch(path).await.unwrap() {
                (None, _) => return,
                (Some(_), watch) => {
                    watch.await;
                }
            }
        }
    })
    .await
}

/// The fixture runs ZooKeeper's container reaper every 100 ms: container parents go soon
/// after the last contender, persistent ones stay.
#[tokio::test]
async fn container_parents_are_reaped_once_empty_and_plain_ones_stay() {
    let hosts = standalone().connect_string();
    let a = seeded(hosts, 4101).await;
    let lock = Lock::new(&a, "/api-containers/lock/x")
        .unwrap()
        .container_parents();
    let guard = lock.acquire().await.unwrap();
    guard.release().await.unwrap();
    // The lock's path goes first, then each parent once it is empty in turn.
    gone(&a, "/api-containers").await;

    // An existing parent is left as it is; only the missing ones become containers.
    a.ensure_path("/api-plain").await.unwrap();
    let rw = ReadWriteLock::new(&a, "/api-plain/rw")
        .unwrap()
        .container_parents();
    rw.write().await.unwrap().release().await.unwrap();
    let sem = Semaphore::new(&a, "/api-plain/sem", 1)
        .unwrap()
        .container_parents();
    sem.acquire().await.unwrap().release().await.unwrap();
    gone(&a, "/api-plain/rw").await;
    gone(&a, "/api-plain/sem").await;

    // Without the option, parents are persistent: still there after many reaper rounds.
    let plain = Lock::new(&a, "/api-plain/lock/x").unwrap();
    plain.acquire().await.unwrap().release().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(a.exists("/api-plain/lock/x").await.unwrap().is_some());
    assert!(a.exists("/api-plain").await.unwrap().is_some());
}

// ----- 5. latch close modes and bounded wait -----

#[tokio::test]
async fn latch_close_modes_notify_or_stay_silent() {
    use zkit::recipe::{CloseMode, LeaderEvent, LeaderLatch};
    let hosts = standalone().connect_string();
    let a = seeded(hosts, 5101).await;
    let path = "/api/latch-close";

    // NotifyLeader (the default): woken with NotLeader, then the channel closes.
    let latch = LeaderLatch::start(&a, path, "notify").unwrap();
    assert_eq!(latch.close_mode(), CloseMode::NotifyLeader);
    within("leads", latch.wait_for_leadership()).await.unwrap();
    let mut rx = latch.events();
    rx.borrow_and_update();
    latch.close().await.unwrap();
    within("told", rx.changed())
        .await
        .expect("NotifyLeader wakes receivers with an event");
    assert_eq!(*rx.borrow_and_update(), LeaderEvent::NotLeader);
    assert!(within("closed", rx.changed()).await.is_err());

    // Silent: no event, only the channel's end; the value still reads NotLeader.
    let latch = LeaderLatch::start(&a, path, "silent").unwrap();
    within("leads", latch.wait_for_leadership()).await.unwrap();
    let mut rx = latch.events();
    assert!(matches!(
        *rx.borrow_and_update(),
        LeaderEvent::Elected { .. }
    ));
    latch.close_with(CloseMode::Silent).await.unwrap();
    assert!(
        within("closed", rx.changed()).await.is_err(),
        "Silent must not wake receivers with an event"
    );
    assert_eq!(
        *rx.borrow(),
        LeaderEvent::NotLeader,
        "never a stale Elected"
    );

    // The mode set on the latch applies to a drop too.
    let mut latch = LeaderLatch::start(&a, path, "dropped").unwrap();
    latch.set_close_mode(CloseMode::Silent);
    within("leads", latch.wait_for_leadership()).await.unwrap();
    let mut rx = latch.events();
    rx.borrow_and_update();
    drop(latch);
    assert!(within("closed", rx.changed()).await.is_err());
    assert_eq!(*rx.borrow(), LeaderEvent::NotLeader);
    assert!(LeaderLatch::participants(&a, path).await.unwrap().len() <= 1);
}

#[tokio::test]
async fn latch_waits_for_leadership_at_most_a_timeout() {
    use zkit::recipe::LeaderLatch;
    let hosts = standalone().connect_string();
    let a = seeded(hosts, 5201).await;
    let b = seeded(hosts, 5202).await;
    let path = "/api/latch-timeout";
    let first = LeaderLatch::start(&a, path, "first").unwrap();
    let epoch = within("first leads", first.wait_for_leadership())
        .await
        .unwrap();
    let second = LeaderLatch::start(&b, path, "second").unwrap();
    assert_eq!(
        second
            .wait_for_leadership_timeout(Duration::from_millis(300))
            .await
            .unwrap(),
        None,
        "the first still leads"
    );
    assert!(!second.has_leadership());
    first.close().await.unwrap();
    let next = second
        .wait_for_leadership_timeout(Duration::from_secs(30))
        .await
        .unwrap()
        .expect("leads once the first closes");
    assert!(next > epoch);
    second.close().await.unwrap();
}

// ----- 6. Kazoo-shaped aliases -----

/// A non-blocking Kazoo-style acquire ignores its timeout: it answers well before it.
async fn promptly<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .expect("a non-blocking acquire answers without waiting for its timeout")
}

#[tokio::test]
async fn kazoo_shaped_acquire_on_lock_rwlock_sides_and_semaphore() {
    use zkit::recipe::Access;
    let hosts = standalone().connect_string();
    let a = seeded(hosts, 6101).await;
    let b = seeded(hosts, 6102).await;
    let long = Some(Duration::from_secs(60));
    let short = Some(Duration::from_millis(300));

    let la = Lock::new(&a, "/api/kazoo-lock").unwrap().data(b"a");
    let lb = Lock::new(&b, "/api/kazoo-lock").unwrap().data(b"b");
    let held = la.acquire_with(true, None).await.unwrap().expect("free");
    assert!(promptly(lb.acquire_with(false, long))
        .await
        .unwrap()
        .is_none());
    assert!(lb.acquire_with(true, short).await.unwrap().is_none());
    assert_eq!(lb.contender_ids().await.unwrap(), ["a"], "no node left");
    held.release().await.unwrap();
    let g = within("blocking, no timeout", lb.acquire_with(true, None))
        .await
        .unwrap()
        .expect("blocking without a timeout always holds");
    g.release().await.unwrap();

    let path = "/api/kazoo-rw";
    let ra = ReadWriteLock::new(&a, path).unwrap().data(b"a").read_lock();
    let wb = ReadWriteLock::new(&b, path)
        .unwrap()
        .data(b"b")
        .write_lock();
    let rb = wb.lock().read_lock();
    assert_eq!(ra.access(), Access::Read);
    assert_eq!(wb.access(), Access::Write);
    let read_a = ra.acquire_with(false, None).await.unwrap().expect("free");
    let read_b = rb
        .acquire_with(true, short)
        .await
        .unwrap()
        .expect("readers share");
    assert!(promptly(wb.acquire_with(false, long))
        .await
        .unwrap()
        .is_none());
    assert!(wb.acquire_with(true, short).await.unwrap().is_none());
    assert_eq!(wb.contenders().await.unwrap(), ["a", "b"]);
    read_a.release().await.unwrap();
    read_b.release().await.unwrap();
    let w = within("writer", wb.acquire_with(true, None))
        .await
        .unwrap()
        .unwrap();
    assert!(ra.try_acquire().await.unwrap().is_none());
    w.release().await.unwrap();

    let path = "/api/kazoo-sem";
    let sa = Semaphore::new(&a, path, 1).unwrap().data(b"a");
    let sb = Semaphore::new(&b, path, 1).unwrap().data(b"b");
    let lease = sa.acquire_with(true, None).await.unwrap().expect("free");
    assert!(promptly(sb.acquire_with(false, long))
        .await
        .unwrap()
        .is_none());
    assert!(sb.acquire_with(true, short).await.unwrap().is_none());
    assert_eq!(sb.lease_holders().await.unwrap(), ["a"]);
    lease.release().await.unwrap();
    let lease = sb
        .acquire_with(true, long)
        .await
        .unwrap()
        .expect("free again");
    assert_eq!(sa.lease_holders().await.unwrap(), ["b"]);
    lease.release().await.unwrap();
}

// ----- 7. party re-join after renewal, counter watch state events -----

/// Expires `client`'s session while `proxy` keeps it cut off, then lets it renew.
async fn expire_and_renew(
    zk: &zkit_tests::ZkServer,
    proxy: &zkit_tests::proxy::Proxy,
    client: &Client,
) {
    use zkit_tests::proxy::Mode;
    let first = client.session_id();
    let (id, password) = client.session_credentials();
    proxy.set_mode(Mode::Refuse);
    proxy.cut();
    let killer = Client::builder(zk.connect_string())
        .resume_session(id, &password)
        .connect()
        .await
        .unwrap();
    killer.close().await;
    proxy.set_mode(Mode::Forward);
    within(
        "the client renews its session",
        client.wait_for_state(|s| s == zkit::State::Connected && client.session_id() != first),
    )
    .await;
    assert_ne!(client.session_id(), first);
}

#[tokio::test]
async fn a_party_member_rejoins_after_a_session_renewal() {
    use zkit::recipe::{Party, ShallowParty};
    let zk = standalone();
    let proxy = zkit_tests::proxy::Proxy::start(zk.address(0).unwrap())
        .await
        .unwrap();
    let renewing = Client::builder(&proxy.connect_string())
        .session_timeout(Duration::from_secs(4))
        .seed(7101)
        .renew_expired_session(true)
        .connect()
        .await
        .unwrap();
    let observer = seeded(zk.connect_string(), 7102).await;
    let path = "/api/party-renew";
    let mut deep = Party::new(&renewing, path, "deep").unwrap();
    let mut shallow = ShallowParty::new(&renewing, "/api/party-renew-shallow", "shallow").unwrap();
    deep.join().await.unwrap();
    shallow.join().await.unwrap();
    let mut stay = Party::new(&observer, path, "stay").unwrap();
    stay.join().await.unwrap();
    assert_eq!(stay.members().await.unwrap(), ["deep", "stay"]);

    expire_and_renew(zk, &proxy, &renewing).await;
    // Re-joined in the new session (watched, not polled).
    children_become(&observer, path, 2).await;
    children_become(&observer, "/api/party-renew-shallow", 1).await;
    assert_eq!(stay.members().await.unwrap(), ["deep", "stay"]);
    let children = observer.get_children(path).await.unwrap();
    for child in children {
        let stat = observer
            .exists(&format!("{path}/{child}"))
            .await
            .unwrap()
            .unwrap();
        assert!(
            stat.ephemeral_owner == renewing.session_id()
                || stat.ephemeral_owner == observer.session_id(),
            "every node belongs to a live session"
        );
    }
    assert!(deep.is_joined());
    // Leaving stops the re-joining for good.
    deep.leave().await.unwrap();
    assert_eq!(stay.members().await.unwrap(), ["stay"]);
    shallow.leave().await.unwrap();
    children_become(&observer, "/api/party-renew-shallow", 0).await;
}

#[tokio::test]
async fn a_counter_watch_reports_connection_states_between_values() {
    use zkit::recipe::{Counter, CounterEvent};
    use zkit::State;
    let zk = standalone();
    let proxy = zkit_tests::proxy::Proxy::start(zk.address(0).unwrap())
        .await
        .unwrap();
    let client = Client::builder(&proxy.connect_string())
        .session_timeout(Duration::from_secs(10))
        .seed(7201)
        .connect()
        .await
        .unwrap();
    let writer = seeded(zk.connect_string(), 7202).await;
    let path = "/api/counter-states";
    let counter = Counter::new(&client, path, 0).unwrap();
    counter.set(5).await.unwrap();
    let mut watch = counter.watch().unwrap();
    let first = within("first value", watch.next_event()).await;
    assert!(
        matches!(first, Some(CounterEvent::Value(v)) if v.value == 5),
        "{first:?}"
    );
    // Cut the connection: the watch says so (Suspended), then Connected again.
    proxy.cut();
    let mut states = Vec::new();
    while !states.contains(&State::Connected) {
        match within("state events", watch.next_event()).await {
            Some(CounterEvent::State(s)) => states.push(s),
            Some(CounterEvent::Value(v)) => assert_eq!(v.value, 5, "no new value yet"),
            None => panic!("the watch ended"),
        }
    }
    assert_eq!(states.first(), Some(&State::Suspended), "{states:?}");
    Counter::new(&writer, path, 0)
        .unwrap()
        .add(2)
        .await
        .unwrap();
    loop {
        match within("the new value", watch.next_event()).await {
            Some(CounterEvent::Value(v)) if v.value == 7 => break,
            Some(other) => tracing::debug!(?other, "before the new value"),
            None => panic!("the watch ended"),
        }
    }
}
