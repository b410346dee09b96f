//! The one seam between the client and the network: a [`Connector`] opens a byte stream to a
//! server. [`TcpConnector`] (tokio TCP) is the default; the simulation supplies one over
//! turmoil's network; `TlsConnector` (feature `tls`, in `tls.rs`) wraps another connector.
//! The client does no other I/O.

use std::future::Future;
use std::io;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

/// A connected byte stream to one server.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// A boxed [`Stream`].
pub type BoxStream = Box<dyn Stream>;

/// The future [`Connector::connect`] returns.
pub type ConnectFuture<'a> = Pin<Box<dyn Future<Output = io::Result<BoxStream>> + Send + 'a>>;

/// Opens connections to servers named `host:port`.
pub trait Connector: Send + Sync + 'static {
    /// Connects to `addr` (`host:port`, IPv6 hosts in brackets).
    fn connect<'a>(&'a self, addr: &'a str) -> ConnectFuture<'a>;

    /// Why the latest connection failed, when the connector knows more than "connection
    /// lost" (a TLS handshake refused, say). [`Builder::connect`](crate::Builder::connect)
    /// reports it when no server could be reached. Default: nothing.
    fn last_error(&self) -> Option<String> {
        None
    }
}

/// Connects over tokio TCP with `TCP_NODELAY` set (requests are already batched).
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpConnector;

impl Connector for TcpConnector {
    fn connect<'a>(&'a self, addr: &'a str) -> ConnectFuture<'a> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as BoxStream)
        })
    }
}
