//! The read-write lock, semaphore, multi-lock and leader selector recipes against a real
//! ZooKeeper 3.8: contending clients with shared holder counters (exclusion is asserted at
//! every hold), fencing tokens, try/timeout/cancel leaving no node, and a leader whose
//! connection is cut having its callback cancelled before anyone else leads.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{connect, standalone, within};
use tokio::sync::mpsc;
use zkit::recipe::{Access, LeaderSelector, Lock, MultiLock, ReadWriteLock, Semaphore};
use zkit::Client;
use zkit_tests::proxy::{Mode, Proxy};

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

// ----- read-write lock -----

#[tokio::test]
async fn rwlock_readers_share_and_a_writer_excludes_everyone() {
    let hosts = standalone().connect_string();
    let path = "/recipes/rw-share";
    let mut readers = Vec::new();
    let mut read_guards = Vec::new();
    // Five readers on five clients all hold at once.
    for i in 0..5 {
        let client = seeded(hosts, 200 + i).await;
        let lock = ReadWriteLock::new(&client, path).unwrap();
        read_guards.push(within("reader shares", lock.read()).await.unwrap());
        readers.push((client, lock));
    }
    let writer_client = seeded(hosts, 210).await;
    let writer = ReadWriteLock::new(&writer_client, path).unwrap();
    assert!(writer.try_acquire(Access::Write).await.unwrap().is_none());
    assert!(writer
        .acquire_timeout(Access::Write, Duration::from_millis(200))
        .await
        .unwrap()
        .is_none());
    children_become(&writer_client, path, 5).await;

    // A writer queues behind the readers...
    let waiting = tokio::spawn({
        let writer = writer.clone();
        async move { writer.write().await }
    });
    children_become(&writer_client, path, 6).await;
    // ...and a reader arriving after it queues behind the writer (fair, no starvation).
    let late = seeded(hosts, 211).await;
    let late_lock = ReadWriteLock::new(&late, path).unwrap();
    assert!(late_lock.try_acquire(Access::Read).await.unwrap().is_none());
    let max_reader_token = read_guards.iter().map(|g| g.fencing_token()).max().unwrap();
    // Releasing all but one reader does not let the writer in.
    while read_guards.len() > 1 {
        read_guards.pop().unwrap().release().await.unwrap();
    }
    children_become(&writer_client, path, 2).await;
    assert!(
        !waiting.is_finished(),
        "writer entered with a reader holding"
    );
    read_guards.pop().unwrap().release().await.unwrap();
    let write_guard = within("writer acquires", waiting).await.unwrap().unwrap();
    assert!(write_guard.fencing_token() > max_reader_token);
    // The writer excludes readers and writers.
    assert!(late_lock.try_acquire(Access::Read).await.unwrap().is_none());
    assert!(late_lock
        .try_acquire(Access::Write)
        .await
        .unwrap()
        .is_none());
    let write_token = write_guard.fencing_token();
    write_guard.release().await.unwrap();
    let after = within("reader after writer", late_lock.read())
        .await
        .unwrap();
    assert!(after.fencing_token() > write_token);
    // Curator's node names.
    let name = after.node().rsplit('/').next().unwrap().to_owned();
    assert!(
        name.starts_with("_c_") && name.contains("-__READ__"),
        "{name}"
    );
    after.release().await.unwrap();
    children_become(&late, path, 0).await;
}

