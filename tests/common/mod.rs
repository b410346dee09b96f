//! Helpers shared by the real-server client tests: one standalone ZooKeeper per test binary
//! (stopped by the fixture's watchdog when the binary exits) and a chroot per test.

#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::Duration;

use zkit::{Client, State};
use zkit_tests::ZkServer;

/// The standalone server this test binary shares.
pub fn standalone() -> &'static ZkServer {
    static SERVER: OnceLock<ZkServer> = OnceLock::new();
    SERVER
        .get_or_init(|| ZkServer::standalone().expect("a real ZooKeeper must start for this test"))
}

/// Logs to the test's output when `RUST_LOG` is set (e.g. `RUST_LOG=zkit=debug`).
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A client of `hosts` with a short session timeout and a fixed seed.
pub async fn connect(hosts: &str) -> Client {
    init_logging();
    Client::builder(hosts)
        .session_timeout(Duration::from_secs(4))
        .seed(7)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {hosts}: {e}"))
}

/// The 3-node ensemble this test binary shares.
pub fn ensemble() -> &'static ZkServer {
    static SERVER: OnceLock<ZkServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        ZkServer::ensemble(3).expect("a real 3-node ZooKeeper ensemble must start for this test")
    })
}

/// A client of `zk`, rooted at a fresh `/test-name` chroot.
pub async fn chrooted(zk: &ZkServer, name: &str) -> Client {
    let hosts = zk.connect_string();
    let root = connect(hosts).await;
    let chroot = format!("/{name}");
    root.delete_recursive(&chroot).await.expect("clean chroot");
    root.ensure_path(&chroot).await.expect("create chroot");
    root.close().await;
    connect(&format!("{hosts}{chroot}")).await
}

/// Waits for the next transition into `want`, failing on any terminal state first.
pub async fn wait_state(client: &Client, want: State) {
    let got = tokio::time::timeout(
        Duration::from_secs(30),
        client.wait_for_state(|s| s == want || (s.is_terminal() && want != s)),
    )
    .await
    .unwrap_or_else(|_| panic!("no {want} within 30 s (state {})", client.state()));
    assert_eq!(got, want);
}

/// Bounds a wait in a test: a missing event fails with `what` instead of hanging.
pub async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within 30 s"))
}
