//! Opening one connection: connect through the [`Connector`], send the `ConnectRequest`, read
//! the `ConnectResponse`. Whatever bytes arrive behind the response stay buffered for the
//! connection loop. Also closing a session the client gave up on its own ([`close_session`]).

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::connector::{BoxStream, Connector};
use crate::error::{Error, Result};
use crate::proto::{
    encode_frame, ConnectRequest, ConnectResponse, ErrorCode, FrameDecoder, Reader, Record,
    ReplyHeader, Request,
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

/// What became of a session the client closed after its own timer gave it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StaleClose {
    /// The server had expired it already.
    Expired,
    /// The server acknowledged closeSession: its ephemeral nodes are gone.
    Closed,
    /// The server took the session back but did not acknowledge closeSession within the
    /// wait; it expires the session on its own.
    Unconfirmed,
}

/// Connects to `host` with the session of `request` and closes it (closeSession), waiting at
/// most `wait` for each answer. Fails only if the server never answered the handshake.
pub(crate) async fn close_session(
    connector: &dyn Connector,
    host: &str,
    request: &ConnectRequest,
    decoder: FrameDecoder,
    wait: Duration,
) -> Result<StaleClose> {
    /// The xid of the closeSession (the only request on this connection).
    const CLOSE_XID: i32 = 1;
    let hs = tokio::time::timeout(wait, handshake(connector, host, request, decoder))
        .await
        .map_err(|_| Error::Timeout("no handshake reply"))??;
    if hs.response.timeout <= 0 || hs.response.session_id != request.session_id {
        return Ok(StaleClose::Expired);
    }
    let Handshaken {
        mut stream,
        rest: mut buf,
        ..
    } = hs;
    let mut out = Vec::with_capacity(16);
    encode_frame(&mut out, |o| Request::CloseSession.encode(CLOSE_XID, o));
    let confirmed = tokio::time::timeout(wait, async {
        stream.write_all(&out).await.ok()?;
        loop {
            // Skip whatever else arrives (notifications) until the reply to closeSession.
            while let Some(frame) = decoder.decode(&mut buf).ok()? {
                let header = ReplyHeader::decode(&mut Reader::new(&frame)).ok()?;
                if header.xid == CLOSE_XID {
                    return Some(());
                }
            }
            if stream.read_buf(&mut buf).await.ok()? == 0 {
                return None;
            }
        }
    })
    .await;
    Ok(match confirmed {
        Ok(Some(())) => StaleClose::Closed,
        _ => StaleClose::Unconfirmed,
    })
}