#[tokio::test]
async fn rwlock_six_contenders_readers_never_meet_writers() {
    let hosts = standalone().connect_string();
    let path = "/recipes/rw-contend";
    let readers = Arc::new(AtomicUsize::new(0));
    let writers = Arc::new(AtomicUsize::new(0));
    let max_readers = Arc::new(AtomicUsize::new(0));
    let write_tokens = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..6u64 {
        let (readers, writers) = (readers.clone(), writers.clone());
        let (max_readers, write_tokens) = (max_readers.clone(), write_tokens.clone());
        let client = seeded(hosts, 300 + i).await;
        tasks.push(tokio::spawn(async move {
            let lock = ReadWriteLock::new(&client, path).unwrap();
            for round in 0..5u64 {
                // Two of six write in each round, the others read.
                if (i + round) % 3 == 0 {
                    let guard = lock.write().await.unwrap();
                    assert_eq!(writers.fetch_add(1, Ordering::SeqCst), 0, "two writers");
                    assert_eq!(readers.load(Ordering::SeqCst), 0, "writer with readers");
                    write_tokens.lock().unwrap().push(guard.fencing_token());
                    client.sync("/").await.unwrap();
                    assert_eq!(writers.fetch_sub(1, Ordering::SeqCst), 1);
                    guard.release().await.unwrap();
                } else {
                    let guard = lock.read().await.unwrap();
                    let now = readers.fetch_add(1, Ordering::SeqCst) + 1;
                    max_readers.fetch_max(now, Ordering::SeqCst);
                    assert_eq!(writers.load(Ordering::SeqCst), 0, "reader with a writer");
                    client.sync("/").await.unwrap();
                    readers.fetch_sub(1, Ordering::SeqCst);
                    guard.release().await.unwrap();
                }
            }
            client.close().await;
        }));
    }
    for t in tasks {
        within("rw contender finishes", t).await.unwrap();
    }
    let tokens = write_tokens.lock().unwrap().clone();
    assert_eq!(tokens.len(), 10);
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "writers' fencing tokens strictly increase: {tokens:?}"
    );
    let observer = connect(hosts).await;
    let lock = ReadWriteLock::new(&observer, path).unwrap();
    assert_eq!(lock.contenders().await.unwrap(), Vec::<String>::new());
    eprintln!(
        "readers held together at most {}",
        max_readers.load(Ordering::SeqCst)
    );
}

// ----- semaphore -----

#[tokio::test]
async fn semaphore_of_two_among_six_never_over_issues() {
    let hosts = standalone().connect_string();
    let path = "/recipes/sem-six";
    let holders = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..6u64 {
        let (holders, max_seen) = (holders.clone(), max_seen.clone());
        let client = seeded(hosts, 400 + i).await;
        tasks.push(tokio::spawn(async move {
            let sem = Semaphore::new(&client, path, 2).unwrap();
            for _ in 0..4 {
                let lease = sem.acquire().await.unwrap();
                let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                assert!(now <= 2, "{now} leases of 2 held at once");
                max_seen.fetch_max(now, Ordering::SeqCst);
                assert!(!lease.is_lost());
                client.sync("/").await.unwrap();
                client.sync("/").await.unwrap();
                holders.fetch_sub(1, Ordering::SeqCst);
                lease.release().await.unwrap();
            }
            client.close().await;
        }));
    }
    for t in tasks {
        within("semaphore user finishes", t).await.unwrap();
    }
    assert!(max_seen.load(Ordering::SeqCst) >= 1);
    let observer = connect(hosts).await;
    let sem = Semaphore::new(&observer, path, 2).unwrap();
    assert_eq!(sem.leases().await.unwrap(), Vec::<String>::new());
    children_become(&observer, &format!("{path}/locks"), 0).await;
}

