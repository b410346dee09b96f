//! Real mode's runner: one run of a scenario against a real ZooKeeper ensemble
//! ([`RealEnsemble`]), in wall-clock time, with the same fault schedule, targets,
//! workloads, history, checkers and coverage as a simulated seed.
//!
//! - Every client is a process-like host: each incarnation runs on its own thread with its
//!   own tokio runtime, so a crash (dropping that runtime) ends everything it started,
//!   zkit's background tasks included, and closes its sockets the way the kernel closes a
//!   dead process's. Each client reaches each member through its own [`Proxy`], so a fault
//!   can cut, hold or slow one client's links without touching the others'.
//! - The members' links to each other go through the ensemble's proxies; server faults
//!   (partition, split, lag, crash and restart) act there and on the members' processes.
//! - A monitor polls every member's `dump` and files a client's session as gone when,
//!   once listed by the leader's session tracker, it is listed by no leader's (an isolated
//!   old leader's included) in three reads in a row (one read can miss a live session) and
//!   stays out of them for `syncLimit` ticks plus 2 s (a leader cut off from its quorum
//!   expires sessions by itself, uncommitted, and the next leader lists them again). It
//!   records [`Event::SessionExpired`] when a member's log says "Expiring session", else
//!   [`Event::SessionClosed`] (a takeover's close, or the client's own), stamped with the
//!   last poll that still saw the session, so the checkers that judge clients' beliefs
//!   against the ensemble's expiries get the same input as in simulation (a lower bound of
//!   the expiry time, within the poll interval).
//!
//! Runs are not deterministic: the `run` number seeds the fault schedule, the targets and
//! the clients' random streams exactly as a simulated seed would, but timing is the
//! machine's.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use zkit::Client;

use super::world::{Host, Takeover, World};
use super::{schedule, Outcome, Run};
use crate::ensemble::peer::Role;
use crate::history::{Event, History};
use crate::real::ensemble::{leader_of, RealConfig, RealEnsemble, RealError};
use crate::real::proxy::{Direction, Mode, Proxy, ProxyHandle};
use crate::scenario::Scenario;
use crate::workload::{self, ClientSpec};

/// A client host's body in real mode: like [`super::ClientBody`], but shareable with the
/// client's thread (each incarnation builds its future on its own thread).
pub type RealBody =
    Arc<dyn Fn(ClientSpec, u32) -> Pin<Box<dyn Future<Output = workload::Result>>> + Send + Sync>;

/// How to run a scenario against a real ensemble.
#[derive(Clone, Default)]
pub struct RealOptions {
    /// Run this instead of the scenario's roles on every client (a planted bug).
    pub body: Option<RealBody>,
    /// Where the members' configs, data and logs go (`None`: under `target/zk/`).
    pub dir: Option<std::path::PathBuf>,
    /// Where a failing run's trace (`trace.txt`) and the members' logs (`s1.log`, ...) are
    /// written, before the ensemble's directory is removed.
    pub failure_dir: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for RealOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealOptions")
            .field("body", &self.body.as_ref().map(|_| "custom"))
            .field("dir", &self.dir)
            .field("failure_dir", &self.failure_dir)
            .finish()
    }
}

/// How long the runner sleeps between looks at the schedule.
const STEP: Duration = Duration::from_millis(10);
/// How much longer than its duration a real run lasts: faults end (and the liveness window
/// starts) a few steps late in real time.
const OVERRUN: Duration = Duration::from_millis(500);
/// How often the members' modes are read (`srvr`) while a target is awaited.
const MODES_EVERY: Duration = Duration::from_millis(100);
/// How often the leader's session tracker is read.
const SESSIONS_EVERY: Duration = Duration::from_millis(100);
/// Beyond `syncLimit` ticks, how long a session must stay out of every leader's tracker
/// before it is filed as expired (time for the next leader to be elected and list it).
const CONFIRM_MARGIN: Duration = Duration::from_secs(2);
/// How many reads in a row must miss a session before it counts as gone.
const MISSES: u32 = 3;

