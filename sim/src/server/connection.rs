//! One client connection: a reader that frames the byte stream and hands each request to the
//! core, and a writer that drains the connection's ordered outbound queue to the socket.
//!
//! The first four bytes decide what the connection is: a four-letter word (answered as text,
//! then closed) or the length of the ConnectRequest frame. After the handshake every frame is
//! a RequestHeader and a body. Anything malformed (a bad length, a frame that does not decode,
//! an early EOF) ends this connection only; its session lives on until it expires.
//!
//! A connection with no traffic either way for its timeout is closed, as ZooKeeper's NIO
//! connection factory does ([`Idle`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch, Notify};
use zkit::proto::{ConnectRequest, DecodeError, FrameDecoder, Record};

use super::core::{Flow, Outbound};
use super::four_letter;
use super::Shared;

/// Why a connection ended (logged; never propagated further).
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent bytes that are not the protocol.
    #[error("malformed input: {0}")]
    Malformed(#[from] DecodeError),
}

/// ZooKeeper's `zookeeper.nio.sessionlessCnxnTimeout` (10 s): how long a connection without
/// a session may stay silent, and the width of the connection expiry buckets.
const SESSIONLESS_TIMEOUT_MS: u64 = 10_000;

/// Idle-connection expiry, as `NIOServerCnxnFactory` (the factory the project's ZooKeeper
/// runs) does it: every read or write touches the connection, and its
/// `ConnectionExpirerThread` closes one whose last touch plus its timeout has passed, in
/// buckets rounded up to the next multiple of 10 s (`ExpiryQueue.roundToNextInterval`).
/// The timeout is 10 s until the handshake, then the negotiated session timeout
/// (`processConnectRequest` sets it before the session exists).
#[derive(Debug)]
struct Idle {
    /// Server time (ms) of the last read or write.
    last_io: AtomicU64,
    /// The connection's timeout (ms).
    timeout: AtomicU64,
}

impl Idle {
    fn new(now: u64) -> Idle {
        Idle {
            last_io: AtomicU64::new(now),
            timeout: AtomicU64::new(SESSIONLESS_TIMEOUT_MS),
        }
    }

    fn touch(&self, now: u64) {
        self.last_io.fetch_max(now, Ordering::Relaxed);
    }

    /// The server time (ms) at which the connection expires if nothing touches it.
    fn deadline(&self) -> u64 {
        let due = self.last_io.load(Ordering::Relaxed) + self.timeout.load(Ordering::Relaxed);
        (due / SESSIONLESS_TIMEOUT_MS + 1) * SESSIONLESS_TIMEOUT_MS
    }

    /// Returns once the connection has been idle past its deadline (a frozen server's
    /// expirer acts once thawed).
    async fn expired(&self, shared: &Shared) {
        loop {
            shared.thawed().await;
            let deadline = self.deadline();
            let now = shared.now_ms();
            if now >= deadline {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(deadline - now)).await;
        }
    }
}

/// Serves one accepted connection until it ends.
pub(crate) async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, wr) = tokio::io::split(stream);
    let (tx, rx) = mpsc::unbounded_channel();
    let closed = Arc::new(Notify::new());
    let conn = shared.lock().register(peer, tx, closed.clone());
    tracing::debug!(conn, %peer, "connection accepted");
    let idle = Arc::new(Idle::new(shared.now_ms()));
    let writer = tokio::spawn(write_loop(wr, rx, idle.clone(), shared.clone()));
    let result = tokio::select! {
        biased;
        _ = closed.notified() => Ok(()),
        _ = wait_shutdown(shutdown) => Ok(()),
        r = read_loop(&mut rd, conn, &shared, &idle) => r,
        _ = idle.expired(&shared) => {
            tracing::info!(conn, "idle connection expired");
            Ok(())
        }
    };
    match &result {
        Ok(()) => tracing::debug!(conn, "connection ended"),
        Err(e) => tracing::info!(conn, error = %e, "connection dropped"),
    }
    shared.lock().disconnect(conn);
    let _ = writer.await;
}