#[tokio::test]
async fn semaphore_try_timeout_and_cancel_leave_no_node() {
    let hosts = standalone().connect_string();
    let path = "/recipes/sem-cancel";
    let a = seeded(hosts, 500).await;
    let b = seeded(hosts, 501).await;
    let sa = Semaphore::new(&a, path, 2).unwrap();
    let sb = Semaphore::new(&b, path, 2).unwrap();
    let first = sa.try_acquire().await.unwrap().expect("a free lease");
    let second = within("second lease", sa.acquire()).await.unwrap();
    assert!(second.token() > first.token());
    assert!(sb.try_acquire().await.unwrap().is_none());
    assert!(sb
        .acquire_timeout(Duration::from_millis(200))
        .await
        .unwrap()
        .is_none());
    let leases = format!("{path}/leases");
    let locks = format!("{path}/locks");
    children_become(&a, &leases, 2).await;
    children_become(&a, &locks, 0).await;

    // A blocked acquire holds the internal lock and a third lease node; cancel it.
    let waiting = tokio::spawn({
        let sb = sb.clone();
        async move { sb.acquire().await }
    });
    children_become(&a, &leases, 3).await;
    children_become(&a, &locks, 1).await;
    waiting.abort();
    children_become(&a, &leases, 2).await;
    children_become(&a, &locks, 0).await;

    // A blocked acquire gets the lease released by another client.
    let waiting = tokio::spawn({
        let sb = sb.clone();
        async move { sb.acquire().await }
    });
    children_become(&a, &leases, 3).await;
    first.release().await.unwrap();
    let third = within("lease handed over", waiting).await.unwrap().unwrap();
    assert!(third.token() > second.token());
    assert_eq!(sa.leases().await.unwrap().len(), 2);
    drop(third);
    drop(second);
    children_become(&a, &leases, 0).await;
    assert!(Semaphore::new(&a, path, 0).is_err());
}

/// Issue 11, bug 3: an acquirer whose lease create is retried into a renewed session (the
/// reply lost, the old session expired) holds no internal lock any more: it must fail instead
/// of waiting beside the next acquirer, which would leave both waiting forever.
#[tokio::test]
async fn a_lease_made_after_a_renewal_fails_instead_of_deadlocking() {
    let zk = standalone();
    let hosts = zk.connect_string();
    let path = "/recipes/sem-renewed";
    let leases = format!("{path}/leases");
    let holder = seeded(hosts, 520).await;
    let third = seeded(hosts, 521).await;
    let proxy = Proxy::start(zk.address(0).unwrap()).await.unwrap();
    let renewing = Client::builder(&proxy.connect_string())
        .session_timeout(Duration::from_secs(4))
        .seed(522)
        .renew_expired_session(true)
        .connect()
        .await
        .unwrap();
    let held = Semaphore::new(&holder, path, 1)
        .unwrap()
        .acquire()
        .await
        .unwrap();

    // The lease create goes through (under the internal lock of the first session); its
    // reply, and every later one, is swallowed.
    let mut swallowing = proxy.swallow_replies_after(format!("{leases}/_c_").as_bytes());
    let first_session = renewing.session_id();
    let (id, password) = renewing.session_credentials();
    let acquiring = tokio::spawn({
        let sem = Semaphore::new(&renewing, path, 1).unwrap();
        async move { sem.acquire().await.map(|lease| lease.session_id()) }
    });
    within(
        "the lease create is sent",
        swallowing.wait_for(|m| *m == Mode::SwallowReplies),
    )
    .await
    .unwrap();
    children_become(&holder, &leases, 2).await;
    // Expire that session on the server (its lock and lease nodes go), then let the client
    // back: it renews, and the lost create is retried in the new session.
    let killer = Client::builder(hosts)
        .resume_session(id, &password)
        .connect()
        .await
        .unwrap();
    killer.close().await;
    children_become(&holder, &leases, 1).await;
    proxy.set_mode(Mode::Forward);
    proxy.cut();

    let outcome = within("the renewed acquirer gives up", acquiring)
        .await
        .unwrap();
    assert_eq!(outcome, Err(zkit::Error::SessionExpired));
    assert_ne!(renewing.session_id(), first_session, "the client renewed");
    // Nothing of it is left, and the semaphore still hands over.
    children_become(&holder, &leases, 1).await;
    let next = tokio::spawn({
        let sem = Semaphore::new(&third, path, 1).unwrap();
        async move { sem.acquire().await }
    });
    children_become(&holder, &leases, 2).await;
    held.release().await.unwrap();
    let lease = within("the next acquirer gets the lease", next)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease.session_id(), third.session_id());
    lease.release().await.unwrap();
    renewing.close().await;
}

// ----- multi-lock -----

