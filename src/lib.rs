//! Shared fixture for zkit's integration tests: a real Apache ZooKeeper on
//! loopback, in the spirit of Curator's `TestingServer` / `TestingCluster`.
//!
//! All process management lives in `scripts/zk` (so humans and tests use the
//! same logic); this module only runs that script and talks to the servers
//! with four-letter words over plain [`std::net::TcpStream`]s.
//!
//! ```no_run
//! use zkit_tests::ZkServer;
//!
//! let zk = ZkServer::standalone().expect("real ZooKeeper needed for this test");
//! let connect = zk.connect_string(); // "127.0.0.1:PORT"
//! assert_eq!(zk.four_letter(0, "ruok").expect("ruok"), "imok");
//! # let _ = connect;
//! // Dropping `zk` SIGKILLs the JVM.
//! ```
//!
//! Conventions:
//! - Member indices are **0-based** everywhere in this API (`addresses()[i]`
//!   is member `i`); `scripts/zk` itself counts from 1.
//! - Every call blocks the current thread (it spawns `scripts/zk` and waits).
//!   Starting a server takes about a second; that is fine inside
//!   `#[tokio::test]`, but don't call these from latency-sensitive tasks.
//! - Each server gets a fresh directory `<workspace>/target/zk/<name>-<pid>-<n>`
//!   holding configs, data and `nodeN/server.log`. It is removed on drop
//!   unless the thread is panicking (a failing test keeps its logs) or the
//!   environment variable `ZKIT_KEEP_ZK_DIRS` is set.
//! - The servers are started with `ZK_OWNER_PID` set to this process, so a
//!   test binary that dies without running `Drop` still leaves no JVM behind
//!   (a watchdog in `scripts/zk` stops them within about a second).
//! - Constructors never skip: when Java or the ZooKeeper jars are missing they
//!   return [`FixtureError::Missing`] saying what to install.

pub mod proxy;

use std::ffi::OsStr;
use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Why the fixture could not start or drive a ZooKeeper server.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// `scripts/zk` could not be executed at all.
    #[error("cannot run {script}: {source} (it must exist and be executable; bash is required)")]
    Spawn {
        /// Path of the script.
        script: PathBuf,
        /// The underlying OS error.
        source: std::io::Error,
    },
    /// Java or the ZooKeeper jars are not installed.
    #[error(
        "real ZooKeeper is not available on this machine:\n{details}\n\
         Install it with `scripts/zk install` (Debian package `zookeeper`, which \
         pulls in Java); set ZK_JAVA / ZK_JAR_DIR to use another Java or jar directory"
    )]
    Missing {
        /// What `scripts/zk check` reported as missing.
        details: String,
    },
    /// `scripts/zk` ran but failed (server did not start, died, timed out...).
    /// `stderr` includes the tail of the relevant server log.
    #[error("`scripts/zk {command}` failed ({status}):\n{stderr}")]
    Script {
        /// The subcommand line, e.g. `start-ensemble /…/target/zk/x 3`.
        command: String,
        /// Exit status of the script.
        status: ExitStatus,
        /// Everything the script wrote to stderr.
        stderr: String,
    },
    /// The script's stdout was not a `host:port,...` connect string.
    #[error("scripts/zk printed {0:?}, which is not a connect string 127.0.0.1:PORT[,...]")]
    BadConnectString(String),
    /// The fixture directory could not be created.
    #[error("cannot create fixture directory {dir}: {source}")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The underlying OS error.
        source: std::io::Error,
    },
    /// A member index outside `0..size`.
    #[error("no member {index}: this server has {size} member(s), indexed from 0")]
    NoSuchMember {
        /// The index asked for.
        index: usize,
        /// Number of members.
        size: usize,
    },
    /// A four-letter-word exchange failed (member down, refused, timed out).
    #[error("four-letter word {cmd:?} to {addr} failed: {source}")]
    FourLetter {
        /// The command, e.g. `srvr`.
        cmd: String,
        /// The member's client address.
        addr: SocketAddr,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A wait (e.g. [`ZkServer::wait_for_leader`]) ran out of time.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
}

/// Standalone server or ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One server in standalone mode.
    Standalone,
    /// A quorum of `n` participants.
    Ensemble,
}

/// Whether a TLS server asks clients for a certificate (ZooKeeper's `ssl.clientAuth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate asked for.
    None,
    /// Asked for, not required.
    Want,
    /// Required: a client without a trusted certificate is refused (mutual TLS).
    Need,
}

/// The files of a server's TLS client port (see [`ZkServer::standalone_tls`]).
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// PEM file with the server's private key (PKCS#8) and certificate chain.
    pub keystore: PathBuf,
    /// PEM file with the CA certificates that client certificates must chain to.
    pub truststore: PathBuf,
    /// Whether client certificates are required.
    pub client_auth: ClientAuth,
}

