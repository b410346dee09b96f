//! Recipes reading back after a lost reply, on the replicated ensemble inside turmoil: a
//! write's reply is swallowed (the write applied), and the client's only way back is a
//! follower whose link to the leader is held, so it still serves the tree from before that
//! write. A recipe that reads its outcome there without a `sync` sees the write as not
//! applied: a counter increments twice, a queue entry is deleted and handed to nobody, a
//! consumed locking-queue entry reads as not consumed, an obtained lease as not obtained.
//! Each test asserts the true outcome.

mod ensemble_common;

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ensemble_common::*;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use zkit::connector::{BoxStream, ConnectFuture, Connector};
use zkit::recipe::{Counter, LockingQueue, NonBlockingLease, Queue};
use zkit::Client;
use zkit_sim::ensemble::{Ensemble, EnsembleConfig};

/// The opcodes of requests that change the tree (create, delete, setData, setACL, multi,
/// create2, createContainer, createTTL).
const WRITES: [i32; 8] = [1, 2, 5, 7, 14, 15, 19, 21];

/// What the test's connector shares with the simulation.
struct Shared {
    /// The only server reachable before the reply is lost.
    before: String,
    /// The only server reachable after: its link to `leader` is held from the moment the
    /// write is sent, so it serves the tree from before the write.
    after: String,
    /// The leader.
    leader: String,
    /// A write whose frame contains this loses its reply (once armed).
    marker: Vec<u8>,
    /// Set by the simulation once the setup is done.
    armed: AtomicBool,
    /// Set when the write was sent.
    fired: AtomicBool,
}

/// Connects over turmoil to one server at a time and loses the reply of one write (see
/// [`Shared`]).
#[derive(Clone)]
struct LosingConnector(Arc<Shared>);

impl Connector for LosingConnector {
    fn connect<'a>(&'a self, addr: &'a str) -> ConnectFuture<'a> {
        Box::pin(async move {
            let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
            let allowed = if self.0.fired.load(Ordering::SeqCst) {
                &self.0.after
            } else {
                &self.0.before
            };
            if host != allowed {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "not the server this test allows",
                ));
            }
            let inner = turmoil::net::TcpStream::connect(addr).await?;
            Ok(Box::new(LosingStream {
                inner,
                shared: self.0.clone(),
                sent: Vec::new(),
                handshake: true,
                swallow: false,
            }) as BoxStream)
        })
    }
}

/// A stream that parses the frames the client sends and, after the marked write, drops
/// everything the server sends.
struct LosingStream {
    inner: turmoil::net::TcpStream,
    shared: Arc<Shared>,
    /// Bytes sent that do not make a whole frame yet.
    sent: Vec<u8>,
    /// The first frame (the handshake, which has no request header) is still ahead.
    handshake: bool,
    swallow: bool,
}

impl LosingStream {
    fn inspect(&mut self, bytes: &[u8]) {
        self.sent.extend_from_slice(bytes);
        loop {
            let Some(len) = self.sent.get(..4) else {
                return;
            };
            let len = i32::from_be_bytes(len.try_into().unwrap_or_default()) as usize;
            if self.sent.len() < 4 + len {
                return;
            }
            let frame: Vec<u8> = self.sent.drain(..4 + len).skip(4).collect();
            if std::mem::take(&mut self.handshake) || frame.len() < 8 {
                continue;
            }
            let op = i32::from_be_bytes(frame[4..8].try_into().unwrap_or_default());
            let marked = frame
                .windows(self.shared.marker.len())
                .any(|w| w == self.shared.marker.as_slice());
            if WRITES.contains(&op)
                && marked
                && self.shared.armed.load(Ordering::SeqCst)
                && !self.shared.fired.swap(true, Ordering::SeqCst)
            {
                self.swallow = true;
                turmoil::hold(self.shared.leader.as_str(), self.shared.after.as_str());
            }
        }
    }
}

