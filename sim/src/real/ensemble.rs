//! A real ZooKeeper ensemble on loopback whose members reach each other only through
//! [`Proxy`]s, plus one client proxy per member.
//!
//! Member `i`'s `zoo.cfg` lists itself at its real quorum and election ports and every
//! peer `j` at the ports of the proxies `i -> j`, so every connection `i` opens to `j`
//! (a follower to its leader on the quorum port, election notifications on the election
//! port) crosses the proxy of the ordered pair `(i, j)`. ZooKeeper's election handshake
//! announces the sender's own election address, which the receiver may connect back to;
//! the election proxies rewrite it ([`Intercept::ElectionHello`]) to the reverse link's
//! proxy, so no traffic between members bypasses the fault layer. Reconfiguration is off
//! (each member's view of its peers differs, by design).
//!
//! Processes are managed by `scripts/zk` (`ports`, `common-cfg`, `start-prepared`, `kill`,
//! `restart`, `stop`): the same launcher, JVM flags and shared `zoo.cfg` lines as the
//! project's real-server tests. Four-letter words go straight to the members' real client
//! ports, so observing the ensemble is never affected by the faults.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::proxy::{Direction, Intercept, Mode, Proxy, ProxyHandle};
use crate::scenario::Scenario;

/// Why the real ensemble could not start or be driven.
#[derive(Debug, thiserror::Error)]
pub enum RealError {
    /// Only 1, 3 or 5 members are supported.
    #[error("a real ensemble has 1, 3 or 5 members, not {0}")]
    Size(usize),
    /// `scripts/zk` could not be run.
    #[error("cannot run {script}: {source} (it must exist and be executable; bash is required)")]
    Spawn {
        /// The script.
        script: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Java or the ZooKeeper jars are missing.
    #[error(
        "real ZooKeeper is not available on this machine:\n{0}\n\
         install it with `scripts/zk install` (Debian package `zookeeper`)"
    )]
    Missing(String),
    /// `scripts/zk` failed.
    #[error("scripts/zk {command} failed ({status}):\n{stderr}")]
    Script {
        /// The arguments.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A file in the ensemble's directory.
    #[error("{path}: {source}")]
    File {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A proxy could not listen.
    #[error("starting proxy {name}: {source}")]
    Proxy {
        /// The proxy's name.
        name: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// `scripts/zk ports` printed something unexpected.
    #[error("scripts/zk ports printed {0:?}")]
    Ports(String),
    /// No such member.
    #[error("member {index} out of range (the ensemble has {size})")]
    NoSuchMember {
        /// The index asked for (0-based).
        index: usize,
        /// The ensemble's size.
        size: usize,
    },
    /// A four-letter word could not be sent or answered.
    #[error("four-letter word {cmd} to {addr}: {source}")]
    FourLetter {
        /// The word.
        cmd: String,
        /// The member's real client address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A background task panicked or was cancelled.
    #[error("blocking task: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// How to start a real ensemble.
#[derive(Debug, Clone, PartialEq)]
pub struct RealConfig {
    /// 1, 3 or 5.
    pub size: usize,
    /// ZooKeeper's `tickTime`.
    pub tick: Duration,
    /// `syncLimit`, in ticks.
    pub sync_limit: u32,
    /// `initLimit`, in ticks.
    pub init_limit: u32,
    /// Extra `zoo.cfg` lines (`key=value`, one a line), overriding the defaults.
    pub extra_cfg: String,
    /// Where the members' configs, data and logs go (wiped first). `None`: a fresh
    /// directory under `<workspace>/target/zk/`.
    pub dir: Option<PathBuf>,
}

impl RealConfig {
    /// `size` members with `scripts/zk`'s defaults (tick 500 ms, syncLimit 10, initLimit 20).
    pub fn new(size: usize) -> RealConfig {
        RealConfig {
            size,
            tick: Duration::from_millis(500),
            sync_limit: crate::scenario::DEFAULT_SYNC_LIMIT,
            init_limit: crate::scenario::DEFAULT_INIT_LIMIT,
            extra_cfg: String::new(),
            dir: None,
        }
    }

    /// The ensemble a scenario describes: its size, tick and limits, and read-only mode.
    /// The members always run with `readonlymode.enabled` (`scripts/zk`), but a member
    /// without quorum can hand out read-only sessions only if local sessions are enabled,
    /// so a scenario with `read_only = true` enables them (upgraded to global sessions when
    /// a client creates an ephemeral node, as a deployment using read-only mode would).
    pub fn from_scenario(scenario: &Scenario) -> RealConfig {
        let extra_cfg = if scenario.read_only {
            "localSessionsEnabled=true\nlocalSessionsUpgradingEnabled=true\n".to_owned()
        } else {
            String::new()
        };
        RealConfig {
            size: usize::from(scenario.servers),
            tick: scenario.tick,
            sync_limit: scenario.sync_limit,
            init_limit: scenario.init_limit,
            extra_cfg,
            dir: None,
        }
    }
}

/// The real ports of one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberPorts {
    /// Client port.
    pub client: u16,
    /// Quorum (follower to leader) port.
    pub quorum: u16,
    /// Leader-election port.
    pub election: u16,
}

/// The two proxies of the ordered pair `(from, to)`: the connections `from` opens to `to`.
#[derive(Debug, Clone)]
pub struct Link {
    /// Quorum traffic (a follower `from` syncing with its leader `to`).
    pub quorum: ProxyHandle,
    /// Election traffic.
    pub election: ProxyHandle,
}

/// A running real ensemble behind proxies. Dropping it SIGKILLs every member (and the
/// `scripts/zk` watchdog does the same if this process dies without dropping it).
#[derive(Debug)]
pub struct RealEnsemble {
    dir: PathBuf,
    ports: Vec<MemberPorts>,
    /// `(from, to)` -> the proxies of the connections `from` opens to `to`.
    links: HashMap<(usize, usize), (Proxy, Proxy)>,
    clients: Vec<Proxy>,
}

/// How long a quorum proxy retries a member that does not listen on its quorum port yet
/// (a follower's `connectToLeader` retries for about as long).
const QUORUM_CONNECT_RETRY: Duration = Duration::from_secs(3);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// `scripts/zk` (overridden by `ZKIT_ZK_SCRIPT`).
pub fn zk_script() -> PathBuf {
    std::env::var_os("ZKIT_ZK_SCRIPT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("scripts")
                .join("zk")
        })
}

/// Runs `scripts/zk ARGS` with `env` and returns its stdout (blocking).
fn run_script(args: &[String], env: &[(&str, String)]) -> Result<String, RealError> {
    let script = zk_script();
    let output = std::process::Command::new(&script)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("ZK_OWNER_PID", std::process::id().to_string())
        .output()
        .map_err(|source| RealError::Spawn {
            script: script.clone(),
            source,
        })?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    if output.status.code() == Some(3) {
        return Err(RealError::Missing(stderr));
    }
    Err(RealError::Script {
        command: args.join(" "),
        status: output.status,
        stderr,
    })
}

/// [`run_script`] off the async runtime, so the proxies keep forwarding meanwhile.
async fn run_script_async(
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
) -> Result<String, RealError> {
    tokio::task::spawn_blocking(move || run_script(&args, &env)).await?
}

fn write(path: &Path, text: &str) -> Result<(), RealError> {
    std::fs::write(path, text).map_err(|source| RealError::File {
        path: path.to_owned(),
        source,
    })
}

fn mkdir(path: &Path) -> Result<(), RealError> {
    std::fs::create_dir_all(path).map_err(|source| RealError::File {
        path: path.to_owned(),
        source,
    })
}

/// Sends a four-letter word to `addr` and returns the reply (blocking).
pub fn four_letter_to(addr: SocketAddr, cmd: &str) -> Result<String, RealError> {
    let err = |source| RealError::FourLetter {
        cmd: cmd.to_owned(),
        addr,
        source,
    };
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(err)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(err)?;
    stream.write_all(cmd.as_bytes()).map_err(err)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).map_err(err)?;
    Ok(reply)
}

/// The member whose mode (see [`RealEnsemble::modes`]) is leader or standalone, if exactly
/// one is.
pub fn leader_of(modes: &[Option<String>]) -> Option<usize> {
    let mut leaders =
        (0..modes.len()).filter(|&i| matches!(modes[i].as_deref(), Some("leader" | "standalone")));
    match (leaders.next(), leaders.next()) {
        (Some(i), None) => Some(i),
        _ => None,
    }
}

/// The `Mode:` line of a `srvr` reply (`leader`, `follower`, `standalone`, ...).
pub fn mode_of_srvr(reply: &str) -> Option<String> {
    reply
        .lines()
        .find_map(|l| l.strip_prefix("Mode: "))
        .map(|m| m.trim().to_owned())
}

impl RealEnsemble {
    /// Starts the ensemble and its proxies and waits until it serves (one leader, the rest
    /// followers; or a standalone server). Never skips: a missing Java or ZooKeeper is
    /// [`RealError::Missing`].
    pub async fn start(config: RealConfig) -> Result<RealEnsemble, RealError> {
        let n = config.size;
        if ![1, 3, 5].contains(&n) {
            return Err(RealError::Size(n));
        }
        let dir = match &config.dir {
            Some(d) => d.clone(),
            None => Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
                .join("zk")
                .join(format!(
                    "real{n}-{}-{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::Relaxed)
                )),
        };
        if dir.exists() {
            // A previous use: stop what may still run there, then wipe it.
            let _ = run_script_async(
                vec!["stop".into(), dir.to_string_lossy().into_owned()],
                Vec::new(),
            )
            .await;
            std::fs::remove_dir_all(&dir).map_err(|source| RealError::File {
                path: dir.clone(),
                source,
            })?;
        }
        mkdir(&dir)?;
        let dir = dir.canonicalize().map_err(|source| RealError::File {
            path: dir.clone(),
            source,
        })?;

        let out = run_script_async(vec!["ports".into(), (3 * n).to_string()], Vec::new()).await?;
        let nums: Vec<u16> = out
            .split_whitespace()
            .map(|p| p.parse::<u16>())
            .collect::<Result<_, _>>()
            .map_err(|_| RealError::Ports(out.clone()))?;
        if nums.len() != 3 * n {
            return Err(RealError::Ports(out));
        }
        let ports: Vec<MemberPorts> = nums
            .chunks(3)
            .map(|c| MemberPorts {
                client: c[0],
                quorum: c[1],
                election: c[2],
            })
            .collect();
        let local = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));

        let mut clients = Vec::with_capacity(n);
        for (i, p) in ports.iter().enumerate() {
            let name = format!("client->{i}");
            let proxy = Proxy::start(&name, local(p.client))
                .await
                .map_err(|source| RealError::Proxy { name, source })?;
            clients.push(proxy);
        }
        let mut links = HashMap::new();
        for from in 0..n {
            for to in (0..n).filter(|&to| to != from) {
                let name = format!("quorum {from}->{to}");
                let quorum = Proxy::start(&name, local(ports[to].quorum))
                    .await
                    .map_err(|source| RealError::Proxy { name, source })?;
                // A follower may reach for a leader that does not listen yet; as without a
                // proxy, that must look like a refused connect it retries, not a reset.
                quorum.handle().set_connect_retry(QUORUM_CONNECT_RETRY);
                let name = format!("election {from}->{to}");
                let election = Proxy::start(&name, local(ports[to].election))
                    .await
                    .map_err(|source| RealError::Proxy { name, source })?;
                links.insert((from, to), (quorum, election));
            }
        }
        // `from` announces itself on an election connection to `to`; `to` calls back
        // through its own proxy to `from`.
        for (&(from, to), (_, election)) in &links {
            let back = links[&(to, from)].1.addr();
            election
                .handle()
                .set_intercept(Some(Intercept::ElectionHello { advertise: back }));
        }

        let tick_ms = config.tick.as_millis().max(1).to_string();
        let extra = format!(
            "initLimit={}\nsyncLimit={}\nreconfigEnabled=false\n{}",
            config.init_limit, config.sync_limit, config.extra_cfg
        );
        let env = vec![("ZK_TICK_TIME", tick_ms), ("ZK_EXTRA_CFG", extra)];
        let common = run_script_async(vec!["common-cfg".into()], env.clone()).await?;
        let kind = if n == 1 { "standalone" } else { "ensemble" };
        write(&dir.join("kind"), &format!("{kind}\n"))?;
        write(&dir.join("size"), &format!("{n}\n"))?;
        for (i, p) in ports.iter().enumerate() {
            let nd = dir.join(format!("node{}", i + 1));
            mkdir(&nd.join("data"))?;
            let mut cfg = common.clone();
            if !cfg.ends_with('\n') {
                cfg.push('\n');
            }
            cfg.push_str(&format!("dataDir={}\n", nd.join("data").display()));
            if n == 1 {
                cfg.push_str(&format!(
                    "clientPort={}\nclientPortAddress=127.0.0.1\n",
                    p.client
                ));
            } else {
                cfg.push_str("standaloneEnabled=false\n");
                for (j, q) in ports.iter().enumerate() {
                    let (quorum, election) = if i == j {
                        (q.quorum, q.election)
                    } else {
                        let (qp, ep) = &links[&(i, j)];
                        (qp.addr().port(), ep.addr().port())
                    };
                    cfg.push_str(&format!(
                        "server.{}=127.0.0.1:{quorum}:{election}:participant;127.0.0.1:{}\n",
                        j + 1,
                        q.client
                    ));
                }
                write(&nd.join("data").join("myid"), &format!("{}\n", i + 1))?;
            }
            write(&nd.join("zoo.cfg"), &cfg)?;
            write(&nd.join("client_port"), &format!("{}\n", p.client))?;
        }
        let ensemble = RealEnsemble {
            dir,
            ports,
            links,
            clients,
        };
        run_script_async(vec!["start-prepared".into(), ensemble.dir_arg()], env).await?;
        tracing::info!(dir = %ensemble.dir.display(), size = n, "real ensemble serving");
        Ok(ensemble)
    }

    fn dir_arg(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }

    fn check(&self, i: usize) -> Result<(), RealError> {
        if i < self.size() {
            Ok(())
        } else {
            Err(RealError::NoSuchMember {
                index: i,
                size: self.size(),
            })
        }
    }

    /// Number of members.
    pub fn size(&self) -> usize {
        self.ports.len()
    }

    /// The directory with every member's `zoo.cfg`, data and `server.log`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Member `i`'s real ports.
    pub fn ports(&self, i: usize) -> MemberPorts {
        self.ports[i]
    }

    /// Member `i`'s log.
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node{}", i + 1)).join("server.log")
    }

    /// The connect string through the client proxies, in member order.
    pub fn connect_string(&self) -> String {
        self.clients
            .iter()
            .map(|p| p.addr().to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The client proxy in front of member `i`.
    pub fn client_proxy(&self, i: usize) -> ProxyHandle {
        self.clients[i].handle()
    }

    /// The proxies of the connections `from` opens to `to` (`from != to`).
    pub fn link(&self, from: usize, to: usize) -> Link {
        let (q, e) = &self.links[&(from, to)];
        Link {
            quorum: q.handle(),
            election: e.handle(),
        }
    }

    /// Every proxy: the client proxies, then the peer links.
    pub fn proxies(&self) -> Vec<ProxyHandle> {
        let mut all: Vec<ProxyHandle> = self.clients.iter().map(Proxy::handle).collect();
        for (q, e) in self.links.values() {
            all.push(q.handle());
            all.push(e.handle());
        }
        all
    }

    /// Stops whatever `from` sends to `to` (quorum and election), both on the connections
    /// `from` opens and on those `to` opens; `to`'s traffic to `from` still flows.
    pub fn cut_one_way(&self, from: usize, to: usize) {
        self.set_one_way(from, to, Mode::Drop);
    }

    /// Sets the mode of everything `from` sends to `to` (see [`RealEnsemble::cut_one_way`]).
    pub fn set_one_way(&self, from: usize, to: usize, mode: Mode) {
        for (p, dir) in self.one_way(from, to) {
            p.set_mode(dir, mode);
        }
    }

    /// The proxies, with the direction, that carry what `from` sends to `to`: up the
    /// connections `from` opens, down those `to` opens (quorum and election both).
    pub fn one_way(&self, from: usize, to: usize) -> Vec<(ProxyHandle, Direction)> {
        let up = self.link(from, to);
        let down = self.link(to, from);
        vec![
            (up.quorum, Direction::Up),
            (up.election, Direction::Up),
            (down.quorum, Direction::Down),
            (down.election, Direction::Down),
        ]
    }

    /// Partitions `a` from `b` both ways.
    pub fn partition(&self, a: usize, b: usize) {
        self.cut_one_way(a, b);
        self.cut_one_way(b, a);
    }

    /// Partitions every member of `side` from every member not in it (peer links only;
    /// clients still reach every member).
    pub fn split(&self, side: &[usize]) {
        for &a in side {
            for b in (0..self.size()).filter(|b| !side.contains(b)) {
                self.partition(a, b);
            }
        }
    }

    /// Clears every fault on every proxy (peer links and client proxies).
    pub fn heal_all(&self) {
        for p in self.proxies() {
            p.reset();
        }
    }

    /// SIGKILLs member `i` and waits until it is gone.
    pub async fn crash(&self, i: usize) -> Result<(), RealError> {
        self.check(i)?;
        run_script_async(
            vec!["kill".into(), self.dir_arg(), (i + 1).to_string()],
            Vec::new(),
        )
        .await
        .map(drop)
    }

    /// Freezes member `i` (SIGSTOP: a stop-the-world pause of its JVM, the kernel still
    /// buffering what it is sent), or thaws it (SIGCONT).
    pub async fn freeze(&self, i: usize, frozen: bool) -> Result<(), RealError> {
        self.check(i)?;
        let verb = if frozen { "pause" } else { "resume" };
        run_script_async(
            vec![verb.into(), self.dir_arg(), (i + 1).to_string()],
            Vec::new(),
        )
        .await
        .map(drop)
    }

    /// Starts member `i` again on its data dir and ports; with `wait`, until it serves.
    pub async fn restart(&self, i: usize, wait: bool) -> Result<(), RealError> {
        self.check(i)?;
        let mut args = vec!["restart".into(), self.dir_arg(), (i + 1).to_string()];
        if !wait {
            args.push("--no-wait".into());
        }
        run_script_async(args, Vec::new()).await.map(drop)
    }

    /// Sends a four-letter word to member `i`'s real client port (never through a proxy).
    pub async fn four_letter(&self, i: usize, cmd: &str) -> Result<String, RealError> {
        self.check(i)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.ports[i].client));
        let cmd = cmd.to_owned();
        tokio::task::spawn_blocking(move || four_letter_to(addr, &cmd)).await?
    }

    /// Member `i`'s `Mode:` from `srvr`, or `None` when it does not serve (down, or
    /// looking for a leader).
    pub async fn mode(&self, i: usize) -> Option<String> {
        let reply = self.four_letter(i, "srvr").await.ok()?;
        mode_of_srvr(&reply)
    }

    /// Every member's mode, in member order.
    pub async fn modes(&self) -> Vec<Option<String>> {
        let mut all = Vec::with_capacity(self.size());
        for i in 0..self.size() {
            all.push(self.mode(i).await);
        }
        all
    }

    /// The member whose `srvr` says leader (or standalone), if exactly one does.
    pub async fn leader(&self) -> Option<usize> {
        leader_of(&self.modes().await)
    }

    /// Polls the members' modes every 100 ms until `pred` holds; returns the modes, or
    /// the last ones seen after `timeout`.
    pub async fn wait_for_modes(
        &self,
        timeout: Duration,
        pred: impl Fn(&[Option<String>]) -> bool,
    ) -> Result<Vec<Option<String>>, Vec<Option<String>>> {
        let deadline = Instant::now() + timeout;
        loop {
            let modes = self.modes().await;
            if pred(&modes) {
                return Ok(modes);
            }
            if Instant::now() >= deadline {
                return Err(modes);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops every member now (what dropping does).
    pub fn stop(&self) -> Result<(), RealError> {
        run_script(&["stop".into(), self.dir_arg()], &[]).map(drop)
    }
}

impl Drop for RealEnsemble {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!(
                "zkit-sim: stopping ZooKeeper in {}: {e}",
                self.dir.display()
            );
            return;
        }
        if !std::thread::panicking() && std::env::var_os("ZKIT_KEEP_ZK_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
