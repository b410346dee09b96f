//! One client connection: a reader that frames the byte stream and hands each request to the
//! core, and a writer that drains the connection's ordered outbound queue to the socket.
//!
//! The first four bytes decide what the connection is: a four-letter word (answered as text,
//! then closed) or the length of the ConnectRequest frame. After the handshake every frame is
//! a RequestHeader and a body. Anything malformed (a bad length, a frame that does not decode,
//! an early EOF) ends this connection only; its session lives on until it expires.

use std::net::SocketAddr;
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
    /// The peer did not complete the handshake in time.
    #[error("no handshake within the session timeout")]
    HandshakeTimeout,
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
    let writer = tokio::spawn(write_loop(wr, rx));
    let result = tokio::select! {
        biased;
        _ = closed.notified() => Ok(()),
        _ = wait_shutdown(shutdown) => Ok(()),
        r = read_loop(&mut rd, conn, &shared) => r,
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

async fn write_loop<W: AsyncWrite>(wr: W, mut rx: mpsc::UnboundedReceiver<Outbound>) {
    tokio::pin!(wr);
    while let Some(msg) = rx.recv().await {
        match msg {
            Outbound::Bytes(bytes) => {
                if wr.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Outbound::Close => break,
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
}

/// Reads until `buf` holds at least `n` bytes; false on a clean EOF.
async fn fill<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    n: usize,
) -> std::io::Result<bool> {
    while buf.len() < n {
        if rd.read_buf(buf).await? == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Reads the next whole frame; `None` on a clean EOF.
async fn next_frame<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    decoder: &FrameDecoder,
) -> Result<Option<BytesMut>, ConnectionError> {
    loop {
        if let Some(frame) = decoder.decode(buf)? {
            return Ok(Some(frame));
        }
        if rd.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    rd: &mut R,
    conn: u64,
    shared: &Shared,
) -> Result<(), ConnectionError> {
    let decoder = FrameDecoder::new(shared.max_buffer());
    let mut buf = BytesMut::with_capacity(4096);
    let handshake_timeout = shared.handshake_timeout();

    // The first four bytes: a four-letter word, or the handshake's length.
    let first = tokio::time::timeout(handshake_timeout, async {
        if !fill(rd, &mut buf, 4).await? {
            return Ok::<_, ConnectionError>(None);
        }
        let mut word = [0u8; 4];
        word.copy_from_slice(&buf[..4]);
        if let Some(cmd) = four_letter::command(&word) {
            return Ok(Some(Err(cmd)));
        }
        Ok(next_frame(rd, &mut buf, &decoder).await?.map(Ok))
    })
    .await
    .map_err(|_| ConnectionError::HandshakeTimeout)??;
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

    while let Some(frame) = next_frame(rd, &mut buf, &decoder).await? {
        let mut core = shared.lock();
        let now = shared.now_ms();
        if core.handle_frame(conn, &frame, now)? == Flow::Close {
            return Ok(());
        }
    }
    Ok(())
}
