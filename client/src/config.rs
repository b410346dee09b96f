//! Client configuration: the connect string (hosts and optional chroot) and the builder that
//! gathers every option before a client starts.

use std::sync::Arc;
use std::time::Duration;

use crate::connector::{Connector, TcpConnector};
use crate::error::{Error, Result};
use crate::path::validate_path;
use crate::proto::{Acl, DEFAULT_MAX_FRAME};
use crate::retry::RetryPolicy;

/// A parsed connect string: `h1:2181,h2:2181,[::1]:2181/app`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    /// `host:port` of each server, in the order given (IPv6 hosts keep their brackets).
    pub hosts: Vec<String>,
    /// The chroot every path is relative to, `""` for none.
    pub chroot: String,
}

/// The port used when a host names none.
pub const DEFAULT_PORT: u16 = 2181;

impl ConnectString {
    /// Parses `hosts[/chroot]`; a host without a port gets [`DEFAULT_PORT`].
    pub fn parse(s: &str) -> Result<ConnectString> {
        let bad = |why: &str| Error::InvalidArgument(format!("connect string {s:?}: {why}"));
        let (hosts, chroot) = match s.find('/') {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        };
        let chroot = match chroot {
            "" | "/" => String::new(),
            c => {
                validate_path(c).map_err(|e| bad(&format!("bad chroot: {}", e.reason)))?;
                c.to_owned()
            }
        };
        let mut out = Vec::new();
        for host in hosts.split(',') {
            let host = host.trim();
            if host.is_empty() {
                return Err(bad("empty host"));
            }
            let (name, port) = if let Some(rest) = host.strip_prefix('[') {
                let end = rest
                    .find(']')
                    .ok_or_else(|| bad("unclosed '[' in IPv6 host"))?;
                let name = &rest[..end];
                match &rest[end + 1..] {
                    "" => (format!("[{name}]"), None),
                    p => match p.strip_prefix(':') {
                        Some(port) => (format!("[{name}]"), Some(port)),
                        None => return Err(bad("junk after IPv6 host")),
                    },
                }
            } else {
                match host.rsplit_once(':') {
                    Some((name, port)) if !name.contains(':') => (name.to_owned(), Some(port)),
                    Some(_) => return Err(bad("IPv6 hosts must be in brackets")),
                    None => (host.to_owned(), None),
                }
            };
            if name.is_empty() || name == "[]" {
                return Err(bad("empty host name"));
            }
            let port = match port {
                None => DEFAULT_PORT,
                Some(p) => p
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| bad(&format!("bad port {p:?}")))?,
            };
            out.push(format!("{name}:{port}"));
        }
        Ok(ConnectString { hosts: out, chroot })
    }
}

/// Every option of a client. Built by [`Builder`]; read by the session task.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) connect: ConnectString,
    pub(crate) session_timeout: Duration,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) read_only: bool,
    pub(crate) auth: Vec<(String, Vec<u8>)>,
    pub(crate) sasl: Option<crate::sasl::SaslCredentials>,
    pub(crate) default_acl: Vec<Acl>,
    pub(crate) retry: RetryPolicy,
    pub(crate) resume: Option<(i64, Vec<u8>)>,
    pub(crate) max_frame: usize,
    pub(crate) seed: u64,
    pub(crate) connector: Arc<dyn Connector>,
    pub(crate) request_queue: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) backoff_max: Duration,
    pub(crate) renew_session: bool,
    pub(crate) delete_stale: bool,
    /// A planted bug (feature `planted-bugs` only; always `None` without it).
    pub(crate) planted: Option<crate::planted::PlantedBug>,
}

/// Configures and starts a [`Client`](crate::Client).
///
/// ```no_run
/// # async fn f() -> zkit::Result<()> {
/// use std::time::Duration;
/// let client = zkit::Client::builder("127.0.0.1:2181/app")
///     .session_timeout(Duration::from_secs(10))
///     .digest_auth("user", "secret")
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
pub struct Builder {
    hosts: String,
    config: Config,
    /// The seed set with [`Builder::seed`]; without one, the client draws its own.
    seed: Option<u64>,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::TlsConfig>,
}