#[tokio::test]
async fn overlapping_multilocks_never_hold_together() {
    let hosts = standalone().connect_string();
    let holders_b = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..6u64 {
        let holders_b = holders_b.clone();
        let client = seeded(hosts, 600 + i).await;
        tasks.push(tokio::spawn(async move {
            // Overlapping on b, given in different orders: sorting prevents deadlock.
            let paths: &[&str] = match i % 3 {
                0 => &["/recipes/multi/a", "/recipes/multi/b"],
                1 => &["/recipes/multi/c", "/recipes/multi/b"],
                _ => &["/recipes/multi/b", "/recipes/multi/a", "/recipes/multi/c"],
            };
            let multi = MultiLock::new(&client, paths).unwrap();
            for _ in 0..4 {
                let guard = multi.acquire().await.unwrap();
                assert_eq!(
                    holders_b.fetch_add(1, Ordering::SeqCst),
                    0,
                    "two multi-locks sharing b held together"
                );
                assert_eq!(guard.guards().len(), paths.len());
                assert!(!guard.is_lost());
                client.sync("/").await.unwrap();
                assert_eq!(holders_b.fetch_sub(1, Ordering::SeqCst), 1);
                guard.release().await.unwrap();
            }
            client.close().await;
        }));
    }
    for t in tasks {
        within("multi-lock user finishes", t).await.unwrap();
    }
    let observer = connect(hosts).await;
    for p in ["a", "b", "c"] {
        let lock = Lock::new(&observer, &format!("/recipes/multi/{p}")).unwrap();
        assert_eq!(lock.contenders().await.unwrap(), Vec::<String>::new());
    }
}

