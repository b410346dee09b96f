//! Real mode's fault proxy against a plain TCP echo server: one test per fault kind.
//!
//! Assertions are on order and on the proxy's counters (events), never on an upper bound of
//! wall-clock time: "not delivered yet" is checked while the fault is still in force, and
//! latency only as a lower bound the proxy guarantees by construction.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout, Instant};
use zkit_sim::real::proxy::{Direction, Intercept, Mode, Proxy, ProxyHandle, Stats};

/// An echo server; counts the connections it accepted.
async fn echo_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, accepted)
}

async fn setup() -> (Proxy, ProxyHandle, Arc<AtomicUsize>) {
    let (echo, accepted) = echo_server().await;
    let proxy = Proxy::start("test", echo).await.expect("proxy");
    let handle = proxy.handle();
    (proxy, handle, accepted)
}

async fn connect(h: &ProxyHandle) -> TcpStream {
    TcpStream::connect(h.addr())
        .await
        .expect("connect to proxy")
}

/// Reads exactly `n` bytes (within 10 s, else fails).
async fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    timeout(Duration::from_secs(10), s.read_exact(&mut buf))
        .await
        .expect("bytes within 10 s")
        .expect("read");
    buf
}

/// Asserts nothing can be read for a while (the fault is in force throughout).
async fn assert_nothing(s: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 64];
    if let Ok(r) = timeout(Duration::from_millis(300), s.read(&mut buf)).await {
        panic!("{what}: read returned {r:?} ({:?})", &buf[..]);
    }
}

