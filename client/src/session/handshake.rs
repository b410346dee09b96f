//! Opening one connection: connect through the [`Connector`], send the `ConnectRequest`, read
//! the `ConnectResponse`. Whatever bytes arrive behind the response stay buffered for the
//! connection loop. Then, with SASL credentials, the SASL exchange ([`sasl`]). Also closing a
//! session the client gave up on its own ([`close_session`]).

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::connector::{BoxStream, Connector};
use crate::error::{Error, Result};
use crate::proto::{
    encode_frame, ConnectRequest, ConnectResponse, ErrorCode, FrameDecoder, Reader, Record,
    ReplyHeader, Request, SaslToken,
};
use crate::sasl::DigestMd5;

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

/// Why a SASL exchange did not authenticate the connection.
#[derive(Debug)]
pub(crate) enum SaslFailure {
    /// The server refused the credentials, or the exchange cannot succeed with this server:
    /// the session must end ([`End::AuthFailed`](super::End::AuthFailed)).
    Refused(String),
    /// The connection broke (or sent garbage) on the way: another connection may succeed.
    Connection(Error),
}

/// Authenticates the connection of `hs` with SASL (`sasl` requests, opcode 102), before any
/// other request: sends `mech`'s tokens and hands it the server's until it completes. The
/// requests take xids from `xid` onwards (it is left at the last one used). Bytes read past
/// the last reply stay in `hs.rest`.
pub(crate) async fn sasl(
    hs: &mut Handshaken,
    decoder: FrameDecoder,
    mech: &mut DigestMd5,
    xid: &mut i32,
) -> Result<(), SaslFailure> {
    let io = |e: std::io::Error| SaslFailure::Connection(Error::Protocol(format!("SASL: {e}")));
    let mut token = mech.initial();
    loop {
        *xid = if *xid >= i32::MAX - 1 { 1 } else { *xid + 1 };
        let request = Request::Sasl(SaslToken { token });
        let mut out = Vec::with_capacity(64);
        encode_frame(&mut out, |o| request.encode(*xid, o));
        hs.stream.write_all(&out).await.map_err(io)?;
        let frame = loop {
            if let Some(frame) = decoder
                .decode(&mut hs.rest)
                .map_err(|e| SaslFailure::Connection(e.into()))?
            {
                break frame;
            }
            if hs.stream.read_buf(&mut hs.rest).await.map_err(io)? == 0 {
                return Err(SaslFailure::Connection(Error::ConnectionLoss));
            }
        };
        let mut r = Reader::new(&frame);
        let header = ReplyHeader::decode(&mut r).map_err(|e| SaslFailure::Connection(e.into()))?;
        if header.xid != *xid {
            return Err(SaslFailure::Connection(Error::Protocol(format!(
                "SASL: reply xid {} to request xid {}",
                header.xid, *xid
            ))));
        }
        if header.err != 0 {
            let why = match ErrorCode::try_from(header.err) {
                Ok(code) => format!("{} ({})", code.message(), code.code()),
                Err(_) => format!("error code {}", header.err),
            };
            return Err(SaslFailure::Refused(format!("server refused SASL: {why}")));
        }
        let reply = SaslToken::decode(&mut r).map_err(|e| SaslFailure::Connection(e.into()))?;
        match mech.step(&reply.token) {
            Ok(Some(next)) => token = next,
            Ok(None) if mech.is_complete() => return Ok(()),
            Ok(None) => {
                return Err(SaslFailure::Refused(
                    "SASL: the mechanism stopped before completing".into(),
                ))
            }
            Err(e) => return Err(SaslFailure::Refused(format!("SASL: {e}"))),
        }
    }
}
