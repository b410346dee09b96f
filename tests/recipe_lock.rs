//! The lock recipe against a real ZooKeeper 3.8: mutual exclusion among contending clients,
//! fencing tokens, a holder whose session is expired on the server, a create whose reply is
//! lost, try/timeout/cancel, and Kazoo naming.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{connect, standalone, within};
use zkit::recipe::{Lock, LockNaming};
use zkit::{Client, State};
use zkit_tests::proxy::{Mode, Proxy};

#[tokio::test]
async fn five_contenders_never_hold_the_lock_together() {
    let hosts = standalone().connect_string();
    let holders = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..5u64 {
        let holders = holders.clone();
        let tokens = tokens.clone();
        let client = Client::builder(hosts)
            .seed(100 + i)
            .connect()
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            let lock = Lock::new(&client, "/recipes/lock-five").unwrap();
            for _ in 0..6 {
                let guard = lock.acquire().await.unwrap();
                assert_eq!(
                    holders.fetch_add(1, Ordering::SeqCst),
                    0,
                    "two holders at once"
                );
                tokens.lock().unwrap().push(guard.fencing_token());
                // Hold it across a real round trip so overlaps would show.
                client.sync("/").await.unwrap();
                assert_eq!(holders.fetch_sub(1, Ordering::SeqCst), 1);
                guard.release().await.unwrap();
            }
            client.close().await;
        }));
    }
    for t in tasks {
        within("contender finishes", t).await.unwrap();
    }
    let tokens = tokens.lock().unwrap().clone();
    assert_eq!(tokens.len(), 30);
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "fencing tokens strictly increase: {tokens:?}"
    );
    let observer = connect(hosts).await;
    let lock = Lock::new(&observer, "/recipes/lock-five").unwrap();
    assert_eq!(
        lock.contenders().await.unwrap(),
        Vec::<String>::new(),
        "no node left behind"
    );
}

#[tokio::test]
async fn try_acquire_timeout_and_cancel_leave_no_node() {
    let hosts = standalone().connect_string();
    let a = connect(hosts).await;
    let b = connect(hosts).await;
    let la = Lock::new(&a, "/recipes/lock-try").unwrap();
    let lb = Lock::new(&b, "/recipes/lock-try").unwrap();
    let held = la.try_acquire().await.unwrap().expect("free lock is taken");
    assert!(lb.try_acquire().await.unwrap().is_none());
    assert!(lb
        .acquire_timeout(Duration::from_millis(300))
        .await
        .unwrap()
        .is_none());
    // Cancel a blocking acquire by dropping it once its node exists.
    let mut count = a.get_children_watch("/recipes/lock-try").await.unwrap().1;
    let waiting = tokio::spawn({
        let lb = lb.clone();
        async move { lb.acquire().await }
    });
    within("contender node appears", &mut count).await;
    waiting.abort();
    // The background delete removes it; wait for the children to drop back to one.
    loop {
        let (children, watch) = a.get_children_watch("/recipes/lock-try").await.unwrap();
        if children.len() == 1 {
            break;
        }
        within("cancelled node removed", watch).await;
    }
    assert_eq!(lb.contenders().await.unwrap().len(), 1);
    held.release().await.unwrap();
    let g = within("lock free again", lb.acquire()).await.unwrap();
    assert!(g.fencing_token() > 0);
}

