//! SASL DIGEST-MD5 against a real ZooKeeper 3.8 that requires it (`enforce.auth.enabled`,
//! `enforce.auth.schemes=sasl`, users in a JAAS `Server` section): operations after a
//! successful exchange, `sasl:<user>` ACLs, a wrong password or unknown user ending in
//! `AuthFailed` without hanging, a client without SASL refused, and a resumed session
//! authenticating again after its connection is cut (and after the server restarts).
//!
//! The server must start: these tests fail (never skip) when ZooKeeper cannot run.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::{init_logging, wait_state, within};
use zkit::{Acl, Client, CreateMode, CreateOptions, Error, Perms, State};
use zkit_tests::proxy::Proxy;
use zkit_tests::ZkServer;

/// The SASL-only server most tests of this binary share: users alice and bob.
fn server() -> &'static ZkServer {
    static SERVER: OnceLock<ZkServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        ZkServer::standalone_sasl(&[("alice", "secret"), ("bob", "hunter2")])
            .expect("a real ZooKeeper requiring SASL must start for this test")
    })
}

fn builder(hosts: &str, user: &str, password: &str) -> zkit::Builder {
    init_logging();
    Client::builder(hosts)
        .session_timeout(Duration::from_secs(6))
        .seed(11)
        .sasl_digest(user, password)
}

async fn connect(hosts: &str, user: &str, password: &str) -> Client {
    within("SASL connect", builder(hosts, user, password).connect())
        .await
        .unwrap_or_else(|e| panic!("connect to {hosts} as {user}: {e}"))
}

/// Only `user` may do anything with the node.
fn only(user: &str) -> Vec<Acl> {
    vec![Acl::new(Perms::ALL, "sasl", user)]
}

async fn identities(client: &Client) -> Vec<String> {
    client
        .who_am_i()
        .await
        .expect("whoAmI")
        .into_iter()
        .map(|i| format!("{}:{}", i.auth_scheme, i.user))
        .collect()
}

#[tokio::test]
async fn authenticated_clients_work_and_sasl_acls_keep_others_out() {
    let zk = server();
    let alice = connect(zk.connect_string(), "alice", "secret").await;
    assert_eq!(alice.state(), State::Connected);
    assert!(
        identities(&alice).await.contains(&"sasl:alice".to_owned()),
        "{:?}",
        identities(&alice).await
    );

    // Plain operations.
    let _ = alice.delete_recursive("/sasl-ops").await;
    alice
        .create("/sasl-ops", b"v1", CreateMode::Persistent)
        .await
        .unwrap();
    alice.set_data("/sasl-ops", b"v2", None).await.unwrap();
    assert_eq!(alice.get_data("/sasl-ops").await.unwrap().0, b"v2");

    // A node only alice may touch.
    let _ = alice.delete("/sasl-alice-only", None).await;
    alice
        .create_with(
            "/sasl-alice-only",
            b"private",
            &CreateOptions::new(CreateMode::Persistent).acl(only("alice")),
        )
        .await
        .unwrap();
    assert_eq!(
        alice.get_data("/sasl-alice-only").await.unwrap().0,
        b"private"
    );
    assert_eq!(
        alice.get_acl("/sasl-alice-only").await.unwrap().0,
        only("alice")
    );

    // Bob is authenticated too, as someone else: refused.
    let bob = connect(zk.connect_string(), "bob", "hunter2").await;
    assert!(identities(&bob).await.contains(&"sasl:bob".to_owned()));
    assert_eq!(bob.get_data("/sasl-ops").await.unwrap().0, b"v2");
    assert!(
        matches!(
            bob.get_data("/sasl-alice-only").await,
            Err(Error::NoAuth { .. })
        ),
        "bob must not read alice's node"
    );
    assert!(matches!(
        bob.set_data("/sasl-alice-only", b"x", None).await,
        Err(Error::NoAuth { .. })
    ));

    alice.delete("/sasl-alice-only", None).await.unwrap();
    alice.delete("/sasl-ops", None).await.unwrap();
    bob.close().await;
    alice.close().await;
}