impl AsyncRead for LosingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.swallow {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        let mut scratch = [0u8; 4096];
        loop {
            let mut sink = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut sink) {
                // End of stream: pass it on.
                Poll::Ready(Ok(())) if sink.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
        }
    }
}

impl AsyncWrite for LosingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.inspect(&buf[..n]);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Notes that the setup is done and waits until the simulation has armed the connector.
async fn ready(log: &Log) {
    note(log, "c", "ready".to_owned());
    while count(log, "sim: armed") == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs `scenario` on a client of a 3-server ensemble: it does its setup on follower A, calls
/// [`ready`], then makes the write that carries `marker`. That write applies but its reply
/// is lost; the client can then only reach follower B, whose link to the leader is held
/// from the moment the write is sent until 500 ms after the client got to B. Returns the log once the scenario noted `final`.
fn lost_reply_on_lagging_follower<F, Fut>(seed: u64, marker: &str, scenario: F) -> Vec<String>
where
    F: FnOnce(Client, Log) -> Fut + 'static,
    Fut: Future<Output = zkit::Result<()>> + 'static,
{
    let _serial = serial();
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let ens = Ensemble::new(EnsembleConfig {
        seed,
        // The held follower keeps serving.
        sync_limit: 15, // ticks of 2 s: 30 s
        ..EnsembleConfig::default()
    });
    let mut sim = sim(seed, 90);
    ens.register(&mut sim);
    assert!(step_until(&mut sim, Duration::from_secs(10), || ens.converged()));
    let leader = ens.leader().expect("leader");
    let followers: Vec<u8> = (1..=3).filter(|&i| i != leader).collect();
    let (on, behind) = (followers[0], followers[1]);
    let shared = Arc::new(Shared {
        before: Ensemble::host(on),
        after: Ensemble::host(behind),
        leader: Ensemble::host(leader),
        marker: marker.as_bytes().to_vec(),
        armed: AtomicBool::new(false),
        fired: AtomicBool::new(false),
    });
    let hosts = ens.connect_string();
    let connector = LosingConnector(shared.clone());
    let l = log.clone();
    sim.client("c", async move {
        let zk = Client::builder(&hosts)
            .connector(connector)
            .seed(seed)
            .session_timeout(Duration::from_secs(10))
            .connect()
            .await?;
        scenario(zk.clone(), l).await?;
        park(zk).await;
        Ok(())
    });
    if !step_until(&mut sim, Duration::from_secs(20), || {
        count(&log, "c: ready") == 1
    }) {
        fail(&ens, &log, "the setup did not finish");
    }
    // B has everything the client has seen (else it refuses the client).
    if !step_until(&mut sim, Duration::from_secs(2), || {
        let st = ens.status();
        st[&behind].applied >= st[&on].applied
    }) {
        fail(&ens, &log, "B did not catch up with the setup");
    }
    shared.armed.store(true, Ordering::SeqCst);
    note_sim(&log, &sim, "armed".to_owned());
    if !step_until(&mut sim, Duration::from_secs(5), || {
        shared.fired.load(Ordering::SeqCst)
    }) {
        fail(&ens, &log, "the marked write was not sent");
    }
    if !step_until(&mut sim, Duration::from_secs(20), || {
        ens.status()[&behind].clients == 1
    }) {
        fail(&ens, &log, "the client did not reach B");
    }
    let stale = {
        let st = ens.status();
        st[&behind].applied < st[&on].applied
    };
    assert!(stale, "B is not behind: the test shows nothing");
    step_until(&mut sim, Duration::from_millis(500), || false);
    sim.release(Ensemble::host(leader), Ensemble::host(behind));
    note_sim(&log, &sim, "released".to_owned());
    if !step_until(&mut sim, Duration::from_secs(30), || {
        count(&log, "c: final") == 1
    }) {
        fail(&ens, &log, "the scenario did not finish");
    }
    assert_eq!(count(&log, "state Lost"), 0);
    let out = log.borrow().clone();
    out
}

/// The line of `log` noting `what`, without its time.
fn line<'a>(log: &'a [String], what: &str) -> &'a str {
    log.iter()
        .find_map(|l| l.split_once(&format!("c: {what} ")).map(|(_, v)| v))
        .unwrap_or_else(|| panic!("no {what} in {log:#?}"))
}