/// Runs `scenario` once against a real ensemble; `run` plays the part of a seed (schedule,
/// targets and client streams). Blocking: call it outside any async runtime.
pub fn run_real(
    scenario: &Scenario,
    run: u64,
    options: &RealOptions,
) -> Result<Outcome, RealError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("zkit-real")
        .build()
        .map_err(|source| RealError::File {
            path: "tokio runtime".into(),
            source,
        })?;
    let mut config = RealConfig::from_scenario(scenario);
    config.dir.clone_from(&options.dir);
    let ens = rt.block_on(RealEnsemble::start(config))?;
    let history = History::real_time();
    let world = RealWorld {
        rt,
        ens,
        history: history.clone(),
        body: options.body.clone(),
        clients: BTreeMap::new(),
        crashed: BTreeSet::new(),
        modes: None,
        takeovers: Arc::new(Mutex::new(BTreeSet::new())),
        monitor: None,
        confirm: scenario.tick * scenario.sync_limit + CONFIRM_MARGIN,
        events: Arc::new(Mutex::new(Vec::new())),
    };
    let schedule = schedule(scenario, run);
    let mut driver = Run::with_history(scenario, run, world, history);
    driver.go(run, &schedule);
    let (outcome, mut world) = driver.finish(run, schedule);
    world.stop_clients();
    if let (false, Some(dir)) = (outcome.passed(), &options.failure_dir) {
        save(dir, &outcome, &world.ens)?;
    }
    Ok(outcome)
}

/// Writes a failing run's trace and its members' logs under `dir`.
fn save(dir: &std::path::Path, outcome: &Outcome, ens: &RealEnsemble) -> Result<(), RealError> {
    let file_err = |path: &std::path::Path| {
        let path = path.to_owned();
        move |source| RealError::File { path, source }
    };
    std::fs::create_dir_all(dir).map_err(file_err(dir))?;
    let trace = dir.join("trace.txt");
    std::fs::write(&trace, &outcome.trace).map_err(file_err(&trace))?;
    for i in 0..ens.size() {
        let to = dir.join(format!("s{}.log", i + 1));
        // A member that never started has no log; the others are copied.
        if ens.log_path(i).exists() {
            std::fs::copy(ens.log_path(i), &to).map_err(file_err(&to))?;
        }
    }
    Ok(())
}

/// One client host: its proxies (one per member) and its running incarnation.
struct ClientHost {
    spec: ClientSpec,
    proxies: Vec<Proxy>,
    incarnation: u32,
    running: Option<Incarnation>,
}