/// A running real ZooKeeper (standalone or ensemble) on 127.0.0.1.
///
/// Server settings (see `scripts/zk`): `tickTime=500` (sessions 1 s..10 s),
/// all four-letter words allowed, admin server off, TTL nodes enabled,
/// container/TTL reaper every 100 ms, read-only mode allowed, no local
/// sessions, `reconfigEnabled=true`, ACLs enforced.
///
/// Dropping it SIGKILLs every member and waits until they are gone.
pub struct ZkServer {
    kind: Kind,
    dir: PathBuf,
    connect: String,
    addrs: Vec<SocketAddr>,
    secure: Option<String>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Root of the cargo workspace (this package lives there).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Path of the `scripts/zk` helper.
pub fn zk_script() -> PathBuf {
    workspace_root().join("scripts").join("zk")
}

/// Runs `scripts/zk ARGS...`; returns its stdout on success.
fn run_script(args: &[&str]) -> Result<String, FixtureError> {
    run_script_with(args, "")
}

/// Runs `scripts/zk ARGS...` with extra zoo.cfg lines (`ZK_EXTRA_CFG`).
fn run_script_with(args: &[&str], extra_cfg: &str) -> Result<String, FixtureError> {
    run_script_env(args, extra_cfg, &[])
}

/// Runs `scripts/zk ARGS...` with extra zoo.cfg lines and environment variables.
fn run_script_env(
    args: &[&str],
    extra_cfg: &str,
    env: &[(&str, &OsStr)],
) -> Result<String, FixtureError> {
    let script = zk_script();
    let output = Command::new(&script)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .env("ZK_EXTRA_CFG", extra_cfg)
        .env("ZK_OWNER_PID", std::process::id().to_string())
        .output()
        .map_err(|source| FixtureError::Spawn {
            script: script.clone(),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.success() {
        return Ok(stdout);
    }
    // Exit code 3 is `scripts/zk check` saying java / the jars are missing.
    if output.status.code() == Some(3) {
        return Err(FixtureError::Missing { details: stderr });
    }
    Err(FixtureError::Script {
        command: args.join(" "),
        status: output.status,
        stderr,
    })
}

/// A directory name fragment from the current test's name (the test harness
/// names each test's thread after it), or `fallback`.
fn name_hint(fallback: &str) -> String {
    let name = std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .map(|n| n.rsplit("::").next().unwrap_or(n).to_owned())
        .unwrap_or_else(|| fallback.to_owned());
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    if cleaned.is_empty() {
        fallback.to_owned()
    } else {
        cleaned
    }
}

fn parse_connect_string(s: &str) -> Result<Vec<SocketAddr>, FixtureError> {
    let bad = || FixtureError::BadConnectString(s.to_owned());
    let addrs = s
        .split(',')
        .map(|a| a.parse::<SocketAddr>().map_err(|_| bad()))
        .collect::<Result<Vec<_>, _>>()?;
    if addrs.is_empty() {
        return Err(bad());
    }
    Ok(addrs)
}

/// Sends a four-letter word to `addr` and returns the full reply.
pub fn four_letter_to(addr: SocketAddr, cmd: &str) -> Result<String, FixtureError> {
    let err = |source| FixtureError::FourLetter {
        cmd: cmd.to_owned(),
        addr,
        source,
    };
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(err)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(err)?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .map_err(err)?;
    stream.write_all(cmd.as_bytes()).map_err(err)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).map_err(err)?;
    Ok(reply)
}

impl ZkServer {
    /// Starts a standalone server on a free loopback port and waits until it
    /// serves (`srvr` says `Mode: standalone`).
    pub fn standalone() -> Result<ZkServer, FixtureError> {
        Self::start(Kind::Standalone, 1, "")
    }

    /// Starts an `n`-member ensemble and waits until it has exactly one
    /// leader and every member serves as leader or follower.
    pub fn ensemble(n: usize) -> Result<ZkServer, FixtureError> {
        Self::start(Kind::Ensemble, n.max(1), "")
    }

    /// Like [`ZkServer::ensemble`], with extra `zoo.cfg` lines (`key=value`, one per line)
    /// that override the defaults (e.g. `localSessionsEnabled=true` for read-only mode).
    pub fn ensemble_with_config(n: usize, extra_cfg: &str) -> Result<ZkServer, FixtureError> {
        Self::start(Kind::Ensemble, n.max(1), extra_cfg)
    }

    /// A standalone server that also serves TLS on a secure client port (Netty connection
    /// factory); see [`ZkServer::secure_connect_string`]. The plain port stays open.
    pub fn standalone_tls(tls: &ServerTls) -> Result<ZkServer, FixtureError> {
        Self::start_tls(Kind::Standalone, 1, "", Some(tls))
    }

    /// An `n`-member ensemble whose members also serve TLS (see [`ZkServer::standalone_tls`]).
    pub fn ensemble_tls(n: usize, tls: &ServerTls) -> Result<ZkServer, FixtureError> {
        Self::start_tls(Kind::Ensemble, n.max(1), "", Some(tls))
    }

    /// A standalone server that requires every client to authenticate with SASL
    /// DIGEST-MD5 as one of `users` (`(name, password)`; names of letters, digits, `_`, `.`,
    /// `-`; passwords without quotes, backslashes, commas or white space) before any other
    /// request: a JAAS `Server` section with ZooKeeper's `DigestLoginModule`, the SASL
    /// authentication provider, and `enforce.auth.enabled=true` with
    /// `enforce.auth.schemes=sasl` (see `ZK_SASL_USERS` in `scripts/zk`).
    pub fn standalone_sasl(users: &[(&str, &str)]) -> Result<ZkServer, FixtureError> {
        let users = users
            .iter()
            .map(|(u, p)| format!("{u}:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        Self::start_with(Kind::Standalone, 1, "", None, Some(&users))
    }

    fn start(kind: Kind, n: usize, extra_cfg: &str) -> Result<ZkServer, FixtureError> {
        Self::start_with(kind, n, extra_cfg, None, None)
    }

    fn start_tls(
        kind: Kind,
        n: usize,
        extra_cfg: &str,
        tls: Option<&ServerTls>,
    ) -> Result<ZkServer, FixtureError> {
        Self::start_with(kind, n, extra_cfg, tls, None)
    }

    fn start_with(
        kind: Kind,
        n: usize,
        extra_cfg: &str,
        tls: Option<&ServerTls>,
        sasl_users: Option<&str>,
    ) -> Result<ZkServer, FixtureError> {
        let fallback = match kind {
            Kind::Standalone => "standalone".to_owned(),
            Kind::Ensemble => format!("ensemble{n}"),
        };
        let base = workspace_root().join("target").join("zk");
        std::fs::create_dir_all(&base).map_err(|source| FixtureError::Dir {
            dir: base.clone(),
            source,
        })?;
        let dir = base.join(format!(
            "{}-{}-{}",
            name_hint(&fallback),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let dir_str = dir.to_string_lossy().into_owned();
        let n_str = n.to_string();
        let auth = Path::new(match tls.map(|t| t.client_auth) {
            Some(ClientAuth::Want) => "want",
            Some(ClientAuth::Need) => "need",
            _ => "none",
        });
        let mut env: Vec<(&str, &OsStr)> = match tls {
            Some(t) => vec![
                ("ZK_TLS_KEYSTORE", t.keystore.as_os_str()),
                ("ZK_TLS_TRUSTSTORE", t.truststore.as_os_str()),
                ("ZK_TLS_CLIENT_AUTH", auth.as_os_str()),
            ],
            None => Vec::new(),
        };
        if let Some(users) = sasl_users {
            env.push(("ZK_SASL_USERS", OsStr::new(users)));
        }
        let stdout = match kind {
            Kind::Standalone => run_script_env(&["start-standalone", &dir_str], extra_cfg, &env)?,
            Kind::Ensemble => {
                run_script_env(&["start-ensemble", &dir_str, &n_str], extra_cfg, &env)?
            }
        };
        let connect = stdout.trim().to_owned();
        // From here on, Drop cleans up even if parsing fails.
        let mut server = ZkServer {
            kind,
            dir,
            connect: connect.clone(),
            addrs: Vec::new(),
            secure: None,
        };
        server.addrs = parse_connect_string(&connect)?;
        if server.addrs.len() != n {
            return Err(FixtureError::BadConnectString(connect));
        }
        if tls.is_some() {
            let secure = std::fs::read_to_string(server.dir.join("secure_connect"))
                .map(|s| s.trim().to_owned())
                .unwrap_or_default();
            if parse_connect_string(&secure).map(|a| a.len()).ok() != Some(n) {
                return Err(FixtureError::BadConnectString(secure));
            }
            server.secure = Some(secure);
        }
        Ok(server)
    }

    /// Standalone or ensemble.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Number of members (1 for standalone).
    pub fn size(&self) -> usize {
        self.addrs.len()
    }

    /// The connect string, `127.0.0.1:P1[,127.0.0.1:P2...]`.
    pub fn connect_string(&self) -> &str {
        &self.connect
    }

    /// The connect string of the TLS client ports (servers started with
    /// [`ZkServer::standalone_tls`] or [`ZkServer::ensemble_tls`]), else `None`.
    pub fn secure_connect_string(&self) -> Option<&str> {
        self.secure.as_deref()
    }

    /// Client addresses of all members, in member order.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.addrs.clone()
    }

    /// Client address of member `i` (0-based).
    pub fn address(&self, i: usize) -> Result<SocketAddr, FixtureError> {
        self.check(i)?;
        Ok(self.addrs[i])
    }

    /// The fixture directory (configs, data dirs, `nodeN/server.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of member `i`'s server log (0-based `i`; the file is `node{i+1}/server.log`).
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node{}", i + 1)).join("server.log")
    }

    /// PID of member `i`'s JVM as last recorded (it may have been killed since).
    pub fn pid(&self, i: usize) -> Option<u32> {
        let path = self.dir.join(format!("node{}", i + 1)).join("pid");
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    fn check(&self, i: usize) -> Result<(), FixtureError> {
        if i < self.addrs.len() {
            Ok(())
        } else {
            Err(FixtureError::NoSuchMember {
                index: i,
                size: self.addrs.len(),
            })
        }
    }

    /// SIGKILLs member `i` (0-based) and waits until the process is gone.
    /// Killing an already dead member is a no-op.
    pub fn kill(&self, i: usize) -> Result<(), FixtureError> {
        self.check(i)?;
        let dir = self.dir.to_string_lossy().into_owned();
        run_script(&["kill", &dir, &(i + 1).to_string()]).map(drop)
    }

    /// Starts member `i` (0-based) again with the same data dir and ports,
    /// and waits until it serves (standalone, or leader/follower). Fails if
    /// it is still running.
    pub fn restart(&self, i: usize) -> Result<(), FixtureError> {
        self.check(i)?;
        let dir = self.dir.to_string_lossy().into_owned();
        run_script(&["restart", &dir, &(i + 1).to_string()]).map(drop)
    }

    /// Like [`restart`](Self::restart) but returns as soon as the JVM is
    /// launched (use when the member cannot reach a quorum, e.g. to observe
    /// read-only mode).
    pub fn restart_no_wait(&self, i: usize) -> Result<(), FixtureError> {
        self.check(i)?;
        let dir = self.dir.to_string_lossy().into_owned();
        run_script(&["restart", &dir, &(i + 1).to_string(), "--no-wait"]).map(drop)
    }

    /// Sends a four-letter word (`ruok`, `srvr`, `stat`, `mntr`, `cons`,
    /// `wchs`, `dump`, ...) to member `i` (0-based) and returns the reply.
    pub fn four_letter(&self, i: usize, cmd: &str) -> Result<String, FixtureError> {
        four_letter_to(self.address(i)?, cmd)
    }

    /// Member `i`'s `Mode:` from `srvr` (`standalone`, `leader`, `follower`,
    /// `observer`, `read-only`), or `None` if it answers but is not serving.
    pub fn mode(&self, i: usize) -> Result<Option<String>, FixtureError> {
        let reply = self.four_letter(i, "srvr")?;
        Ok(reply
            .lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(|m| m.trim().to_owned()))
    }

    /// Index of the member whose `srvr` says `Mode: leader` (for standalone:
    /// `Some(0)` if it serves). Unreachable members are skipped.
    pub fn leader_index(&self) -> Option<usize> {
        (0..self.size()).find(|&i| {
            matches!(
                self.mode(i).ok().flatten().as_deref(),
                Some("leader") | Some("standalone")
            )
        })
    }

    /// Polls until some member is leader (e.g. after killing the leader).
    pub fn wait_for_leader(&self, timeout: Duration) -> Result<usize, FixtureError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.leader_index() {
                return Ok(i);
            }
            if Instant::now() >= deadline {
                return Err(FixtureError::Timeout(timeout, "a leader".to_owned()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Output of `scripts/zk status` (one line per member: index, pid,
    /// running/dead, address, mode). Handy in assertion messages.
    pub fn status(&self) -> Result<String, FixtureError> {
        run_script(&["status", &self.dir.to_string_lossy()])
    }

    /// Stops every member now (what `Drop` does, but reporting errors).
    pub fn stop(&self) -> Result<(), FixtureError> {
        run_script(&["stop", &self.dir.to_string_lossy()]).map(drop)
    }
}

impl fmt::Debug for ZkServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZkServer")
            .field("kind", &self.kind)
            .field("connect", &self.connect)
            .field("dir", &self.dir)
            .finish()
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            // Can't return an error from Drop; make it visible in test output.
            eprintln!(
                "zkit-tests: stopping ZooKeeper in {}: {e}",
                self.dir.display()
            );
            return;
        }
        if !std::thread::panicking() && std::env::var_os("ZKIT_KEEP_ZK_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_connect_strings() {
        let a = parse_connect_string("127.0.0.1:2181,127.0.0.1:2182").expect("valid");
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].port(), 2182);
        assert!(parse_connect_string("").is_err());
        assert!(parse_connect_string("localhost").is_err());
    }
}