/// Polls the proxy's counters until `pred` holds (10 s at most).
async fn until(h: &ProxyHandle, what: &str, pred: impl Fn(&Stats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pred(&h.stats()) {
        assert!(Instant::now() < deadline, "{what}: stats {:?}", h.stats());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Asserts the connection is closed (EOF or reset) within 10 s.
async fn assert_closed(s: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 64];
    match timeout(Duration::from_secs(10), s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!("{what}: expected a close, read {:?}", &buf[..n]),
        Err(_) => panic!("{what}: still open after 10 s"),
    }
}

#[tokio::test]
async fn passes_bytes_both_ways() {
    let (_p, h, accepted) = setup().await;
    let mut s = connect(&h).await;
    s.write_all(b"hello").await.expect("write");
    assert_eq!(read_n(&mut s, 5).await, b"hello");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    let st = h.stats();
    assert_eq!((st.delivered, st.accepted), ([5, 5], 1));
}

#[tokio::test]
async fn hold_delivers_in_order_after_release() {
    let (_p, h, _) = setup().await;
    let mut s = connect(&h).await;
    s.write_all(b"0").await.expect("write");
    assert_eq!(read_n(&mut s, 1).await, b"0");
    h.set_mode(Direction::Up, Mode::Hold);
    for chunk in [b"a", b"b", b"c"] {
        s.write_all(chunk).await.expect("write");
        // One chunk at a time through the proxy's reader, so order is tested across chunks.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    until(&h, "three bytes held", |st| st.held[0] == 3).await;
    assert_nothing(&mut s, "held bytes reached the server before release").await;
    assert_eq!(h.stats().delivered[0], 1);
    h.heal();
    assert_eq!(read_n(&mut s, 3).await, b"abc");
    // Holding the way back works the same.
    h.set_mode(Direction::Down, Mode::Hold);
    s.write_all(b"xyz").await.expect("write");
    until(&h, "echo held", |st| st.held[1] == 3).await;
    assert_nothing(&mut s, "held echo delivered before release").await;
    h.set_mode(Direction::Down, Mode::Pass);
    assert_eq!(read_n(&mut s, 3).await, b"xyz");
}

#[tokio::test]
async fn partition_drops_and_heal_closes_the_damaged_connection() {
    let (_p, h, accepted) = setup().await;
    let mut s = connect(&h).await;
    s.write_all(b"1").await.expect("write");
    assert_eq!(read_n(&mut s, 1).await, b"1");
    h.partition();
    s.write_all(b"lost").await.expect("write");
    until(&h, "bytes dropped", |st| st.dropped[0] == 4).await;
    assert_nothing(&mut s, "a partitioned link delivered").await;
    assert_eq!(h.stats().delivered, [1, 1]);
    // A connection opened during the partition never reaches the server.
    let mut during = connect(&h).await;
    during.write_all(b"hi").await.expect("write");
    until(&h, "new connection's bytes dropped", |st| {
        st.dropped[0] == 6
    })
    .await;
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "no upstream connection");
    h.heal();
    // Both lost bytes, so both are closed rather than resumed with a hole in the stream.
    assert_closed(&mut s, "damaged connection after heal").await;
    assert_closed(&mut during, "connection opened in the partition").await;
    // New connections pass again.
    let mut fresh = connect(&h).await;
    fresh.write_all(b"ok").await.expect("write");
    assert_eq!(read_n(&mut fresh, 2).await, b"ok");
}

#[tokio::test]
async fn one_way_partition_drops_only_that_direction() {
    let (_p, h, _) = setup().await;
    let mut s = connect(&h).await;
    h.set_mode(Direction::Down, Mode::Drop);
    s.write_all(b"ping").await.expect("write");
    until(&h, "request delivered, echo dropped", |st| {
        st.delivered[0] == 4 && st.dropped[1] == 4
    })
    .await;
    assert_nothing(&mut s, "echo crossed a dropped direction").await;
}

#[tokio::test]
async fn latency_delays_at_least_the_amount_and_keeps_order() {
    let (_p, h, _) = setup().await;
    let mut s = connect(&h).await;
    let latency = Duration::from_millis(300);
    h.set_latency(Direction::Up, latency);
    let start = Instant::now();
    s.write_all(b"a").await.expect("write");
    s.write_all(b"b").await.expect("write");
    assert_eq!(read_n(&mut s, 2).await, b"ab");
    assert!(
        start.elapsed() >= latency,
        "delivered after {:?}, latency {latency:?}",
        start.elapsed()
    );
    // Latency on the way back adds up.
    h.set_latency(Direction::Down, latency);
    let start = Instant::now();
    s.write_all(b"c").await.expect("write");
    assert_eq!(read_n(&mut s, 1).await, b"c");
    assert!(start.elapsed() >= 2 * latency, "{:?}", start.elapsed());
}

#[tokio::test]
async fn close_all_resets_open_connections_only() {
    let (_p, h, _) = setup().await;
    let mut a = connect(&h).await;
    a.write_all(b"x").await.expect("write");
    assert_eq!(read_n(&mut a, 1).await, b"x");
    h.close_all();
    assert_closed(&mut a, "open connection after close_all").await;
    until(&h, "counted", |st| st.closed_by_proxy == 1).await;
    let mut b = connect(&h).await;
    b.write_all(b"y").await.expect("write");
    assert_eq!(read_n(&mut b, 1).await, b"y");
}

#[tokio::test]
async fn refusing_closes_new_connections_without_reaching_the_server() {
    let (_p, h, accepted) = setup().await;
    h.set_refusing(true);
    let mut s = connect(&h).await;
    assert_closed(&mut s, "refused connection").await;
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
    h.set_refusing(false);
    let mut s = connect(&h).await;
    s.write_all(b"z").await.expect("write");
    assert_eq!(read_n(&mut s, 1).await, b"z");
}

#[tokio::test]
async fn election_hello_announces_the_reverse_proxy() {
    // The upstream records what arrives.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let upstream = listener.local_addr().expect("addr");
    let advertise: SocketAddr = "127.0.0.1:4321".parse().expect("addr");
    let proxy = Proxy::start_with(
        "election",
        upstream,
        Some(Intercept::ElectionHello { advertise }),
    )
    .await
    .expect("proxy");
    let mut s = TcpStream::connect(proxy.addr()).await.expect("connect");
    let real = b"127.0.0.1:65000";
    let mut hello = Vec::new();
    hello.extend_from_slice(&(-65535i64).to_be_bytes());
    hello.extend_from_slice(&3i64.to_be_bytes());
    hello.extend_from_slice(&(real.len() as i32).to_be_bytes());
    hello.extend_from_slice(real);
    hello.extend_from_slice(b"after");
    s.write_all(&hello).await.expect("write");
    let (mut got, _) = listener.accept().await.expect("accept");
    let want_addr = advertise.to_string();
    let mut want = Vec::new();
    want.extend_from_slice(&(-65535i64).to_be_bytes());
    want.extend_from_slice(&3i64.to_be_bytes());
    want.extend_from_slice(&(want_addr.len() as i32).to_be_bytes());
    want.extend_from_slice(want_addr.as_bytes());
    want.extend_from_slice(b"after");
    let mut buf = vec![0u8; want.len()];
    timeout(Duration::from_secs(10), got.read_exact(&mut buf))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(buf, want);
}

#[tokio::test]
async fn connect_retry_waits_for_an_upstream_that_listens_late() {
    // A port nobody listens on yet.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let upstream = SocketAddr::from(([127, 0, 0, 1], port));
    let proxy = Proxy::start("late", upstream).await.expect("proxy");
    let h = proxy.handle();

    // Without retry, the accepted connection is closed at once.
    let mut s = connect(&h).await;
    assert_closed(&mut s, "no upstream, no retry").await;

    h.set_connect_retry(Duration::from_secs(30));
    let mut s = connect(&h).await;
    s.write_all(b"early").await.expect("write");
    // Still retrying: nothing came back and the connection is open.
    assert_nothing(&mut s, "before the upstream listens").await;
    let listener = TcpListener::bind(upstream).await.expect("bind late");
    let (mut server, _) = listener.accept().await.expect("accept");
    let mut buf = [0u8; 5];
    server.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"early");
    server.write_all(b"late").await.expect("write");
    assert_eq!(read_n(&mut s, 4).await, b"late");
}