/// A client incarnation's thread and the signal that ends it.
struct Incarnation {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

/// The real world: the ensemble, the client hosts, the runtime the proxies run on.
struct RealWorld {
    rt: tokio::runtime::Runtime,
    ens: RealEnsemble,
    history: History,
    body: Option<RealBody>,
    clients: BTreeMap<usize, ClientHost>,
    /// Members crashed and not restarted (0-based).
    crashed: BTreeSet<usize>,
    /// The members' last modes and when they were read.
    modes: Option<(Duration, Vec<Option<String>>)>,
    /// Sessions a takeover closed (filed as closed, not expired).
    takeovers: Arc<Mutex<BTreeSet<i64>>>,
    monitor: Option<tokio::task::JoinHandle<()>>,
    /// See [`SessionMonitor::confirm`].
    confirm: Duration,
    /// What the runner and the monitor saw of the members (the trace's server part).
    events: Arc<Mutex<Vec<String>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RealWorld {
    fn event(&self, what: String) {
        let at = self.history.now();
        lock(&self.events).push(format!("{:>10.3} {what}", at.as_secs_f64()));
    }

    /// The members' modes, read at most every [`MODES_EVERY`].
    fn modes(&mut self) -> Vec<Option<String>> {
        let now = self.history.now();
        if let Some((at, modes)) = &self.modes {
            if now < *at + MODES_EVERY {
                return modes.clone();
            }
        }
        let modes = self.rt.block_on(self.ens.modes());
        self.modes = Some((now, modes.clone()));
        modes
    }

    fn spawn_incarnation(&mut self, c: usize) {
        let body = self.body.clone();
        let history = self.history.clone();
        let Some(host) = self.clients.get_mut(&c) else {
            return;
        };
        let incarnation = host.incarnation;
        host.incarnation += 1;
        let spec = host.spec.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let name = format!("{}-{incarnation}", spec.host());
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        history.note(&name, format!("cannot start a runtime: {e}"));
                        return;
                    }
                };
                rt.block_on(async {
                    let work = async {
                        match body {
                            Some(body) => body(spec, incarnation).await,
                            None => workload::run(spec, incarnation).await,
                        }
                    };
                    tokio::select! {
                        result = work => {
                            if let Err(e) = result {
                                history.note(&name, format!("role failed: {e}"));
                            }
                        }
                        _ = stopped => {}
                    }
                });
                // Everything the incarnation spawned dies with its runtime.
                rt.shutdown_timeout(Duration::from_millis(100));
            });
        match thread {
            Ok(thread) => host.running = Some(Incarnation { stop, thread }),
            Err(e) => self
                .history
                .note("runner", format!("cannot start a client thread: {e}")),
        }
    }

    fn kill_client(&mut self, c: usize) {
        let Some(host) = self.clients.get_mut(&c) else {
            return;
        };
        if let Some(inc) = host.running.take() {
            let _ = inc.stop.send(());
            let _ = inc.thread.join();
        }
        for p in &host.proxies {
            p.handle().close_all();
        }
    }

    fn stop_clients(&mut self) {
        let clients: Vec<usize> = self.clients.keys().copied().collect();
        for c in clients {
            self.kill_client(c);
        }
        if let Some(m) = self.monitor.take() {
            m.abort();
        }
    }

    /// The proxies, with the direction, that carry what `from` sends to `to` (none between
    /// two clients).
    fn carriers(&self, from: Host, to: Host) -> Vec<(ProxyHandle, Direction)> {
        let client = |c: usize, s: u8, dir: Direction| {
            self.clients
                .get(&c)
                .and_then(|h| h.proxies.get(usize::from(s) - 1))
                .map(|p| (p.handle(), dir))
                .into_iter()
                .collect()
        };
        match (from, to) {
            (Host::Client(c), Host::Server(s)) => client(c, s, Direction::Up),
            (Host::Server(s), Host::Client(c)) => client(c, s, Direction::Down),
            (Host::Server(a), Host::Server(b)) => {
                self.ens.one_way(usize::from(a) - 1, usize::from(b) - 1)
            }
            (Host::Client(_), Host::Client(_)) => Vec::new(),
        }
    }

    /// Sets `mode` on what `from` sends to `to`.
    fn set_mode(&mut self, from: Host, to: Host, mode: Mode) {
        for (p, dir) in self.carriers(from, to) {
            p.set_mode(dir, mode);
        }
    }
}

impl World for RealWorld {
    fn elapsed(&self) -> Duration {
        self.history.now()
    }

    fn step(&mut self) -> Result<(), String> {
        std::thread::sleep(STEP);
        Ok(())
    }

    fn overrun(&self) -> Duration {
        OVERRUN
    }

    fn start(&mut self, history: &History) {
        let members: Vec<SocketAddr> = (0..self.ens.size())
            .map(|i| SocketAddr::from(([127, 0, 0, 1], self.ens.ports(i).client)))
            .collect();
        let monitor = SessionMonitor {
            members,
            logs: (0..self.ens.size()).map(|i| self.ens.log_path(i)).collect(),
            confirm: self.confirm,
            history: history.clone(),
            takeovers: self.takeovers.clone(),
            events: self.events.clone(),
        };
        self.monitor = Some(self.rt.spawn(monitor.run()));
        self.event(format!(
            "real ensemble of {} in {}",
            self.ens.size(),
            self.ens.dir().display()
        ));
    }

    fn leader(&mut self) -> Option<u8> {
        leader_of(&self.modes()).and_then(|i| u8::try_from(i + 1).ok())
    }