#[tokio::test]
async fn an_expired_holder_is_told_before_another_acquires() {
    let zk = standalone();
    let proxy = Proxy::start(zk.address(0).unwrap()).await.unwrap();
    let holder = connect(&proxy.connect_string()).await;
    let rival = connect(zk.connect_string()).await;
    let guard = Lock::new(&holder, "/recipes/lock-expiry")
        .unwrap()
        .acquire()
        .await
        .unwrap();
    let first_token = guard.fencing_token();
    let rival_lock = Lock::new(&rival, "/recipes/lock-expiry").unwrap();
    let contender = tokio::spawn(async move { rival_lock.acquire().await });

    // Expire the holder's session for real while it is cut off.
    let (id, password) = holder.session_credentials();
    proxy.set_mode(Mode::Refuse);
    proxy.cut();
    within("holder notices", guard.lost()).await;
    assert!(guard.is_lost(), "Suspended already counts as lost");
    let killer = Client::builder(zk.connect_string())
        .resume_session(id, &password)
        .connect()
        .await
        .unwrap();
    killer.close().await;

    let rival_guard = within("rival acquires", contender).await.unwrap().unwrap();
    assert!(rival_guard.fencing_token() > first_token);
    assert!(guard.is_lost());
    proxy.set_mode(Mode::Forward);
    within(
        "holder learns of expiry",
        holder.wait_for_state(|s| s == State::Lost),
    )
    .await;
}

#[tokio::test]
async fn a_lost_create_reply_leaves_no_orphan_and_no_deadlock() {
    let zk = standalone();
    let proxy = Proxy::start(zk.address(0).unwrap()).await.unwrap();
    let client = connect(&proxy.connect_string()).await;
    let observer = connect(zk.connect_string()).await;
    observer
        .ensure_path("/recipes/lock-lost-reply")
        .await
        .unwrap();
    let (_, appeared) = observer
        .get_children_watch("/recipes/lock-lost-reply")
        .await
        .unwrap();

    proxy.set_mode(Mode::SwallowReplies);
    let lock = Lock::new(&client, "/recipes/lock-lost-reply").unwrap();
    let acquiring = tokio::spawn({
        let lock = lock.clone();
        async move { lock.acquire().await }
    });
    // The create applied on the server; its reply is swallowed. Cut the connection.
    within("contender node created", appeared).await;
    proxy.set_mode(Mode::Forward);
    proxy.cut();

    let guard = within("acquire completes after reconnect", acquiring)
        .await
        .unwrap()
        .unwrap();
    let contenders = lock.contenders().await.unwrap();
    assert_eq!(contenders.len(), 1, "one node, no orphan: {contenders:?}");
    assert!(guard.node().ends_with(&contenders[0]));
    guard.release().await.unwrap();
    // Nobody is stuck: another client takes it at once.
    let other = Lock::new(&observer, "/recipes/lock-lost-reply").unwrap();
    assert!(other.try_acquire().await.unwrap().is_some());
}