#[test]
fn counter_add_after_a_lost_set_reply_never_increments_twice() {
    let log = lost_reply_on_lagging_follower(3, "/cnt", |zk, log| async move {
        let counter = Counter::new(&zk, "/cnt", 0)?;
        counter.get().await?;
        ready(&log).await;
        let added = counter.add(1).await;
        note(&log, "c", format!("outcome {added:?}"));
        zk.sync("/cnt").await?;
        note(&log, "c", format!("final {}", counter.get().await?.value));
        Ok(())
    });
    assert_eq!(line(&log, "final"), "1", "incremented twice: {log:#?}");
    // The write applied, but another writer could have written the same value at the same
    // version: the outcome cannot be told, and `add` says so.
    assert_eq!(line(&log, "outcome"), "Err(ConnectionLoss)", "{log:#?}");
}

#[test]
fn queue_get_after_a_lost_delete_reply_returns_the_entry_it_took() {
    let log = lost_reply_on_lagging_follower(5, "/q/entry-", |zk, log| async move {
        let queue = Queue::new(&zk, "/q")?;
        queue.put(b"a").await?;
        queue.put(b"b").await?;
        ready(&log).await;
        let got = queue.get().await;
        let got = got.map(|d| d.map(|d| String::from_utf8_lossy(&d).into_owned()));
        note(&log, "c", format!("outcome {got:?}"));
        zk.sync("/q").await?;
        note(&log, "c", format!("final {}", queue.len().await?));
        Ok(())
    });
    assert_eq!(line(&log, "outcome"), "Ok(Some(\"a\"))", "{log:#?}");
    assert_eq!(
        line(&log, "final"),
        "1",
        "an entry went to nobody: {log:#?}"
    );
}

#[test]
fn locking_queue_consume_after_a_lost_reply_reports_the_consume() {
    let log = lost_reply_on_lagging_follower(7, "/lq/entries/entry-", |zk, log| async move {
        let queue = LockingQueue::new(&zk, "/lq")?;
        queue.put(b"a").await?;
        let entry = queue.get().await?;
        ready(&log).await;
        let consumed = entry.consume().await;
        note(&log, "c", format!("outcome {consumed:?}"));
        zk.sync("/lq/entries").await?;
        note(&log, "c", format!("final {}", queue.len().await?));
        Ok(())
    });
    assert_eq!(line(&log, "final"), "0", "{log:#?}");
    assert_eq!(
        line(&log, "outcome"),
        "Ok(true)",
        "consumed but said not: {log:#?}"
    );
}

#[test]
fn lease_acquire_after_a_lost_create_reply_reports_the_lease_obtained() {
    let log = lost_reply_on_lagging_follower(9, "lease_holder", |zk, log| async move {
        NonBlockingLease::server_now(&zk, "/lease").await?;
        ready(&log).await;
        let lease = NonBlockingLease::acquire(&zk, "/lease", Duration::from_secs(60), "me").await;
        note(
            &log,
            "c",
            format!("outcome {:?}", lease.map(|l| l.obtained())),
        );
        zk.sync("/lease").await?;
        let holder = NonBlockingLease::current(&zk, "/lease").await?;
        note(&log, "c", format!("final {:?}", holder.map(|h| h.holder)));
        Ok(())
    });
    assert_eq!(line(&log, "final"), "Some(\"me\")", "{log:#?}");
    assert_eq!(
        line(&log, "outcome"),
        "Ok(true)",
        "obtained but said not: {log:#?}"
    );
}