async fn wait_shutdown(mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

async fn write_loop<W: AsyncWrite>(
    wr: W,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    idle: Arc<Idle>,
    shared: Arc<Shared>,
) {
    tokio::pin!(wr);
    while let Some(msg) = rx.recv().await {
        match msg {
            Outbound::Bytes(bytes) => {
                if wr.write_all(&bytes).await.is_err() {
                    return;
                }
                idle.touch(shared.now_ms());
            }
            Outbound::Close => break,
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
}

/// The read half of a connection, touching its [`Idle`] clock on every read.
struct Reader<'a, R> {
    rd: &'a mut R,
    idle: &'a Idle,
    shared: &'a Shared,
}

impl<R: AsyncRead + Unpin> Reader<'_, R> {
    /// Reads what is there into `buf`; 0 on a clean EOF.
    async fn read(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        let n = self.rd.read_buf(buf).await?;
        self.idle.touch(self.shared.now_ms());
        Ok(n)
    }

    /// Reads until `buf` holds at least `n` bytes; false on a clean EOF.
    async fn fill(&mut self, buf: &mut BytesMut, n: usize) -> std::io::Result<bool> {
        while buf.len() < n {
            if self.read(buf).await? == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads the next whole frame; `None` on a clean EOF.
    async fn next_frame(
        &mut self,
        buf: &mut BytesMut,
        decoder: &FrameDecoder,
    ) -> Result<Option<BytesMut>, ConnectionError> {
        loop {
            if let Some(frame) = decoder.decode(buf)? {
                return Ok(Some(frame));
            }
            if self.read(buf).await? == 0 {
                return Ok(None);
            }
        }
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    rd: &mut R,
    conn: u64,
    shared: &Shared,
    idle: &Idle,
) -> Result<(), ConnectionError> {
    let decoder = FrameDecoder::new(shared.max_buffer());
    let mut buf = BytesMut::with_capacity(4096);
    let mut rd = Reader { rd, idle, shared };

    // The first four bytes: a four-letter word, or the handshake's length.
    let first = async {
        if !rd.fill(&mut buf, 4).await? {
            return Ok::<_, ConnectionError>(None);
        }
        let mut word = [0u8; 4];
        word.copy_from_slice(&buf[..4]);
        if let Some(cmd) = four_letter::command(&word) {
            return Ok(Some(Err(cmd)));
        }
        Ok(rd.next_frame(&mut buf, &decoder).await?.map(Ok))
    }
    .await?;
    let frame = match first {
        None => return Ok(()),
        Some(Err(cmd)) => {
            let mut core = shared.lock();
            let text = core.four_letter(cmd);
            tracing::debug!(conn, cmd, "four-letter word");
            core.send(conn, text.into_bytes());
            core.close_connection(conn);
            return Ok(());
        }
        Some(Ok(frame)) => frame,
    };

    let request = ConnectRequest::from_frame(&frame)?;
    let old_client = ConnectRequest::from_bytes(&frame).is_err();
    {
        let mut core = shared.lock();
        idle.timeout.store(
            u64::try_from(core.negotiated_timeout(request.timeout)).unwrap_or(0),
            Ordering::Relaxed,
        );
        let now = shared.now_ms();
        match core.connect(conn, &request, old_client, now) {
            None => return Ok(()),
            Some((reply, flow)) => {
                // An ensemble member answers a new session once its creation commits.
                if !reply.is_empty() {
                    core.send(conn, reply);
                }
                if flow == Flow::Close {
                    core.close_connection(conn);
                    return Ok(());
                }
            }
        }
    }

    while let Some(frame) = rd.next_frame(&mut buf, &decoder).await? {
        shared.thawed().await;
        let mut core = shared.lock();
        let now = shared.now_ms();
        if core.handle_frame(conn, &frame, now)? == Flow::Close {
            return Ok(());
        }
    }
    Ok(())
}