impl Config {
    /// Whether `bug` is planted (always false without the `planted-bugs` feature).
    #[inline]
    pub(crate) fn planted(&self, bug: crate::planted::PlantedBug) -> bool {
        cfg!(feature = "planted-bugs") && self.planted == Some(bug)
    }
}

impl Builder {
    pub(crate) fn new(hosts: &str) -> Builder {
        Builder {
            hosts: hosts.to_owned(),
            config: Config {
                connect: ConnectString {
                    hosts: Vec::new(),
                    chroot: String::new(),
                },
                session_timeout: Duration::from_secs(10),
                connect_timeout: None,
                read_only: false,
                auth: Vec::new(),
                sasl: None,
                default_acl: Acl::open_unsafe(),
                retry: RetryPolicy::default(),
                resume: None,
                max_frame: DEFAULT_MAX_FRAME,
                seed: 0,
                connector: Arc::new(TcpConnector),
                request_queue: 4096,
                max_in_flight: 100_000,
                backoff_max: Duration::from_secs(1),
                delete_stale: false,
                renew_session: false,
                planted: None,
            },
            seed: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The session timeout to ask for (the server bounds it to [2, 20] ticks). Default 10 s.
    pub fn session_timeout(mut self, t: Duration) -> Self {
        self.config.session_timeout = t;
        self
    }

    /// How long one connection attempt may take (TCP connect and handshake). Default: the
    /// session timeout divided by the number of hosts, as ZooKeeper's own client.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.config.connect_timeout = Some(t);
        self
    }

    /// Accept read-only servers (ZooKeeper's `canBeReadOnly`). Default false.
    pub fn allow_read_only(mut self, yes: bool) -> Self {
        self.config.read_only = yes;
        self
    }

    /// Adds credentials, sent after every (re)connect.
    pub fn auth(mut self, scheme: &str, auth: &[u8]) -> Self {
        self.config.auth.push((scheme.to_owned(), auth.to_vec()));
        self
    }

    /// Adds `digest` credentials `user:password`.
    pub fn digest_auth(self, user: &str, password: &str) -> Self {
        self.auth("digest", format!("{user}:{password}").as_bytes())
    }

    /// Authenticates with SASL DIGEST-MD5 as `user` (ZooKeeper's `DigestLoginModule`, the
    /// server's JAAS `Server` section with `user_<name>="<password>"`), right after every
    /// handshake and before any other request, so that a resumed session is authenticated
    /// again on each connection. The session's identity is then `sasl:<user>` (for ACLs
    /// with scheme `sasl`). The client reports [`State::Connected`](crate::State::Connected)
    /// only once the server accepted the credentials.
    ///
    /// A refused password ends the client: it becomes
    /// [`State::AuthFailed`](crate::State::AuthFailed), and every request (and
    /// [`Builder::connect`]) fails with [`Error::AuthFailed`]. The same happens if the server
    /// cannot prove that it knows the password (a wrong `rspauth`) or sends a challenge the
    /// client cannot use. Only quality of protection `auth` is supported (no SASL integrity or
    /// encryption layer: use `Builder::tls` for that); GSSAPI (Kerberos) is not supported.
    pub fn sasl_digest(mut self, user: &str, password: &str) -> Self {
        self.config.sasl = Some(crate::sasl::SaslCredentials {
            user: user.to_owned(),
            password: password.to_owned(),
        });
        self
    }

    /// The ACL given to nodes created without one. Default `world:anyone` with every right.
    pub fn default_acl(mut self, acl: Vec<Acl>) -> Self {
        self.config.default_acl = acl;
        self
    }

    /// The policy [`Client::retry`](crate::Client::retry) and the recipes use.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.config.retry = policy;
        self
    }