    fn up_servers(&mut self, role: Option<Role>) -> Vec<u8> {
        let modes = self.modes();
        (0..modes.len())
            .filter(|i| !self.crashed.contains(i))
            .filter(|&i| match role {
                None => true,
                Some(Role::Following) => modes[i].as_deref() == Some("follower"),
                Some(Role::Leading) => {
                    matches!(modes[i].as_deref(), Some("leader" | "standalone"))
                }
                Some(Role::Looking) => modes[i].is_none(),
            })
            .map(|i| i as u8 + 1)
            .collect()
    }

    fn connect_string(&self) -> String {
        // Each client gets its own proxies in `start_client`.
        self.ens.connect_string()
    }

    fn server_at(&self, client: usize, addr: &str) -> Option<u8> {
        let host = self.clients.get(&client)?;
        let i = host
            .proxies
            .iter()
            .position(|p| p.addr().to_string() == addr)?;
        u8::try_from(i + 1).ok()
    }

    fn start_client(&mut self, mut spec: ClientSpec) {
        let mut proxies = Vec::new();
        for i in 0..self.ens.size() {
            let upstream = SocketAddr::from(([127, 0, 0, 1], self.ens.ports(i).client));
            let name = format!("{} -> s{}", spec.host(), i + 1);
            match self.rt.block_on(Proxy::start(&name, upstream)) {
                Ok(p) => proxies.push(p),
                Err(e) => {
                    self.history
                        .note("runner", format!("proxy {name} cannot start: {e}"));
                    return;
                }
            }
        }
        spec.hosts = proxies
            .iter()
            .map(|p| p.addr().to_string())
            .collect::<Vec<_>>()
            .join(",");
        let c = spec.client;
        self.clients.insert(
            c,
            ClientHost {
                spec,
                proxies,
                incarnation: 0,
                running: None,
            },
        );
        self.spawn_incarnation(c);
    }

    fn cut(&mut self, from: Host, to: Host) {
        self.set_mode(from, to, Mode::Drop);
    }

    fn repair(&mut self, from: Host, to: Host) {
        self.set_mode(from, to, Mode::Pass);
    }

    fn hold(&mut self, a: Host, b: Host) {
        self.set_mode(a, b, Mode::Hold);
        self.set_mode(b, a, Mode::Hold);
    }

    fn release(&mut self, a: Host, b: Host) {
        self.set_mode(a, b, Mode::Pass);
        self.set_mode(b, a, Mode::Pass);
    }

    fn set_latency(&mut self, a: Host, b: Host, latency: Option<Duration>) {
        // Loopback is the base latency; a fault adds its own on top.
        let latency = latency.unwrap_or_default();
        for (p, dir) in self.carriers(a, b) {
            p.set_latency(dir, latency);
        }
    }

    fn set_loss(&mut self, _a: Host, _b: Host, _rate: Option<f64>) {
        // Refused before the run (`real::support`): nothing to do.
    }

    fn crash(&mut self, host: Host) {
        match host {
            Host::Client(c) => self.kill_client(c),
            Host::Server(id) => {
                let i = usize::from(id) - 1;
                self.crashed.insert(i);
                self.modes = None;
                if let Err(e) = self.rt.block_on(self.ens.crash(i)) {
                    self.event(format!("crash s{id} failed: {e}"));
                } else {
                    self.event(format!("s{id} killed (SIGKILL)"));
                }
            }
        }
    }

    fn restart(&mut self, host: Host) {
        match host {
            Host::Client(c) => {
                self.kill_client(c);
                self.spawn_incarnation(c);
            }
            Host::Server(id) => {
                let i = usize::from(id) - 1;
                if !self.crashed.remove(&i) {
                    let _ = self.rt.block_on(self.ens.crash(i));
                }
                self.modes = None;
                match self.rt.block_on(self.ens.restart(i, false)) {
                    Ok(()) => self.event(format!("s{id} started again on its data")),
                    Err(e) => self.event(format!("restart s{id} failed: {e}")),
                }
            }
        }
    }

    fn freeze(&mut self, id: u8, frozen: bool) {
        let i = usize::from(id) - 1;
        self.modes = None;
        let verb = if frozen {
            "paused (SIGSTOP)"
        } else {
            "resumed (SIGCONT)"
        };
        match self.rt.block_on(self.ens.freeze(i, frozen)) {
            Ok(()) => self.event(format!("s{id} {verb}")),
            Err(e) => self.event(format!("s{id} not {verb}: {e}")),
        }
    }

