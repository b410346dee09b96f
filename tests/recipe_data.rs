//! Counter, Queue, LockingQueue, NonBlockingLease, SetPartitioner and TreeCache against a real
//! ZooKeeper 3.8: concurrent writers, consumers that die, time on the server's clock,
//! membership changes, a partition lock lost under its holder, and a mirror that resyncs after
//! a connection cut.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{init_logging, standalone, within};
use zkit::recipe::{
    Counter, LockingQueue, NonBlockingLease, PartitionState, Queue, SetPartitioner, TreeCache,
    TreeEvent,
};
use zkit::{Client, CreateMode, State};
use zkit_tests::proxy::{Mode, Proxy};

/// A client of `hosts` with its own seed (so its node names differ from the others').
async fn client_of(hosts: &str, seed: u64) -> Client {
    init_logging();
    Client::builder(hosts)
        .session_timeout(Duration::from_secs(4))
        .seed(seed)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {hosts}: {e}"))
}

async fn client(seed: u64) -> Client {
    client_of(standalone().connect_string(), seed).await
}

/// A fresh, empty `path` (and its parents).
async fn fresh(admin: &Client, path: &str) {
    admin.delete_recursive(path).await.unwrap();
    admin.ensure_path(path).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_concurrent_adds_are_never_lost() {
    let admin = client(600).await;
    admin.delete_recursive("/recipes/counter").await.unwrap();
    let counter = Counter::new(&admin, "/recipes/counter/hits", 0).unwrap();
    let mut watch = counter.watch().unwrap();

    let mut tasks = Vec::new();
    for i in 0..5 {
        let c = client(601 + i).await;
        tasks.push(tokio::spawn(async move {
            let counter = Counter::new(&c, "/recipes/counter/hits", 0).unwrap();
            for _ in 0..20 {
                counter.add(1).await.unwrap();
            }
            c.close().await;
        }));
    }
    for t in tasks {
        within("adders", t).await.unwrap();
    }
    let now = counter.get().await.unwrap();
    assert_eq!(now.value, 100, "every add counted exactly once");

    // Curator's SharedCount format: the value as 4 big-endian bytes.
    let (data, stat) = admin.get_data("/recipes/counter/hits").await.unwrap();
    assert_eq!(data, [0, 0, 0, 100]);
    assert_eq!(stat.version, now.version);

    // Compare-and-set refuses a stale version.
    assert!(!counter.try_set(7, now.version - 1).await.unwrap());
    assert!(counter.try_set(-2, now.version).await.unwrap());
    let (data, _) = admin.get_data("/recipes/counter/hits").await.unwrap();
    assert_eq!(data, [0xff, 0xff, 0xff, 0xfe]);
    counter.set(41).await.unwrap();
    assert_eq!(counter.add(1).await.unwrap(), 42);

    // The watch saw the values in increasing version order, ending with 42.
    let mut last_version = -1;
    loop {
        let v = within("counter watch", watch.next()).await.unwrap();
        assert!(v.version > last_version, "versions only move forward");
        last_version = v.version;
        if v.value == 42 {
            break;
        }
    }
    admin.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_delivers_every_item_once_in_priority_order() {
    let admin = client(610).await;
    fresh(&admin, "/recipes/queue").await;

    // Priority order, then arrival order.
    let q = Queue::new(&admin, "/recipes/queue/prio").unwrap();
    assert_eq!(q.get().await.unwrap(), None, "empty queue");
    q.put_with_priority(b"late", 500).await.unwrap();
    q.put_with_priority(b"urgent-1", 5).await.unwrap();
    q.put(b"normal").await.unwrap();
    q.put_with_priority(b"urgent-2", 5).await.unwrap();
    q.put_with_priority(b"last", 999).await.unwrap();
    assert!(q.put_with_priority(b"bad", 1000).await.is_err());
    assert_eq!(q.len().await.unwrap(), 5);
    let mut order = Vec::new();
    while let Some(item) = q.get().await.unwrap() {
        order.push(String::from_utf8(item).unwrap());
    }
    assert_eq!(order, ["urgent-1", "urgent-2", "normal", "late", "last"]);
    assert!(q.is_empty().await.unwrap());

    // 3 producers, 3 consumers: every item exactly once.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut consumers = Vec::new();
    for i in 0..3 {
        let c = client(611 + i).await;
        let tx = tx.clone();
        consumers.push(tokio::spawn(async move {
            let q = Queue::new(&c, "/recipes/queue/work").unwrap();
            loop {
                let item = q.get_blocking().await.unwrap();
                if tx.send(String::from_utf8(item).unwrap()).is_err() {
                    return;
                }
            }
        }));
    }
    let mut producers = Vec::new();
    for p in 0..3 {
        let c = client(615 + p).await;
        producers.push(tokio::spawn(async move {
            let q = Queue::new(&c, "/recipes/queue/work").unwrap();
            for k in 0..20 {
                q.put(format!("p{p}-{k}").as_bytes()).await.unwrap();
            }
            c.close().await;
        }));
    }
    for p in producers {
        within("producers", p).await.unwrap();
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..60 {
        let item = within("consumed item", rx.recv()).await.unwrap();
        *seen.entry(item).or_default() += 1;
    }
    for c in &consumers {
        c.abort();
    }
    let expected: BTreeSet<String> = (0..3)
        .flat_map(|p| (0..20).map(move |k| format!("p{p}-{k}")))
        .collect();
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(seen.values().all(|n| *n == 1), "duplicates: {seen:?}");
    assert!(rx.try_recv().is_err(), "nothing beyond the 60 items");
    assert_eq!(
        Queue::new(&admin, "/recipes/queue/work")
            .unwrap()
            .len()
            .await
            .unwrap(),
        0
    );
    admin.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locking_queue_gives_back_the_entry_of_a_dead_consumer() {
    let admin = client(620).await;
    fresh(&admin, "/recipes/lqueue").await;
    let producer = LockingQueue::new(&admin, "/recipes/lqueue/q").unwrap();
    producer.put(b"job-1").await.unwrap();

    let doomed = client(621).await;
    let survivor = client(622).await;
    let qa = LockingQueue::new(&doomed, "/recipes/lqueue/q").unwrap();
    let qb = LockingQueue::new(&survivor, "/recipes/lqueue/q").unwrap();

    let held = within("first get", qa.get()).await.unwrap();
    assert_eq!(held.data(), b"job-1");
    assert!(held.holds_lock().await.unwrap());
    // B blocks meanwhile: the only entry is locked.
    let waiting = tokio::spawn(async move {
        let entry = qb.get().await.unwrap();
        (qb, entry)
    });
    // A dies before consuming: its lock node goes with its session.
    doomed.close().await;
    drop(held);
    let (qb, entry) = within("entry given back", waiting).await.unwrap();
    assert_eq!(entry.data(), b"job-1");
    assert_eq!(
        producer.len().await.unwrap(),
        1,
        "still queued while locked"
    );
    assert!(entry.consume().await.unwrap());
    assert_eq!(producer.len().await.unwrap(), 0);
    assert!(admin
        .get_children("/recipes/lqueue/q/taken")
        .await
        .unwrap()
        .is_empty());

    // Release gives an entry back; the next get takes it again, in priority order.
    producer.put_with_priority(b"low", 200).await.unwrap();
    producer.put_with_priority(b"high", 1).await.unwrap();
    let first = within("high", qb.get()).await.unwrap();
    assert_eq!(first.data(), b"high");
    first.release().await.unwrap();
    let again = within("high again", qb.get()).await.unwrap();
    assert_eq!(again.data(), b"high");
    let second = within("low", qb.get()).await.unwrap();
    assert_eq!(second.data(), b"low");
    assert!(again.consume().await.unwrap());
    assert!(second.consume().await.unwrap());
    assert_eq!(producer.len().await.unwrap(), 0);
    survivor.close().await;
    admin.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_has_one_holder_until_it_expires_on_the_server_clock() {
    let admin = client(630).await;
    admin.delete_recursive("/recipes/lease").await.unwrap();
    let a = client(631).await;
    let b = client(632).await;
    let duration = Duration::from_millis(1500);

    let la = NonBlockingLease::acquire(&a, "/recipes/lease", duration, "alpha")
        .await
        .unwrap();
    assert!(la.obtained());
    let a_end = la.expires_at_ms().unwrap();
    let lb = NonBlockingLease::acquire(&b, "/recipes/lease", duration, "beta")
        .await
        .unwrap();
    assert!(!lb.obtained(), "the lease is alpha's");
    assert_eq!(lb.current_holder().unwrap().holder, "alpha");
    assert_eq!(lb.expires_at_ms(), None);
    // The holder renews its own lease.
    let la = NonBlockingLease::acquire(&a, "/recipes/lease", duration, "alpha")
        .await
        .unwrap();
    assert!(la.obtained());
    let a_end = la.expires_at_ms().unwrap().max(a_end);

    // Nothing signals an expiry: try again every 100 ms, for at most 30 s.
    let lb = within("beta takes the expired lease", async {
        loop {
            let before = NonBlockingLease::server_now(&admin, "/recipes/lease")
                .await
                .unwrap();
            let lb = NonBlockingLease::acquire(&b, "/recipes/lease", duration, "beta")
                .await
                .unwrap();
            if lb.obtained() {
                return lb;
            }
            assert!(
                before < a_end,
                "refused at server time {before}, after alpha's lease ended at {a_end}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let b_end = lb.expires_at_ms().unwrap();
    let duration_ms = i64::try_from(duration.as_millis()).unwrap();
    assert!(
        b_end - duration_ms >= a_end,
        "beta took it at server time {} before alpha's end {a_end}",
        b_end - duration_ms
    );
    let current = NonBlockingLease::current(&admin, "/recipes/lease")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.holder, "beta");
    assert_eq!(current.expires_at_ms, b_end);
    // Now alpha is the one refused.
    let la = NonBlockingLease::acquire(&a, "/recipes/lease", duration, "alpha")
        .await
        .unwrap();
    assert!(!la.obtained() || la.expires_at_ms().unwrap() - duration_ms >= b_end);
    for c in [a, b, admin] {
        c.close().await;
    }
}

fn items(names: &[usize]) -> PartitionState {
    PartitionState::Acquired(names.iter().map(|i| format!("i{i}")).collect())
}

async fn wait_for_state(p: &SetPartitioner, want: &PartitionState) {
    let mut states = p.states();
    let what = format!("{} reaching {want:?}", p.id());
    within(&what, states.wait_for(|s| s == want))
        .await
        .unwrap_or_else(|_| panic!("{what}: partitioner gone"));
}

/// The member id stored in the holder node of each item's lock.
async fn lock_holders(admin: &Client, items: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for item in items {
        let lock = zkit::recipe::Lock::new(admin, &format!("/recipes/partition/{item}")).unwrap();
        let first = lock.contenders().await.unwrap()[0].clone();
        let (data, _) = admin
            .get_data(&format!("/recipes/partition/{item}/{first}"))
            .await
            .unwrap();
        out.insert(item.clone(), String::from_utf8(data).unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioner_divides_and_redivides_on_membership_change() {
    let admin = client(640).await;
    admin.delete_recursive("/recipes/partition").await.unwrap();
    let all: Vec<String> = (0..9).map(|i| format!("i{i}")).collect();
    let mut members = Vec::new();
    for m in 0..3 {
        let c = client(641 + m).await;
        let p = SetPartitioner::start(&c, "/recipes/partition", &format!("m{m}"), &all)
            .await
            .unwrap();
        members.push((c, p));
    }
    // Sorted items dealt round-robin over sorted member ids.
    let shares = [items(&[0, 3, 6]), items(&[1, 4, 7]), items(&[2, 5, 8])];
    for ((_, p), want) in members.iter().zip(&shares) {
        wait_for_state(p, want).await;
    }
    let mut covered = BTreeSet::new();
    for (_, p) in &members {
        let PartitionState::Acquired(mine) = p.state() else {
            panic!("{} not acquired", p.id())
        };
        for item in mine {
            assert!(covered.insert(item.clone()), "{item} held twice");
        }
    }
    assert_eq!(covered.len(), 9, "a cover of the set");
    let holders = lock_holders(&admin, &all).await;
    for (i, item) in all.iter().enumerate() {
        assert_eq!(holders[item], format!("m{}", i % 3), "holder of {item}");
    }

    // m2 leaves: the other two divide the whole set again.
    let (c2, p2) = members.pop().unwrap();
    let mut watch_m0 = members[0].1.states();
    p2.finish().await.unwrap();
    within("m0 sees the change", watch_m0.changed())
        .await
        .unwrap();
    wait_for_state(&members[0].1, &items(&[0, 2, 4, 6, 8])).await;
    wait_for_state(&members[1].1, &items(&[1, 3, 5, 7])).await;
    let holders = lock_holders(&admin, &all).await;
    for (i, item) in all.iter().enumerate() {
        assert_eq!(holders[item], format!("m{}", i % 2), "holder of {item}");
    }
    c2.close().await;

    // A member whose session ends fails.
    let (c1, p1) = members.pop().unwrap();
    c1.close().await;
    wait_for_state(&p1, &PartitionState::Failure).await;
    wait_for_state(&members[0].1, &items(&[0, 1, 2, 3, 4, 5, 6, 7, 8])).await;
    drop(p1);
    for (c, p) in members {
        p.finish().await.unwrap();
        c.close().await;
    }
    admin.close().await;
}

/// Issue 11 item 10.4: a partitioner whose hold on an item's lock is lost (here its lock node
/// is deleted behind its back, which is what the lock's `lost()` reports) stops telling its
/// owner it holds the item: it leaves `Acquired` (`Release`), then divides the set again and
/// takes the lock anew. It used to watch only the membership and the connection, and went on
/// reporting `Acquired` for an item nobody held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioner_releases_when_an_item_lock_is_lost() {
    let path = "/recipes/partition-lost";
    let admin = client(655).await;
    admin.delete_recursive(path).await.unwrap();
    let c = client(656).await;
    let all = ["a", "b"];
    let p = SetPartitioner::start(&c, path, "solo", all).await.unwrap();
    let whole = PartitionState::Acquired(vec!["a".to_owned(), "b".to_owned()]);
    wait_for_state(&p, &whole).await;
    let mut states = p.states();
    states.mark_unchanged();

    let lock = zkit::recipe::Lock::new(&admin, &format!("{path}/a")).unwrap();
    let held = lock.contenders().await.unwrap();
    assert_eq!(held.len(), 1, "one holder of a: {held:?}");
    admin
        .delete(&format!("{path}/a/{}", held[0]), None)
        .await
        .unwrap();
    let left = tokio::time::timeout(
        Duration::from_secs(10),
        states.wait_for(|s| !matches!(s, PartitionState::Acquired(_))),
    )
    .await
    .map(|s| s.map(|s| s.clone()));
    assert!(
        matches!(
            left,
            Ok(Ok(PartitionState::Release | PartitionState::Allocating))
        ),
        "still reporting {:?} after the lock of a was lost ({left:?})",
        p.state()
    );
    // It divides again and holds both items, each lock with a live holder node of its own.
    wait_for_state(&p, &whole).await;
    let again = lock.contenders().await.unwrap();
    assert_eq!(again.len(), 1, "one holder of a: {again:?}");
    assert_ne!(again[0], held[0], "a new lock node");
    p.finish().await.unwrap();
    c.close().await;
    admin.close().await;
}

/// Reads events until one satisfies `pred`.
async fn wait_event(cache: &mut TreeCache, what: &str, pred: impl Fn(&TreeEvent) -> bool) {
    within(what, async {
        loop {
            let e = cache.next().await.expect("tree cache ended");
            if pred(&e) {
                return;
            }
        }
    })
    .await;
}

/// The subtree at `root` as the server has it now: path -> data.
async fn server_tree(client: &Client, root: &str) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(path) = stack.pop() {
        let (data, _) = client.get_data(&path).await.unwrap();
        for child in client.get_children(&path).await.unwrap() {
            stack.push(format!("{path}/{child}"));
        }
        out.insert(path, data);
    }
    out
}

fn mirror_tree(cache: &TreeCache) -> BTreeMap<String, Vec<u8>> {
    cache
        .snapshot()
        .into_iter()
        .map(|(p, v)| (p, v.data))
        .collect()
}

fn is_added(path: &'static str) -> impl Fn(&TreeEvent) -> bool {
    move |e| matches!(e, TreeEvent::Added { path: p, .. } if p == path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_cache_mirrors_the_subtree_and_resyncs_after_a_cut() {
    let zk = standalone();
    let writer = client(650).await;
    writer.delete_recursive("/recipes/tree").await.unwrap();
    writer.ensure_path("/recipes/tree/a/b").await.unwrap();
    writer
        .set_data("/recipes/tree/a", b"A", None)
        .await
        .unwrap();
    let proxy = Proxy::start(zk.address(0).unwrap()).await.unwrap();
    let watcher = client_of(&proxy.connect_string(), 651).await;

    let mut cache = TreeCache::start(&watcher, "/recipes/tree").await.unwrap();
    wait_event(&mut cache, "initialized", |e| *e == TreeEvent::Initialized).await;
    assert_eq!(
        mirror_tree(&cache),
        server_tree(&writer, "/recipes/tree").await
    );
    assert_eq!(cache.get("/recipes/tree/a").unwrap().data, b"A");
    assert_eq!(cache.children("/recipes/tree").unwrap(), ["a"]);
    assert_eq!(
        cache.children("/recipes/tree/a/b").unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(cache.children("/recipes/tree/zz"), None);

    // Creates, updates and deletes at depth.
    writer
        .create_with(
            "/recipes/tree/a/b/c/d",
            b"D",
            &zkit::CreateOptions::new(CreateMode::Persistent).create_parents(),
        )
        .await
        .unwrap();
    wait_event(&mut cache, "d added", is_added("/recipes/tree/a/b/c/d")).await;
    assert_eq!(cache.get("/recipes/tree/a/b/c/d").unwrap().data, b"D");
    assert!(cache.get("/recipes/tree/a/b/c").is_some());
    writer
        .set_data("/recipes/tree/a/b/c/d", b"D2", None)
        .await
        .unwrap();
    wait_event(&mut cache, "d updated", |e| {
        matches!(e, TreeEvent::Updated { path, value } if path == "/recipes/tree/a/b/c/d" && value.data == b"D2")
    })
    .await;
    writer.delete_recursive("/recipes/tree/a/b").await.unwrap();
    wait_event(
        &mut cache,
        "b removed",
        |e| matches!(e, TreeEvent::Removed { path, .. } if path == "/recipes/tree/a/b"),
    )
    .await;
    assert!(cache.get("/recipes/tree/a/b/c/d").is_none());
    assert_eq!(
        mirror_tree(&cache),
        server_tree(&writer, "/recipes/tree").await
    );

    // Cut the cache's connection and keep it away while the tree changes.
    let mut states = watcher.state_changes();
    proxy.set_mode(Mode::Refuse);
    proxy.cut();
    assert_eq!(
        within("suspended", states.recv()).await.unwrap(),
        State::Suspended
    );
    writer
        .create_with(
            "/recipes/tree/x/y/z",
            b"Z",
            &zkit::CreateOptions::new(CreateMode::Persistent).create_parents(),
        )
        .await
        .unwrap();
    writer
        .set_data("/recipes/tree/a", b"A2", None)
        .await
        .unwrap();
    writer
        .create("/recipes/tree/a/e", b"E", CreateMode::Persistent)
        .await
        .unwrap();
    writer.delete("/recipes/tree/a/e", None).await.unwrap();
    writer
        .create("/recipes/tree/a/f", b"F", CreateMode::Persistent)
        .await
        .unwrap();
    proxy.set_mode(Mode::Forward);
    wait_event(&mut cache, "resynced", |e| *e == TreeEvent::Resynced).await;
    assert_eq!(watcher.state(), State::Connected);
    assert_eq!(
        mirror_tree(&cache),
        server_tree(&writer, "/recipes/tree").await,
        "the mirror caught up with what happened while away"
    );
    assert_eq!(cache.get("/recipes/tree/a").unwrap().data, b"A2");
    assert_eq!(cache.get("/recipes/tree/x/y/z").unwrap().data, b"Z");
    assert_eq!(cache.children("/recipes/tree/a").unwrap(), ["f"]);

    // Deleting the root empties the mirror; re-creating it fills it again.
    writer.delete_recursive("/recipes/tree").await.unwrap();
    wait_event(
        &mut cache,
        "root removed",
        |e| matches!(e, TreeEvent::Removed { path, .. } if path == "/recipes/tree"),
    )
    .await;
    assert!(cache.snapshot().is_empty());
    writer
        .create("/recipes/tree", b"again", CreateMode::Persistent)
        .await
        .unwrap();
    wait_event(&mut cache, "root re-added", is_added("/recipes/tree")).await;
    assert_eq!(cache.get("/recipes/tree").unwrap().data, b"again");

    watcher.close().await;
    within("stream ends with the session", async {
        while cache.next().await.is_some() {}
    })
    .await;
    writer.close().await;
}

#[tokio::test]
async fn five_contenders_race_for_one_lease_and_one_wins() {
    let mut clients = Vec::new();
    for i in 0..5u64 {
        clients.push(
            zkit::Client::builder(common::standalone().connect_string())
                .seed(900 + i)
                .connect()
                .await
                .unwrap(),
        );
    }
    let mut attempts = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        let c = c.clone();
        attempts.push(tokio::spawn(async move {
            NonBlockingLease::acquire(
                &c,
                "/recipes/lease-race",
                Duration::from_secs(3600),
                &format!("c{i}"),
            )
            .await
            .unwrap()
            .obtained()
        }));
    }
    let mut winners = 0;
    for a in attempts {
        if a.await.unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "exactly one of five holds the lease");
}