#[tokio::test]
async fn kazoo_naming_names_nodes_like_kazoo() {
    let client = connect(standalone().connect_string()).await;
    let lock = Lock::new(&client, "/recipes/lock-kazoo")
        .unwrap()
        .naming(LockNaming::Kazoo);
    let guard = lock.acquire().await.unwrap();
    let name = guard.node().rsplit('/').next().unwrap().to_owned();
    let (guid, seq) = name.split_once("__lock__").expect("kazoo layout");
    assert_eq!(guid.len(), 32);
    assert!(guid.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(seq.len(), 10);
    guard.release().await.unwrap();
}

/// Issue 11, bug 1: a release whose future is dropped while the client is offline (as a
/// `timeout(d, guard.release())` does) must still delete the node once the client is back in
/// the same session; the lock must not stay held until the holder's client closes.
#[tokio::test]
async fn a_release_cancelled_while_offline_still_frees_the_lock() {
    let zk = standalone();
    let path = "/recipes/lock-cancelled-release";
    let proxy = Proxy::start(zk.address(0).unwrap()).await.unwrap();
    let holder = connect(&proxy.connect_string()).await;
    let rival = connect(zk.connect_string()).await;
    let guard = Lock::new(&holder, path).unwrap().acquire().await.unwrap();
    let node = guard.node().to_owned();
    let session = holder.session_id();

    // Offline: the delete cannot reach the server.
    proxy.set_mode(Mode::Refuse);
    proxy.cut();
    within(
        "holder suspended",
        holder.wait_for_state(|s| s == State::Suspended),
    )
    .await;
    // Start the release, then drop it before it can finish.
    {
        let mut release = std::pin::pin!(guard.release());
        tokio::select! {
            biased;
            r = &mut release => panic!("a release finished while offline: {r:?}"),
            () = std::future::ready(()) => {}
        }
    }
    proxy.set_mode(Mode::Forward);
    within(
        "holder reconnects",
        holder.wait_for_state(|s| s == State::Connected),
    )
    .await;
    assert_eq!(holder.session_id(), session, "the same, live session");

    // The node goes although the holder neither retries nor closes ...
    loop {
        let (stat, gone) = rival.exists_watch(&node).await.unwrap();
        if stat.is_none() {
            break;
        }
        within("the cancelled release's node is deleted", gone).await;
    }
    // ... so another contender takes the lock while the holder's session lives on.
    let rival_guard = within("rival acquires", Lock::new(&rival, path).unwrap().acquire())
        .await
        .unwrap();
    assert_eq!(holder.state(), State::Connected);
    assert_eq!(holder.session_id(), session);
    rival_guard.release().await.unwrap();
    holder.close().await;
}

/// A holder whose client declared `Lost` on its own timer while the old session is still
/// alive on the server (another handle kept it alive until then) renews; the lock node goes
/// with the session that owned it (the renewing client closes it), whether or not
/// `delete_stale_recipe_nodes` is set; the release after the renewal returns, and the next
/// contender acquires.
#[tokio::test]
async fn a_renewed_client_closes_its_old_session_first_so_its_lock_node_goes_with_it() {
    for delete_stale in [false, true] {
        let zk = standalone();
        let path = format!("/locks/stale-{delete_stale}");
        let proxy = Proxy::start(zk.address(0).unwrap()).await.unwrap();
        let holder = Client::builder(&proxy.connect_string())
            .session_timeout(Duration::from_secs(4))
            .renew_expired_session(true)
            .delete_stale_recipe_nodes(delete_stale)
            .seed(61)
            .connect()
            .await
            .unwrap();
        let guard = Lock::new(&holder, &path).unwrap().acquire().await.unwrap();
        let node = guard.node().to_owned();
        let (old_session, password) = holder.session_credentials();
        // The holder loses its server; another handle keeps the old session alive.
        proxy.set_mode(Mode::Refuse);
        proxy.cut();
        let keeper_proxy = Proxy::start(zk.address(0).unwrap()).await.unwrap();
        let keeper = Client::builder(&keeper_proxy.connect_string())
            .session_timeout(Duration::from_secs(4))
            .resume_session(old_session, &password)
            .connect()
            .await
            .unwrap();
        assert_eq!(keeper.session_id(), old_session);
        within(
            "the holder's own timer",
            holder.wait_for_state(|s| s == State::Lost),
        )
        .await;
        // The keeper goes quiet (the session lives on the server until it times out) and
        // does not fight the holder for the session.
        keeper_proxy.set_mode(Mode::Refuse);
        keeper_proxy.cut();
        proxy.set_mode(Mode::Forward);
        within(
            "a new session",
            holder.wait_for_state(|s| s == State::Connected),
        )
        .await;
        assert_ne!(holder.session_id(), old_session);
        guard.release().await.unwrap();
        // The renewing client closed the old session (or the server expired it): the node
        // goes with it, never deleted from the new session unless told to.
        let observer = connect(zk.connect_string()).await;
        loop {
            let (stat, gone) = observer.exists_watch(&node).await.unwrap();
            if stat.is_none() {
                break;
            }
            within("the old session's node goes with its session", gone).await;
        }
        let next = within(
            "the next holder",
            Lock::new(&observer, &path).unwrap().acquire(),
        )
        .await
        .unwrap();
        next.release().await.unwrap();
        keeper.close().await;
        observer.close().await;
        holder.close().await;
    }
}