    fn expire(&mut self, takeover: Takeover) {
        lock(&self.takeovers).insert(takeover.session);
        let hosts: Vec<String> = (0..self.ens.size())
            .map(|i| format!("127.0.0.1:{}", self.ens.ports(i).client))
            .collect();
        let hosts = hosts.join(",");
        self.rt
            .spawn(async move { takeover.run(Client::builder(&hosts)).await });
    }

    fn check(&mut self) -> Vec<String> {
        Vec::new()
    }

    fn events(&mut self) -> Vec<String> {
        lock(&self.events).clone()
    }
}

impl Drop for RealWorld {
    fn drop(&mut self) {
        self.stop_clients();
    }
}

/// Watches the leader's session tracker and files client sessions that leave it.
struct SessionMonitor {
    members: Vec<SocketAddr>,
    /// The members' logs, which tell an expiry from a close.
    logs: Vec<std::path::PathBuf>,
    /// How long a session must stay out of every leader's tracker before it is filed: a
    /// leader cut off from its quorum keeps leading for `syncLimit` ticks and expires
    /// sessions by itself meanwhile, uncommitted; the next leader lists them again.
    confirm: Duration,
    history: History,
    takeovers: Arc<Mutex<BTreeSet<i64>>>,
    events: Arc<Mutex<Vec<String>>>,
}

impl SessionMonitor {
    async fn run(self) {
        // Client sessions, with the last time a leader's tracker listed them.
        let mut seen: BTreeMap<i64, Duration> = BTreeMap::new();
        // The members whose `dump` is a leader's, and the sessions they have listed since
        // they became that set: a new leader's tracker may be empty for a moment, so only a
        // session the current leaders listed can leave their trackers.
        let mut leaders: Vec<usize> = Vec::new();
        let mut listed: BTreeSet<i64> = BTreeSet::new();
        // Sessions missing from the last reads (how many in a row): `dump` walks a
        // snapshot of the expiry buckets while pings move sessions into new ones, so one
        // read can miss a live session (seen in practice); a session is gone when
        // [`MISSES`] reads in a row miss it.
        let mut missing: BTreeMap<i64, u32> = BTreeMap::new();
        // Sessions gone from the leaders' trackers, and since when, not yet filed: see
        // [`SessionMonitor::confirm`].
        let mut pending: BTreeMap<i64, Duration> = BTreeMap::new();
        loop {
            tokio::time::sleep(SESSIONS_EVERY).await;
            let at = self.history.now();
            let dumps = self.leader_dumps().await;
            if dumps.is_empty() {
                continue;
            }
            let now_leaders: Vec<usize> = dumps.iter().map(|(i, _)| *i).collect();
            if now_leaders != leaders {
                let names: Vec<String> =
                    now_leaders.iter().map(|i| format!("s{}", i + 1)).collect();
                lock(&self.events).push(format!(
                    "{:>10.3} leader's tracker read from {}",
                    at.as_secs_f64(),
                    names.join(",")
                ));
                leaders = now_leaders;
                listed.clear();
                missing.clear();
            }
            // A session any leader lists is alive (an isolated old leader may have dropped
            // it on its own, uncommitted).
            let tracked: BTreeSet<i64> = dumps.into_iter().flat_map(|(_, s)| s).collect();
            // Every session of this ensemble is a client's (a takeover resumes one).
            for &s in &tracked {
                seen.insert(s, at);
                listed.insert(s);
            }
            missing = listed
                .iter()
                .filter(|s| !tracked.contains(s))
                .map(|s| (*s, missing.get(s).map_or(1, |n| n + 1)))
                .collect();
            let gone: Vec<i64> = missing
                .iter()
                .filter(|(_, n)| **n >= MISSES)
                .map(|(s, _)| *s)
                .collect();
            for session in gone {
                missing.remove(&session);
                listed.remove(&session);
                pending.insert(session, at);
                // An `expire` fault cutting the client off until now may end.
                self.history.mark_session_ended(session);
            }
            // A session a leader lists again was not expired: an isolated leader drops
            // sessions on its own timer, in closes that are never committed.
            pending.retain(|s, _| !tracked.contains(s));
            let confirmed: Vec<i64> = pending
                .iter()
                .filter(|(_, since)| at.saturating_sub(**since) >= self.confirm)
                .map(|(s, _)| *s)
                .collect();
            for session in confirmed {
                pending.remove(&session);
                let Some(last) = seen.remove(&session) else {
                    continue;
                };
                let closed = lock(&self.takeovers).contains(&session) || !self.expired(session);
                let event = if closed {
                    Event::SessionClosed { session }
                } else {
                    Event::SessionExpired { session }
                };
                self.history.record_at(last, event);
                lock(&self.events).push(format!(
                    "{:>10.3} session {session:#x} {} (last listed at {:.3})",
                    at.as_secs_f64(),
                    if closed { "closed" } else { "expired" },
                    last.as_secs_f64()
                ));
            }
        }
    }