#[tokio::test]
async fn a_wrong_password_ends_in_auth_failed_without_hanging() {
    let zk = server();
    // connect() fails with AuthFailed (not a timeout: well within the session timeout).
    let started = tokio::time::Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        builder(zk.connect_string(), "alice", "wrong").connect(),
    )
    .await
    .expect("a refused password must not hang connect()");
    assert!(
        matches!(result, Err(Error::AuthFailed)),
        "expected AuthFailed, got {:?}",
        result.map(|_| ())
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );

    // An unknown user, with a client that does not wait: the state says so, requests fail.
    // Its password must be no known user's: ZooKeeper 3.8.0's server shares one SASL callback
    // handler between connections, and for a user it does not know it looks up the password
    // of the user named last (on any connection), so "mallory" with alice's password would
    // be let in as `sasl:mallory` (seen with Debian's 3.8.0).
    let client = builder(zk.connect_string(), "mallory", "not-a-password")
        .build()
        .unwrap();
    wait_state(&client, State::AuthFailed).await;
    assert!(client.is_finished());
    let got = within("a request after AuthFailed", client.get_data("/")).await;
    assert!(matches!(got, Err(Error::AuthFailed)), "{got:?}");
    assert!(matches!(
        within("wait_connected after AuthFailed", client.wait_connected()).await,
        Err(Error::AuthFailed)
    ));
    client.close().await;
}

/// The server requires SASL: a client without it gets no data (its connection is closed with
/// SESSIONCLOSEDREQUIRESASLAUTH), and fails rather than hangs.
#[tokio::test]
async fn a_client_without_sasl_gets_nothing() {
    let zk = server();
    init_logging();
    let client = Client::builder(zk.connect_string())
        .session_timeout(Duration::from_secs(4))
        .seed(3)
        .build()
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(20), client.get_data("/"))
        .await
        .expect("a refused request must not hang");
    assert!(got.is_err(), "read without SASL succeeded: {got:?}");
    client.close().await;
}

#[tokio::test]
async fn a_resumed_session_authenticates_again_after_a_cut() {
    let zk = server();
    let proxy = Proxy::start(zk.address(0).unwrap()).await.unwrap();
    let client = connect(&proxy.connect_string(), "alice", "secret").await;
    let session = client.session_id();
    let _ = client.delete("/sasl-cut", None).await;
    client
        .create_with(
            "/sasl-cut",
            b"mine",
            &CreateOptions::new(CreateMode::Ephemeral).acl(only("alice")),
        )
        .await
        .unwrap();
    let (_, _, watcher) = client.get_data_watch("/sasl-cut").await.unwrap();

    for round in 0..3 {
        proxy.cut();
        wait_state(&client, State::Suspended).await;
        wait_state(&client, State::Connected).await;
        assert_eq!(client.session_id(), session, "round {round}: same session");
        // The server refuses every request of an unauthenticated connection, and only
        // alice may read the node: reading it proves the new connection authenticated.
        assert_eq!(
            within("read after reconnect", client.get_data("/sasl-cut"))
                .await
                .unwrap()
                .0,
            b"mine",
            "round {round}"
        );
        assert!(identities(&client).await.contains(&"sasl:alice".to_owned()));
    }

    // The watch set before the cuts was restored on the authenticated connection.
    let other = connect(zk.connect_string(), "alice", "secret").await;
    other.set_data("/sasl-cut", b"changed", None).await.unwrap();
    let event = within("the restored watch fires", watcher).await;
    assert_eq!(event.event_type, zkit::EventType::NodeDataChanged);
    other.close().await;
    client.close().await;
}

/// A server restart (same data, same port) within the session timeout: the client comes
/// back to its session and authenticates again with the new server process.
#[tokio::test]
async fn a_resumed_session_authenticates_again_after_a_server_restart() {
    init_logging();
    let zk = ZkServer::standalone_sasl(&[("alice", "secret")])
        .expect("a real ZooKeeper requiring SASL must start for this test");
    let client = connect(zk.connect_string(), "alice", "secret").await;
    let session = client.session_id();
    client
        .create_with(
            "/sasl-restart",
            b"kept",
            &CreateOptions::new(CreateMode::Persistent).acl(only("alice")),
        )
        .await
        .unwrap();
    zk.kill(0).unwrap();
    wait_state(&client, State::Suspended).await;
    tokio::task::spawn_blocking({
        let dir = zk.dir().to_owned();
        move || {
            // `restart` blocks while the JVM starts; keep the runtime free meanwhile.
            let status = std::process::Command::new(zkit_tests::zk_script())
                .args(["restart", &dir.to_string_lossy(), "1"])
                .status()
                .expect("run scripts/zk restart");
            assert!(status.success(), "scripts/zk restart failed: {status}");
        }
    })
    .await
    .unwrap();
    wait_state(&client, State::Connected).await;
    assert_eq!(
        client.session_id(),
        session,
        "the session survived the restart"
    );
    assert_eq!(
        within("read after restart", client.get_data("/sasl-restart"))
            .await
            .unwrap()
            .0,
        b"kept"
    );
    assert!(identities(&client).await.contains(&"sasl:alice".to_owned()));
    client.close().await;
}
