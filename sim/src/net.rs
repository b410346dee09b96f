//! Network plumbing shared by the simulated servers: a [`Listener`] abstraction with a tokio
//! TCP implementation (real sockets: tests, `zkit-sim serve`) and a turmoil implementation
//! (simulated sockets), so the same server runs in both worlds; plus [`TurmoilConnector`] for
//! clients inside a turmoil simulation.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use zkit::connector::{BoxStream, ConnectFuture, Connector};

/// Something that accepts byte-stream connections.
pub trait Listener: Send + 'static {
    /// The accepted stream.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Waits for the next connection: the stream and the peer's address.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;

    /// The address being listened on.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

impl Listener for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;

    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        let (stream, peer) = tokio::net::TcpListener::accept(self).await?;
        // Replies are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        Ok((stream, peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        tokio::net::TcpListener::local_addr(self)
    }
}

impl Listener for turmoil::net::TcpListener {
    type Stream = turmoil::net::TcpStream;

    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        turmoil::net::TcpListener::accept(self).await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        turmoil::net::TcpListener::local_addr(self)
    }
}

/// Opens turmoil TCP connections from inside a simulated host (`"server:2181"` style
/// addresses resolve through turmoil's DNS). It is the [`zkit::Connector`] a real
/// [`zkit::Client`] uses inside a simulation:
/// `Client::builder("zk:2181").connector(TurmoilConnector)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TurmoilConnector;

impl TurmoilConnector {
    /// Connects to `addr` over the simulated network, returning turmoil's stream itself
    /// (for raw wire-level tests; clients go through [`zkit::Connector`]).
    pub async fn connect_raw(&self, addr: &str) -> io::Result<turmoil::net::TcpStream> {
        turmoil::net::TcpStream::connect(addr).await
    }
}

impl Connector for TurmoilConnector {
    fn connect<'a>(&'a self, addr: &'a str) -> ConnectFuture<'a> {
        Box::pin(async move {
            let stream = turmoil::net::TcpStream::connect(addr).await?;
            Ok(Box::new(stream) as BoxStream)
        })
    }
}
