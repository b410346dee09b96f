//! Opening one connection: connect through the [`Connector`], send the `ConnectRequest`, read
//! the `ConnectResponse`. Whatever bytes arrive behind the response stay buffered for the
//! connection loop.

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::connector::{BoxStream, Connector};
use crate::error::{Error, Result};
use crate::proto::{
    encode_frame, ConnectRequest, ConnectResponse, ErrorCode, FrameDecoder, Record, ReplyHeader,
};

/// A connection whose handshake is done.
pub(crate) struct Handshaken {
    pub(crate) stream: BoxStream,
    pub(crate) response: ConnectResponse,
    /// Bytes read past the handshake reply.
    pub(crate) rest: BytesMut,
    /// When the `ConnectRequest` was sent: the server touched the session no earlier.
    pub(crate) sent: Instant,
}

/// Connects to `host` and exchanges the handshake.
pub(crate) async fn handshake(
    connector: &dyn Connector,
    host: &str,
    request: &ConnectRequest,
    decoder: FrameDecoder,
) -> Result<Handshaken> {
    let io = |e: std::io::Error| Error::Protocol(format!("{host}: {e}"));
    let mut stream = connector.connect(host).await.map_err(|e| {
        tracing::debug!(host, error = %e, "connect failed");
        Error::ConnectionLoss
    })?;
    let mut out = Vec::with_capacity(64);
    encode_frame(&mut out, |o| request.encode(o));
    let sent = Instant::now();
    stream.write_all(&out).await.map_err(io)?;
    let mut buf = BytesMut::with_capacity(512);
    loop {
        if let Some(frame) = decoder.decode(&mut buf)? {
            let response = match ConnectResponse::from_frame(&frame) {
                Ok(r) => r,
                Err(e) => return Err(refusal(&frame).unwrap_or(e.into())),
            };
            return Ok(Handshaken {
                stream,
                response,
                rest: buf,
                sent,
            });
        }
        if stream.read_buf(&mut buf).await.map_err(io)? == 0 {
            return Err(Error::ConnectionLoss);
        }
    }
}

/// A server that cannot open the session (a read-only server asked for a global session, for
/// one) answers the handshake with a bare reply header carrying the reason.
fn refusal(frame: &[u8]) -> Option<Error> {
    let header = ReplyHeader::from_bytes(frame).ok()?;
    let code = ErrorCode::try_from(header.err).ok()?;
    Some(Error::Protocol(format!(
        "server refused the session: {} ({})",
        code.message(),
        code.code()
    )))
}