    /// Resumes an existing session instead of starting one.
    pub fn resume_session(mut self, session_id: i64, password: &[u8]) -> Self {
        self.config.resume = Some((session_id, password.to_vec()));
        self
    }

    /// The largest frame accepted from a server. Default 0xfffff, as ZooKeeper's client.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.config.max_frame = bytes;
        self
    }

    /// Seeds every random choice (host order, backoff jitter, the guids of protected node
    /// names), so that a run replays: the simulation sets it. By default each client draws
    /// its seed from the operating system's randomness, so that no two clients (in one
    /// process or in two processes that happen to share a process id, as the first process
    /// of two containers does) make the same choices or the same guids.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The connector that opens connections. Default: tokio TCP.
    pub fn connector(mut self, connector: impl Connector) -> Self {
        self.config.connector = Arc::new(connector);
        self
    }

    /// Connects with TLS (ZooKeeper's `secureClientPort`), over the connector set with
    /// [`Builder::connector`] (tokio TCP by default). The certificate files are checked when
    /// the client is built ([`Error::Tls`] if one is missing or garbled) and read again for
    /// every connection. Feature `tls`.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// How many requests may wait to be sent before callers wait in turn. Default 4096.
    pub fn request_queue(mut self, n: usize) -> Self {
        self.config.request_queue = n.max(1);
        self
    }

    /// How many requests may await replies at once. Default 100,000.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.config.max_in_flight = n.max(1);
        self
    }

    /// The longest pause between two passes over the host list. Default 1 s.
    pub fn max_reconnect_backoff(mut self, t: Duration) -> Self {
        self.config.backoff_max = t;
        self
    }

    /// After the session expires, start a new one instead of ending the client (what Kazoo
    /// and Curator do). Never silent: the client still publishes [`State::Lost`](crate::State::Lost), everything in flight or queued fails with
    /// [`Error::SessionExpired`], every watcher gets its session-end event, and
    /// [`Client::session_id`](crate::Client::session_id) changes once connected again.
    /// Recipes re-create their nodes in the new session. Default false: `Lost` is final.
    ///
    /// When the client's own timer declared the session lost (no server answered within the
    /// session timeout), the servers may still keep it. A renewing client then closes the old
    /// session through the first server it reaches before it opens the new one, so the old
    /// session's ephemeral nodes go at that moment rather than whenever the servers expire it.
    /// A client that does not renew contacts no server after `Lost`: its old session ends
    /// when the servers expire it.
    pub fn renew_expired_session(mut self, yes: bool) -> Self {
        self.config.renew_session = yes;
        self
    }

    /// Whether recipes (locks, latches, ...) may delete their nodes that belong to an
    /// *earlier* session of this client, from the current one. Default false.
    ///
    /// A `Lost` the client declares on its own timer does not mean the server has expired
    /// the session yet (a new leader, for one, restarts every session's clock): with
    /// [`renew_expired_session`](Self::renew_expired_session), the old session's ephemeral
    /// nodes may still exist while the new session runs. By default a recipe that releases
    /// such a node leaves it for ZooKeeper to remove when it expires the old session: the
    /// next holder waits up to about one session timeout longer, but never acquires while
    /// the old session (and every other ephemeral node of it, such as a "this holder is
    /// alive" marker) is still there. With `true` the node is deleted by path at once: a
    /// faster hand-off, at the price of those lingering ephemerals overlapping the next
    /// holder.
    pub fn delete_stale_recipe_nodes(mut self, yes: bool) -> Self {
        self.config.delete_stale = yes;
        self
    }

    pub(crate) fn into_config(mut self) -> Result<Config> {
        self.config.connect = ConnectString::parse(&self.hosts)?;
        self.config.seed = self.seed.unwrap_or_else(default_seed);
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.take() {
            let inner = self.config.connector.clone();
            let connector = crate::tls::TlsConnector::over(tls, inner)
                .map_err(|e| Error::Tls(e.to_string()))?;
            self.config.connector = Arc::new(connector);
        }
        if self.config.session_timeout.is_zero() {
            return Err(Error::InvalidArgument("session timeout must be > 0".into()));
        }
        if self.config.max_frame < 16 {
            return Err(Error::InvalidArgument(format!(
                "max frame size {} is too small",
                self.config.max_frame
            )));
        }
        Ok(self.config)
    }

    /// Starts the client without waiting for a connection: it is [`State::Connecting`](crate::State::Connecting) until a server answers, and requests wait until then.
    pub fn build(self) -> Result<crate::Client> {
        Ok(crate::Client::start(self.into_config()?))
    }

    /// Test-only (feature `planted-bugs`): builds the client with `bug` planted in its session
    /// engine, for the simulation harness's sensitivity tests. Never use it otherwise.
    #[cfg(feature = "planted-bugs")]
    #[doc(hidden)]
    pub fn planted_bug(mut self, bug: crate::planted::PlantedBug) -> Self {
        self.config.planted = Some(bug);
        self
    }

    /// Starts the client and waits until it is connected, or fails after the session
    /// timeout (the client is then closed) with [`Error::ConnectFailed`] if the connector knows
    /// why (a TLS handshake refused), else [`Error::Timeout`].
    pub async fn connect(self) -> Result<crate::Client> {
        let timeout = self.config.session_timeout;
        let config = self.into_config()?;
        let connector = config.connector.clone();
        let client = crate::Client::start(config);
        match tokio::time::timeout(timeout, client.wait_connected()).await {
            Ok(Ok(())) => Ok(client),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                client.close().await;
                if let Some(why) = connector.last_error() {
                    return Err(Error::ConnectFailed(why));
                }
                Err(Error::Timeout(
                    "no server answered within the session timeout",
                ))
            }
        }
    }
}