    /// Whether a member's log says its session tracker expired `session` (ZooKeeper logs
    /// "Expiring session 0x..., timeout of ... exceeded"); otherwise it was closed, by a
    /// takeover or by its own client (zkit closes a session its own timer gave up before
    /// opening a new one).
    fn expired(&self, session: i64) -> bool {
        let needle = format!("Expiring session {:#x},", session as u64);
        self.logs
            .iter()
            .any(|log| std::fs::read_to_string(log).is_ok_and(|text| text.contains(&needle)))
    }

    /// Every member whose `dump` is a leader's (or a standalone server's), with the sessions
    /// its tracker lists.
    async fn leader_dumps(&self) -> Vec<(usize, BTreeSet<i64>)> {
        let reads: Vec<_> = self
            .members
            .iter()
            .map(|&addr| {
                tokio::task::spawn_blocking(move || {
                    crate::real::ensemble::four_letter_to(addr, "dump")
                })
            })
            .collect();
        let mut out = Vec::new();
        for (i, read) in reads.into_iter().enumerate() {
            if let Ok(Ok(reply)) = read.await {
                if let Some(sessions) = sessions_of_dump(&reply) {
                    out.push((i, sessions));
                }
            }
        }
        out
    }
}

/// The sessions in a leader's (or standalone server's) `dump`: the `0x...` lines of its
/// session tracker, before the ephemeral nodes. `None` when the reply is not a leader's.
fn sessions_of_dump(reply: &str) -> Option<BTreeSet<i64>> {
    let (tracker, _) = reply.split_once("ephemeral nodes dump")?;
    if !tracker.contains("Session Sets") {
        return None;
    }
    Some(
        tracker
            .lines()
            .filter_map(|l| l.trim().strip_prefix("0x"))
            .filter_map(|h| u64::from_str_radix(h.trim(), 16).ok())
            .map(|s| s as i64)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::sessions_of_dump;

    #[test]
    fn a_leaders_dump_lists_its_sessions() {
        let reply = "SessionTracker dump:\nGlobal Session Sets (2)/(2):\n\
            0 expire at Thu Jan 01 00:00:04 UTC 1970:\n\t0x100000abc\n\
            1 expire at Thu Jan 01 00:00:06 UTC 1970:\n\t0xff00000000000001\n\
            ephemeral nodes dump:\nSessions with Ephemerals (1):\n0x100000abc:\n\t/l/x\n";
        let s = sessions_of_dump(reply).expect("a leader's dump");
        assert_eq!(s.len(), 2);
        assert!(s.contains(&0x100000abc));
        assert!(s.contains(&(0xff00000000000001u64 as i64)));
    }

    #[test]
    fn a_followers_dump_is_not_read() {
        let reply =
            "SessionTracker dump:\norg.apache.zookeeper.server.quorum.LearnerSessionTracker@1\n\
            ephemeral nodes dump:\nSessions with Ephemerals (0):\n";
        assert_eq!(sessions_of_dump(reply), None);
    }
}
