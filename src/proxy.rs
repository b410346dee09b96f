//! A loopback TCP proxy that tests put between a client and a real server to cut
//! connections on demand, or to swallow the server's replies (so a request applies but its
//! reply never arrives: the "lost reply" case), from now on or from the moment the client
//! sends a given request (so the lost reply is exactly that request's).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways.
    Forward,
    /// Forward client to server; drop everything the server sends.
    SwallowReplies,
    /// Refuse new connections (accept and close at once).
    Refuse,
}

/// A running proxy; dropping it stops accepting (open connections end with the runtime).
pub struct Proxy {
    addr: SocketAddr,
    mode: Arc<watch::Sender<Mode>>,
    /// Bumped by [`Proxy::cut`]: every connection opened before closes.
    generation: Arc<watch::Sender<u64>>,
    /// Bytes that, once a client sends them, switch the proxy to [`Mode::SwallowReplies`].
    trigger: Arc<watch::Sender<Option<Vec<u8>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy on 127.0.0.1 in front of `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, mode_rx) = watch::channel(Mode::Forward);
        let mode = Arc::new(mode);
        let (generation, _) = watch::channel(0u64);
        let generation = Arc::new(generation);
        let gen = generation.clone();
        let trigger = Arc::new(watch::Sender::new(None));
        let (switch, armed) = (mode.clone(), trigger.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *mode_rx.borrow() == Mode::Refuse {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                tokio::spawn(pipe(
                    client,
                    server,
                    mode_rx.clone(),
                    gen.subscribe(),
                    Trigger {
                        bytes: armed.clone(),
                        mode: switch.clone(),
                    },
                ));
            }
        });
        Ok(Proxy {
            addr,
            mode,
            generation,
            trigger,
            accept,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT` of the proxy, as a connect string.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// Changes what the proxy does from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// From the moment a client sends `bytes` (e.g. a path in a request), swallow every reply:
    /// the request carrying them is forwarded, so it applies, but its reply is lost. The
    /// returned receiver turns to [`Mode::SwallowReplies`] when that happens.
    pub fn swallow_replies_after(&self, bytes: &[u8]) -> watch::Receiver<Mode> {
        let rx = self.mode.subscribe();
        self.trigger.send_replace(Some(bytes.to_vec()));
        rx
    }

    /// Closes every connection open now.
    pub fn cut(&self) {
        self.generation.send_modify(|g| *g += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Switches a proxy to [`Mode::SwallowReplies`] once its armed bytes go upstream.
struct Trigger {
    bytes: Arc<watch::Sender<Option<Vec<u8>>>>,
    mode: Arc<watch::Sender<Mode>>,
}

impl Trigger {
    /// Looks for the armed bytes in what went upstream (`seen` keeps a tail of earlier reads,
    /// so bytes split across two reads are found too); fires at most once.
    fn check(&self, seen: &mut Vec<u8>, chunk: &[u8]) {
        seen.extend_from_slice(chunk);
        let hit = self.bytes.send_if_modified(|armed| {
            let found = armed
                .as_deref()
                .is_some_and(|b| !b.is_empty() && seen.windows(b.len()).any(|w| w == b));
            if found {
                *armed = None;
            }
            found
        });
        if hit {
            self.mode.send_replace(Mode::SwallowReplies);
        }
        let keep = 4096;
        if seen.len() > keep {
            seen.drain(..seen.len() - keep);
        }
    }
}

async fn pipe(
    client: TcpStream,
    server: TcpStream,
    mode: watch::Receiver<Mode>,
    mut cut: watch::Receiver<u64>,
    trigger: Trigger,
) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = async {
        let mut buf = vec![0u8; 64 * 1024];
        let mut seen = Vec::new();
        loop {
            let n = cr.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            // Switched before forwarding, so not even this request's reply gets through.
            trigger.check(&mut seen, &buf[..n]);
            if sw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = sr.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            if *mode.borrow() == Mode::SwallowReplies {
                continue;
            }
            if cw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = cut.changed() => {}
    }
}