/// A seed for a client that set none: this process's id and a counter, mixed with the
/// operating system's randomness.
fn default_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    seed_for(std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A random seed for the `n`th unseeded client of process `pid`. The process id and counter
/// alone would repeat across processes (every container's first process is pid 1), so they
/// are hashed under a key std draws from the operating system ([`RandomState`]: a fresh key
/// per call, random per process), which needs no dependency of its own.
///
/// [`RandomState`]: std::collections::hash_map::RandomState
fn seed_for(pid: u32, n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(pid);
    h.write_u64(n);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_chroot() {
        let c = ConnectString::parse("h1:2181,h2,[::1]:2182,[fe80::1]/app/x").unwrap();
        assert_eq!(
            c.hosts,
            ["h1:2181", "h2:2181", "[::1]:2182", "[fe80::1]:2181"]
        );
        assert_eq!(c.chroot, "/app/x");
        assert_eq!(ConnectString::parse("h/").unwrap().chroot, "");
    }

    /// Two processes with the same id (pid 1 in two containers) starting their first client
    /// must not draw the same seed, or their protected names would share guids.
    #[test]
    fn unseeded_clients_of_processes_with_one_pid_get_different_seeds() {
        assert_ne!(seed_for(1, 0), seed_for(1, 0));
        assert_ne!(seed_for(1, 7), seed_for(1, 7));
    }

    #[test]
    fn an_explicit_seed_is_kept() {
        let config = Builder::new("h").seed(42).into_config().unwrap();
        assert_eq!(config.seed, 42);
    }

    #[test]
    fn rejects_bad_connect_strings() {
        for s in [
            "", "h1,,h2", "h:0", "h:99999", "h:x", "::1:2181", "[::1", "[::1]x", "h/a/", "[]:1",
        ] {
            assert!(
                matches!(ConnectString::parse(s), Err(Error::InvalidArgument(_))),
                "{s}"
            );
        }
    }
}