#[tokio::test]
async fn a_cancelled_or_failed_multilock_releases_what_it_took() {
    let hosts = standalone().connect_string();
    let a = seeded(hosts, 700).await;
    let b = seeded(hosts, 701).await;
    let (pa, pb) = ("/recipes/multi-cancel/a", "/recipes/multi-cancel/b");
    let held_b = Lock::new(&a, pb).unwrap().acquire().await.unwrap();
    let multi = MultiLock::new(&b, &[pb, pa]).unwrap();
    assert_eq!(multi.paths(), [pa, pb]);
    assert!(MultiLock::new(&b, &[pa, pa]).is_err());

    assert!(multi.try_acquire().await.unwrap().is_none());
    children_become(&a, pa, 0).await;
    assert!(multi
        .acquire_timeout(Duration::from_millis(200))
        .await
        .unwrap()
        .is_none());
    children_become(&a, pa, 0).await;
    children_become(&a, pb, 1).await;

    // Blocked on b while holding a: cancelling releases a and removes the node on b.
    let waiting = tokio::spawn({
        let multi = multi.clone();
        async move { multi.acquire().await }
    });
    children_become(&a, pa, 1).await;
    children_become(&a, pb, 2).await;
    waiting.abort();
    children_become(&a, pa, 0).await;
    children_become(&a, pb, 1).await;

    let waiting = tokio::spawn({
        let multi = multi.clone();
        async move { multi.acquire().await }
    });
    children_become(&a, pb, 2).await;
    held_b.release().await.unwrap();
    let both = within("multi-lock acquired", waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(both.fencing_tokens().len(), 2);
    both.release().await.unwrap();
    children_become(&a, pa, 0).await;
    children_become(&a, pb, 0).await;
}

// ----- leader selector -----

#[derive(Debug, PartialEq, Eq)]
enum Term {
    Started(usize),
    Ended(usize),
}

/// Counts a leader out (and reports it) when the callback's future is dropped or finishes.
struct Leading {
    who: usize,
    leaders: Arc<AtomicUsize>,
    events: mpsc::UnboundedSender<Term>,
}

impl Drop for Leading {
    fn drop(&mut self) {
        self.leaders.fetch_sub(1, Ordering::SeqCst);
        let _ = self.events.send(Term::Ended(self.who));
    }
}

#[tokio::test]
async fn one_leader_at_a_time_and_a_cut_leader_is_cancelled() {
    let zk = standalone();
    let path = "/recipes/selector";
    let leaders = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let (tx, mut events) = mpsc::unbounded_channel();
    let mut proxies = Vec::new();
    let mut selectors = Vec::new();
    for who in 0..5usize {
        let proxy = Proxy::start(zk.address(0).unwrap()).await.unwrap();
        let client = seeded(&proxy.connect_string(), 800 + who as u64).await;
        let (leaders, overlaps, tx) = (leaders.clone(), overlaps.clone(), tx.clone());
        let selector = LeaderSelector::builder(&client, path, &format!("p{who}"))
            .unwrap()
            .auto_requeue(true)
            .start(move |ctx| {
                let (leaders, overlaps, events) = (leaders.clone(), overlaps.clone(), tx.clone());
                async move {
                    if leaders.fetch_add(1, Ordering::SeqCst) != 0 {
                        overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    let _leading = Leading {
                        who,
                        leaders,
                        events: events.clone(),
                    };
                    let _ = events.send(Term::Started(who));
                    assert_eq!(ctx.id(), format!("p{who}"));
                    // Lead until cancelled.
                    std::future::pending::<()>().await;
                }
            });
        proxies.push(proxy);
        selectors.push(selector);
    }
    let observer = connect(zk.connect_string()).await;
    children_become(&observer, path, 5).await;

    let mut last_leader = None;
    for cut in 0..3 {
        let Some(Term::Started(leader)) = within("a leader", events.recv()).await else {
            panic!("expected a new leader")
        };
        assert_ne!(Some(leader), last_leader, "requeue elects another");
        assert_eq!(overlaps.load(Ordering::SeqCst), 0, "two leaders at once");
        assert!(selectors[leader].has_leadership());
        if cut == 0 {
            children_become(&observer, path, 5).await;
            let participants = LeaderSelector::participants_of(&observer, path)
                .await
                .unwrap();
            assert_eq!(participants.len(), 5);
            assert_eq!(participants[0].id, format!("p{leader}"));
            assert!(participants[0].is_leader);
            assert_eq!(participants.iter().filter(|p| p.is_leader).count(), 1);
        }
        let told = selectors[0].leader().await.unwrap().unwrap();
        assert_eq!(told.id, format!("p{leader}"));
        // Cut the leader off: its callback must be cancelled while it is still cut off
        // (Suspended counts as lost), so before anyone else can be elected.
        proxies[leader].set_mode(Mode::Refuse);
        proxies[leader].cut();
        assert_eq!(
            within("callback cancelled", events.recv()).await,
            Some(Term::Ended(leader))
        );
        assert!(!selectors[leader].has_leadership());
        assert_eq!(leaders.load(Ordering::SeqCst), 0);
        proxies[leader].set_mode(Mode::Forward);
        last_leader = Some(leader);
    }
    // The next leader, then everyone leaves.
    let Some(Term::Started(_)) = within("a last leader", events.recv()).await else {
        panic!("expected a new leader")
    };
    for s in selectors {
        within("selector closes", s.close()).await;
    }
    assert_eq!(leaders.load(Ordering::SeqCst), 0);
    assert_eq!(overlaps.load(Ordering::SeqCst), 0, "two leaders at once");
    children_become(&observer, path, 0).await;
}

#[tokio::test]
async fn a_selector_without_requeue_leads_once_until_requeued() {
    let hosts = standalone().connect_string();
    let path = "/recipes/selector-once";
    let client = seeded(hosts, 900).await;
    let (tx, mut terms) = mpsc::unbounded_channel();
    let selector = LeaderSelector::start(&client, path, "solo", move |ctx| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(ctx.term());
        }
    })
    .unwrap();
    assert_eq!(within("first term", terms.recv()).await, Some(1));
    // The term ended by returning: the node goes and no new one comes.
    children_become(&client, path, 0).await;
    assert!(selector.requeue());
    assert_eq!(within("second term", terms.recv()).await, Some(2));
    children_become(&client, path, 0).await;
    within("close", selector.close()).await;
    assert!(terms.try_recv().is_err());
}
