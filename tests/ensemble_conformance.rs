//! Differential test of the simulated 3-node ensemble (`zkit_sim::ensemble`, in turmoil)
//! against a real 3-node ZooKeeper 3.8 ensemble (`ZkServer::ensemble(3)`): one scripted
//! sequence runs through zkit clients against each, and the two transcripts must be equal.
//!
//! The script (see [`script`]): three sessions pinned to chosen members (`S0` on the
//! lower-numbered follower `F1`, `S1` on the other follower `F2`, `S2` on the leader `L`);
//! creates (persistent, ephemeral, sequential), set/get/exists/getChildren, multi (applied
//! and failed), sync, one-shot watches and a persistent recursive watch; errors (NoNode,
//! NodeExists, BadVersion, NotEmpty, NoChildrenForEphemerals, a failed multi's index and
//! code); then `F1` is killed (`S0` moves with its session; a watch it set before the move
//! fires for a change made while it was away; its ephemeral node survives) and restarted;
//! then a session `D` on the restarted member is cut off for good and left to expire (its
//! ephemeral node goes, other sessions' watches on it fire, its own ends with the session);
//! last the leader is killed: every session moves to the new epoch with its session and
//! watches (a follower that loses its leader drops its clients), and the new leader is the
//! follower ZooKeeper's election picks (the higher server id, the logs being equal).
//!
//! Compared:
//! - every result and error code (a failed multi by index and code);
//! - Stat fields except times: versions, lengths, child counts; zxids (czxid, mzxid,
//!   pzxid) by their rank among the zxids the transcript mentions, so their order and
//!   equalities are compared and not their values (session creation, pings and elections
//!   take zxids differently); ephemeral owners as the script's own session names;
//! - children as sets (neither server sorts them);
//! - the watch events of each session: after each step every live session does a `sync`
//!   round trip (a notification the step caused arrives before the sync's reply, also on a
//!   follower) and then polls its one-shot watchers once, in the order it set them; `S1`'s
//!   persistent recursive watch on the script's root gives the order of all node events as
//!   that session received them;
//! - the connection states each session went through (`S0`: Suspended, Connected; `D`:
//!   Suspended, Lost; everybody's when the leader dies), that sessions kept their ids, the
//!   role of the member `S0` moved to, and which follower became leader.
//!
//! Not compared: times, raw zxids and session ids, the order in which events of *different*
//! sessions arrive, and the order of two one-shot watchers of one session that fire in the
//! same step (listed in the order they were set). Nor what a session on one member reads of
//! another session's write before a sync: in ZooKeeper that is timing (a write is answered
//! once the writer's member applied it, the others apply it when they do), so the script
//! syncs first. What leader the real ensemble elects is
//! up to it: the script names members by role, never by index.
//!
//! The script pins a client to a member by putting the member where the client's seeded host
//! shuffle tries first (the client asserts where it landed, so a change in the shuffle fails
//! loudly). The real ensemble must start: the test never skips.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, UNIX_EPOCH};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::broadcast;
use zkit::{
    AddWatchMode, Builder, Client, CreateMode, Error, Op, OpResult, PersistentWatcher, Stat, State,
    WatchedEvent, Watcher,
};
use zkit_sim::ensemble::{Ensemble, EnsembleConfig};
use zkit_sim::net::TurmoilConnector;
use zkit_tests::proxy::{Mode, Proxy};
use zkit_tests::ZkServer;

// ----- the transcript -----

/// One transcript token: text, or a zxid to be replaced by its rank.
#[derive(Debug)]
enum Tok {
    Text(String),
    Zxid(i64),
}

/// What a script saw, with zxids kept apart until [`Transcript::render`] ranks them.
#[derive(Default)]
struct Transcript {
    lines: Vec<Vec<Tok>>,
    /// Session ids with the names the script gave them (owners are shown by name).
    sessions: Vec<(i64, &'static str)>,
}

impl Transcript {
    fn line(&mut self, text: String) {
        self.lines.push(vec![Tok::Text(text)]);
    }

    fn stat(&self, line: &mut Vec<Tok>, s: &Stat) {
        let owner = match self
            .sessions
            .iter()
            .find(|(id, _)| *id == s.ephemeral_owner)
        {
            _ if s.ephemeral_owner == 0 => "none".to_owned(),
            Some((_, name)) => (*name).to_owned(),
            None => "another session".to_owned(),
        };
        line.push(Tok::Text(" stat{cz=".into()));
        line.push(Tok::Zxid(s.czxid));
        line.push(Tok::Text(" mz=".into()));
        line.push(Tok::Zxid(s.mzxid));
        line.push(Tok::Text(" pz=".into()));
        line.push(Tok::Zxid(s.pzxid));
        line.push(Tok::Text(format!(
            " v={} cv={} av={} owner={owner} len={} kids={}}}",
            s.version, s.cversion, s.aversion, s.data_length, s.num_children
        )));
    }

    fn result<T>(
        &mut self,
        head: &str,
        r: Result<T, Error>,
        ok: impl FnOnce(&Self, &mut Vec<Tok>, T),
    ) {
        let mut line = vec![Tok::Text(head.to_owned())];
        match r {
            Ok(v) => {
                line.push(Tok::Text(" -> ok".into()));
                ok(self, &mut line, v);
            }
            Err(e) => line.push(Tok::Text(format!(" -> {}", error(&e)))),
        }
        self.lines.push(line);
    }

    /// The transcript with zxids replaced by their rank among the zxids it mentions.
    fn render(&self) -> Vec<String> {
        let zxids: BTreeSet<i64> = self
            .lines
            .iter()
            .flatten()
            .filter_map(|t| match t {
                Tok::Zxid(z) => Some(*z),
                Tok::Text(_) => None,
            })
            .collect();
        let rank = |z: i64| zxids.iter().position(|&x| x == z).unwrap_or(usize::MAX);
        self.lines
            .iter()
            .map(|l| {
                l.iter()
                    .map(|t| match t {
                        Tok::Text(s) => s.clone(),
                        Tok::Zxid(0) => "z0".to_owned(),
                        Tok::Zxid(z) => format!("#{}", rank(*z)),
                    })
                    .collect()
            })
            .collect()
    }
}

fn error(e: &Error) -> String {
    match e {
        Error::MultiFailed { index, code, .. } => format!("MultiFailed[{index}] {code:?}"),
        e => match e.code() {
            Some(code) => format!("{code:?}"),
            None => format!("client error {e:?}"),
        },
    }
}

/// A children list as a set.
fn children(kids: &[String]) -> String {
    let set: BTreeSet<&String> = kids.iter().collect();
    assert_eq!(set.len(), kids.len(), "a child listed twice: {kids:?}");
    format!(" {set:?}")
}

fn event(e: &WatchedEvent) -> String {
    format!("{:?} {} {:?}", e.event_type, e.path, e.state)
}

fn data(d: &[u8]) -> String {
    format!(" {:?}", String::from_utf8_lossy(d))
}

// ----- the two ensembles -----

/// What the script needs from an ensemble. Members are numbered 0..3 in the order of
/// [`Cluster::hosts`].
trait Cluster {
    /// Each member's client address.
    fn hosts(&self) -> Vec<String>;
    /// A client builder for `hosts` (in simulation, with the turmoil connector).
    fn builder(&self, hosts: &str) -> Builder;
    /// The member that leads now.
    async fn leader(&self) -> usize;
    /// Kills member `m`: its clients' connections end.
    async fn kill(&self, m: usize);
    /// Starts member `m` again and returns once it serves, synced with the leader.
    async fn restart(&self, m: usize);
    /// A connect string for one session on member `m` that [`Cluster::isolate`] can later
    /// cut off from every server.
    async fn isolatable(&mut self, m: usize) -> String;
    /// Cuts the session that connected through [`Cluster::isolatable`] off for good.
    async fn isolate(&self);
    /// After the script closed its sessions.
    async fn closed(&self);
}

/// The real ensemble: members killed and restarted by the fixture, an isolatable session
/// behind a proxy that is switched to refusing and cut.
struct RealCluster<'a> {
    zk: &'a ZkServer,
    proxy: Option<Proxy>,
}

impl Cluster for RealCluster<'_> {
    fn hosts(&self) -> Vec<String> {
        self.zk.addresses().iter().map(|a| a.to_string()).collect()
    }

    fn builder(&self, hosts: &str) -> Builder {
        Client::builder(hosts)
    }

    async fn leader(&self) -> usize {
        tokio::task::block_in_place(|| self.zk.wait_for_leader(Duration::from_secs(30)))
            .expect("the real ensemble has a leader")
    }

    async fn kill(&self, m: usize) {
        tokio::task::block_in_place(|| self.zk.kill(m)).expect("kill a real member");
    }

    async fn restart(&self, m: usize) {
        tokio::task::block_in_place(|| self.zk.restart(m)).expect("restart a real member");
    }

    async fn isolatable(&mut self, m: usize) -> String {
        let proxy = Proxy::start(self.zk.address(m).expect("a member"))
            .await
            .expect("start a proxy");
        let hosts = proxy.connect_string();
        self.proxy = Some(proxy);
        hosts
    }

    async fn isolate(&self) {
        let proxy = self.proxy.as_ref().expect("an isolatable session");
        proxy.set_mode(Mode::Refuse);
        proxy.cut();
    }

    async fn closed(&self) {}
}

/// What the simulated script asks the test's stepping loop to do (only it can crash hosts).
#[derive(Debug, Clone, Copy)]
enum Cmd {
    Kill(u8),
    Restart(u8),
    Isolate(u8),
}

#[derive(Default)]
struct Control {
    pending: Option<Cmd>,
    done: usize,
    transcript: Option<Vec<String>>,
}

/// The turmoil host the simulated script's clients run on.
const SCRIPT_HOST: &str = "script";

/// The simulated ensemble: the script runs in the turmoil host [`SCRIPT_HOST`] and asks the
/// stepping loop (through [`Control`]) for crashes, restarts and partitions.
struct SimCluster {
    ens: Ensemble,
    ctl: Rc<RefCell<Control>>,
    isolatable: Option<u8>,
}

impl SimCluster {
    /// Hands `cmd` to the stepping loop and waits (in simulated time) until it is done.
    async fn ask(&self, cmd: Cmd) {
        let before = {
            let mut c = self.ctl.borrow_mut();
            assert!(c.pending.is_none(), "one command at a time");
            c.pending = Some(cmd);
            c.done
        };
        while self.ctl.borrow().done == before {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

fn sim_id(m: usize) -> u8 {
    u8::try_from(m + 1).expect("a member")
}

impl Cluster for SimCluster {
    fn hosts(&self) -> Vec<String> {
        let port = self.ens.config().server.client_port;
        (1..=self.ens.config().servers)
            .map(|id| format!("{}:{port}", Ensemble::host(id)))
            .collect()
    }

    fn builder(&self, hosts: &str) -> Builder {
        Client::builder(hosts).connector(TurmoilConnector)
    }

    async fn leader(&self) -> usize {
        usize::from(
            self.ens
                .leader()
                .expect("the simulated ensemble has a leader")
                - 1,
        )
    }

    async fn kill(&self, m: usize) {
        self.ask(Cmd::Kill(sim_id(m))).await;
    }

    async fn restart(&self, m: usize) {
        self.ask(Cmd::Restart(sim_id(m))).await;
    }

    async fn isolatable(&mut self, m: usize) -> String {
        self.isolatable = Some(sim_id(m));
        self.hosts()[m].clone()
    }

    async fn isolate(&self) {
        let id = self.isolatable.expect("an isolatable session");
        self.ask(Cmd::Isolate(id)).await;
    }

    async fn closed(&self) {
        // A client whose handle is dropped while its connection is still open busy-loops
        // (see the report on issue 5): let the servers close the sockets first.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

// ----- the script -----

/// The session timeout of the long-lived sessions: long enough for `S0` to move after its
/// member dies (in simulation a crashed host's connections are noticed by the read timeout).
const TIMEOUT: Duration = Duration::from_secs(6);

/// The timeout of the session left to expire.
const SHORT_TIMEOUT: Duration = Duration::from_secs(2);

/// Bounds every wait of the script (in simulated time on that side).
const WAIT: Duration = Duration::from_secs(30);

async fn within<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {WAIT:?}"))
}

struct Sess {
    name: &'static str,
    client: Client,
    /// Every state the session went through since it connected.
    states: broadcast::Receiver<State>,
    /// One-shot watchers not fired yet, in the order they were set.
    watches: Vec<(String, Watcher)>,
    /// A persistent recursive watcher (only `S1` has one).
    stream: Option<PersistentWatcher>,
    live: bool,
}

impl Sess {
    fn watch(&mut self, label: String, w: Watcher) {
        self.watches.push((label, w));
    }
}

/// The connect string that makes a client seeded with `seed` try `order`'s members in that
/// order: the client shuffles its hosts with `ChaCha8Rng::seed_from_u64(seed)` first thing,
/// and a shuffle's permutation depends only on the length and the generator.
fn arrange(hosts: &[String], order: &[usize], seed: u64) -> String {
    let mut perm: Vec<usize> = (0..order.len()).collect();
    perm.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut given = vec![String::new(); order.len()];
    for (i, &p) in perm.iter().enumerate() {
        given[p] = hosts[order[i]].clone();
    }
    given.join(",")
}

fn poll_once(w: &mut Watcher) -> Option<WatchedEvent> {
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(w).poll(&mut cx) {
        Poll::Ready(e) => Some(e),
        Poll::Pending => None,
    }
}

fn poll_recv(w: &mut PersistentWatcher) -> Option<WatchedEvent> {
    let mut cx = Context::from_waker(Waker::noop());
    let recv = std::pin::pin!(w.recv());
    match recv.poll(&mut cx) {
        Poll::Ready(e) => e,
        Poll::Pending => None,
    }
}

/// Records the events the last step caused, session by session, without sleeping: a `sync`
/// round trip, then one poll of each outstanding watcher.
async fn collect(t: &mut Transcript, sessions: &mut [Sess]) {
    for s in sessions.iter_mut().filter(|s| s.live) {
        if let Err(e) = s.client.sync("/").await {
            t.line(format!("   {} sync -> {}", s.name, error(&e)));
        }
        let mut pending = Vec::new();
        for (label, mut w) in std::mem::take(&mut s.watches) {
            match poll_once(&mut w) {
                Some(ev) => t.line(format!("   {} watch {label} -> {}", s.name, event(&ev))),
                None => pending.push((label, w)),
            }
        }
        s.watches = pending;
        if let Some(w) = &mut s.stream {
            while let Some(ev) = poll_recv(w) {
                t.line(format!("   {} stream -> {}", s.name, event(&ev)));
            }
        }
    }
}

/// Records the states session `k` went through since the last call.
fn states(t: &mut Transcript, s: &mut Sess) {
    let mut seen = Vec::new();
    while let Ok(state) = s.states.try_recv() {
        seen.push(state);
    }
    t.line(format!("   {} states {seen:?}", s.name));
}

/// Opens a session named `name` on the first member of `order` (which it tries in that
/// order when it moves).
async fn open(
    cluster: &impl Cluster,
    t: &mut Transcript,
    name: &'static str,
    hosts: &str,
    first: &str,
    seed: u64,
    timeout: Duration,
) -> Sess {
    // Subscribed before the first connection: `connect()` returns once the client's state
    // says Connected, which (on a multi-threaded runtime) can be just before the transition
    // is broadcast, so a subscriber made after it may or may not see that first Connected.
    let client = cluster
        .builder(hosts)
        .session_timeout(timeout)
        .seed(seed)
        .build()
        .unwrap_or_else(|e| panic!("{name}'s client for {hosts}: {e}"));
    let states = client.state_changes();
    within("connect", client.wait_connected())
        .await
        .unwrap_or_else(|e| panic!("{name} connects to {hosts}: {e}"));
    assert_eq!(
        client.server().as_deref(),
        Some(first),
        "{name} is not on the member it was pinned to (did the client's host shuffle change?)"
    );
    t.sessions.push((client.session_id(), name));
    Sess {
        name,
        states,
        client,
        watches: Vec::new(),
        stream: None,
        live: true,
    }
}

/// Runs the script against `cluster`, returning the rendered transcript.
async fn script(mut cluster: impl Cluster) -> Vec<String> {
    let mut t = Transcript::default();
    let hosts = cluster.hosts();
    let l = cluster.leader().await;
    let f: Vec<usize> = (0..hosts.len()).filter(|&m| m != l).collect();
    let (f1, f2) = (f[0], f[1]);
    let role = |server: Option<String>| -> String {
        let m = hosts.iter().position(|h| Some(h) == server.as_ref());
        match m {
            Some(m) if m == l => "L".to_owned(),
            Some(m) if m == f1 => "F1".to_owned(),
            Some(m) if m == f2 => "F2".to_owned(),
            _ => format!("{server:?}"),
        }
    };
    let mut ss = Vec::new();
    for (name, order, seed) in [
        ("S0", [f1, f2, l], 11),
        ("S1", [f2, l, f1], 12),
        ("S2", [l, f1, f2], 13),
    ] {
        let given = arrange(&hosts, &order, seed);
        let s = open(
            &cluster,
            &mut t,
            name,
            &given,
            &hosts[order[0]],
            seed,
            TIMEOUT,
        )
        .await;
        t.line(format!("{name} connected to {}", role(s.client.server())));
        ss.push(s);
    }
    let [s0, s1, s2] = [0, 1, 2];
    let c = |ss: &[Sess], k: usize| ss[k].client.clone();

    // ----- operations, errors and watches -----
    let r = c(&ss, s2)
        .create("/d", b"root", CreateMode::Persistent)
        .await;
    t.result("S2 create /d", r, |t, l, (_, s)| t.stat(l, &s));
    let r = c(&ss, s2)
        .create("/d", b"again", CreateMode::Persistent)
        .await;
    t.result("S2 create /d again", r, |t, l, (_, s)| t.stat(l, &s));
    // A write is acknowledged once the writer's member applied it; another member may apply
    // it later, so a session on another member reads or watches it after a sync (`collect`
    // syncs every session). Without one, `S1` on a follower sometimes set its recursive
    // watch before its member had `/d` and then heard `/d` created, as ZooKeeper allows.
    collect(&mut t, &mut ss).await;
    let r = c(&ss, s1)
        .add_watch("/d", AddWatchMode::PersistentRecursive)
        .await;
    t.result(
        "S1 addWatch /d recursive",
        r.map(|w| ss[s1].stream = Some(w)),
        |_, _, ()| {},
    );
    let r = c(&ss, s1).exists_watch("/d/p").await;
    t.result(
        "S1 exists+watch /d/p",
        r.map(|(s, w)| {
            ss[s1].watch("exists /d/p".into(), w);
            s
        }),
        |t, l, s| match s {
            Some(s) => t.stat(l, &s),
            None => l.push(Tok::Text(" none".into())),
        },
    );
    let r = c(&ss, s0)
        .create("/d/p", b"p0", CreateMode::Persistent)
        .await;
    t.result("S0 create /d/p", r, |t, l, (_, s)| t.stat(l, &s));
    collect(&mut t, &mut ss).await;

    let r = c(&ss, s1).get_data_watch("/d/p").await;
    t.result(
        "S1 getData+watch /d/p",
        r.map(|(d, s, w)| {
            ss[s1].watch("data /d/p".into(), w);
            (d, s)
        }),
        |t, l, (d, s)| {
            l.push(Tok::Text(data(&d)));
            t.stat(l, &s);
        },
    );
    let r = c(&ss, s1).get_children_watch("/d/p").await;
    t.result(
        "S1 getChildren+watch /d/p",
        r.map(|(k, w)| {
            ss[s1].watch("children /d/p".into(), w);
            k
        }),
        |_, l, k| l.push(Tok::Text(children(&k))),
    );
    let r = c(&ss, s0).exists_watch("/d/p").await;
    t.result(
        "S0 exists+watch /d/p",
        r.map(|(s, w)| {
            ss[s0].watch("exists /d/p".into(), w);
            s
        }),
        |t, l, s| t.stat(l, &s.expect("exists")),
    );
    let r = c(&ss, s2).set_data("/d/p", b"p1", Some(0)).await;
    t.result("S2 setData /d/p version 0", r, |t, l, s| t.stat(l, &s));
    collect(&mut t, &mut ss).await;

    let r = c(&ss, s2).set_data("/d/p", b"stale", Some(0)).await;
    t.result("S2 setData /d/p version 0 again", r, |t, l, s| {
        t.stat(l, &s)
    });
    let r = c(&ss, s0)
        .create("/d/leaf", b"", CreateMode::Persistent)
        .await;
    t.result("S0 create /d/leaf", r, |t, l, (_, s)| t.stat(l, &s));
    let r = c(&ss, s2).delete("/d/leaf", Some(3)).await;
    t.result("S2 delete /d/leaf version 3", r, |_, _, ()| {});
    let r = c(&ss, s0)
        .create("/d/p/e", b"eph", CreateMode::Ephemeral)
        .await;
    t.result("S0 create /d/p/e ephemeral", r, |t, l, (_, s)| {
        t.stat(l, &s)
    });
    collect(&mut t, &mut ss).await;

    for k in 0..2 {
        let r = c(&ss, s0)
            .create("/d/p/q-", &[k], CreateMode::PersistentSequential)
            .await;
        t.result("S0 create /d/p/q- sequential", r, |t, l, (p, s)| {
            l.push(Tok::Text(format!(" {p}")));
            t.stat(l, &s);
        });
    }
    let r = c(&ss, s2)
        .create("/d/p/q-", b"", CreateMode::EphemeralSequential)
        .await;
    t.result(
        "S2 create /d/p/q- ephemeral sequential",
        r,
        |t, l, (p, s)| {
            l.push(Tok::Text(format!(" {p}")));
            t.stat(l, &s);
        },
    );
    collect(&mut t, &mut ss).await;

    let r = c(&ss, s1).get_children("/d/p").await;
    t.result("S1 getChildren /d/p", r, |_, l, k| {
        l.push(Tok::Text(children(&k)))
    });
    let r = c(&ss, s1).get_children_with_stat("/d/p").await;
    t.result("S1 getChildren2 /d/p", r, |t, l, (k, s)| {
        l.push(Tok::Text(children(&k)));
        t.stat(l, &s);
    });
    let r = c(&ss, s1).exists("/d/p/e").await;
    t.result("S1 exists /d/p/e", r, |t, l, s| {
        t.stat(l, &s.expect("exists"))
    });
    // Errors.
    let r = c(&ss, s2).delete("/d/p", None).await;
    t.result("S2 delete /d/p", r, |_, _, ()| {});
    let r = c(&ss, s2).delete("/d/none", None).await;
    t.result("S2 delete /d/none", r, |_, _, ()| {});
    let r = c(&ss, s1).get_data("/d/none").await;
    t.result("S1 getData /d/none", r, |t, l, (_, s)| t.stat(l, &s));
    let r = c(&ss, s2).set_data("/d/none", b"", None).await;
    t.result("S2 setData /d/none", r, |t, l, s| t.stat(l, &s));
    let r = c(&ss, s0)
        .create("/d/none/x", b"", CreateMode::Persistent)
        .await;
    t.result("S0 create /d/none/x", r, |t, l, (_, s)| t.stat(l, &s));
    let r = c(&ss, s0)
        .create("/d/p/e/x", b"", CreateMode::Persistent)
        .await;
    t.result("S0 create /d/p/e/x", r, |t, l, (_, s)| t.stat(l, &s));
    // Transactions: one that applies, one that fails at its second op and applies nothing.
    let ops = [
        Op::create("/d/m", b"m", CreateMode::Persistent),
        Op::set_data("/d/p", b"p2", Some(1)),
        Op::check("/d/p", Some(2)),
        Op::create("/d/m/k", b"k", CreateMode::Persistent),
        Op::delete("/d/leaf", Some(0)),
    ];
    let r = c(&ss, s2).multi(&ops).await;
    t.result("S2 multi create/set/check/create/delete", r, |t, l, rs| {
        for r in rs {
            match r {
                OpResult::Create { path, stat } => {
                    l.push(Tok::Text(format!(" [create {path}")));
                    if let Some(s) = stat {
                        t.stat(l, &s);
                    }
                    l.push(Tok::Text("]".into()));
                }
                OpResult::SetData { stat } => {
                    l.push(Tok::Text(" [set".into()));
                    t.stat(l, &stat);
                    l.push(Tok::Text("]".into()));
                }
                other => l.push(Tok::Text(format!(" [{other:?}]"))),
            }
        }
    });
    collect(&mut t, &mut ss).await;
    let ops = [
        Op::check("/d/p", Some(2)),
        Op::create("/d/m", b"", CreateMode::Persistent),
        Op::delete("/d/p/e", None),
    ];
    let r = c(&ss, s2).multi(&ops).await;
    t.result("S2 multi check/create existing/delete", r, |_, l, rs| {
        l.push(Tok::Text(format!(" {rs:?}")));
    });
    let ops = [Op::delete("/d/m", None)];
    let r = c(&ss, s2).multi(&ops).await;
    t.result("S2 multi delete /d/m (not empty)", r, |_, l, rs| {
        l.push(Tok::Text(format!(" {rs:?}")));
    });
    let r = c(&ss, s1).sync("/d").await;
    t.result("S1 sync /d", r, |_, _, ()| {});
    let r = c(&ss, s1).get_data("/d/p").await;
    t.result("S1 getData /d/p", r, |t, l, (d, s)| {
        l.push(Tok::Text(data(&d)));
        t.stat(l, &s);
    });
    let r = c(&ss, s0).get_data("/d/m/k").await;
    t.result("S0 getData /d/m/k", r, |t, l, (d, s)| {
        l.push(Tok::Text(data(&d)));
        t.stat(l, &s);
    });
    collect(&mut t, &mut ss).await;

    // ----- S0's member dies: S0 moves with its session and watches -----
    let r = c(&ss, s0).get_data_watch("/d/p").await;
    t.result(
        "S0 getData+watch /d/p",
        r.map(|(d, _, w)| {
            ss[s0].watch("data /d/p".into(), w);
            d
        }),
        |_, l, d| l.push(Tok::Text(data(&d))),
    );
    let r = c(&ss, s0).get_children_watch("/d").await;
    t.result(
        "S0 getChildren+watch /d",
        r.map(|(k, w)| {
            ss[s0].watch("children /d".into(), w);
            k
        }),
        |_, l, k| l.push(Tok::Text(children(&k))),
    );
    for s in &mut ss {
        states(&mut t, s);
    }
    let session = ss[s0].client.session_id();
    let mut moving = ss[s0].client.state_changes();
    t.line("kill F1 (S0's member)".to_owned());
    cluster.kill(f1).await;
    let next = within("S0 suspended", moving.recv()).await;
    t.line(format!("   S0 -> {next:?}"));
    // Changed while S0 is away (or, in a real ensemble where the client moves within
    // milliseconds, maybe just after it arrived): either way its data watch fires once.
    let r = c(&ss, s2).set_data("/d/p", b"moving", None).await;
    t.result("S2 setData /d/p while S0 moves", r, |t, l, s| t.stat(l, &s));
    let next = within("S0 reconnected", moving.recv()).await;
    t.line(format!("   S0 -> {next:?}"));
    t.line(format!(
        "   S0 same session {}, now on {}",
        ss[s0].client.session_id() == session,
        role(ss[s0].client.server())
    ));
    collect(&mut t, &mut ss).await;
    let r = c(&ss, s2)
        .create("/d/after", b"", CreateMode::Persistent)
        .await;
    t.result("S2 create /d/after", r, |t, l, (_, s)| t.stat(l, &s));
    collect(&mut t, &mut ss).await;
    let r = c(&ss, s1).exists("/d/p/e").await;
    t.result("S1 exists /d/p/e (S0's ephemeral)", r, |t, l, s| match s {
        Some(s) => t.stat(l, &s),
        None => l.push(Tok::Text(" none".into())),
    });
    let r = c(&ss, s0).set_data("/d/p/e", b"still", Some(0)).await;
    t.result("S0 setData /d/p/e", r, |t, l, s| t.stat(l, &s));
    collect(&mut t, &mut ss).await;
    for s in &mut ss {
        states(&mut t, s);
    }

    // ----- F1 comes back; a session on it is cut off and expires -----
    cluster.restart(f1).await;
    t.line("restarted F1".to_owned());
    let isolatable = cluster.isolatable(f1).await;
    let d = open(
        &cluster,
        &mut t,
        "D",
        &isolatable,
        &isolatable,
        14,
        SHORT_TIMEOUT,
    )
    .await;
    ss.push(d);
    let sd = 3;
    let r = c(&ss, sd).sync("/d").await;
    t.result("D sync /d", r, |_, _, ()| {});
    let r = c(&ss, sd).get_children("/d/p").await;
    t.result("D getChildren /d/p", r, |_, l, k| {
        l.push(Tok::Text(children(&k)))
    });
    let r = c(&ss, sd).get_data("/d/p").await;
    t.result("D getData /d/p", r, |t, l, (d, s)| {
        l.push(Tok::Text(data(&d)));
        t.stat(l, &s);
    });
    let r = c(&ss, sd)
        .create("/d/p/d", b"", CreateMode::Ephemeral)
        .await;
    t.result("D create /d/p/d ephemeral", r, |t, l, (_, s)| t.stat(l, &s));
    // As for `/d` above: in a real ensemble even the leader may apply D's create after D's
    // member answered D.
    collect(&mut t, &mut ss).await;
    let r = c(&ss, sd).exists_watch("/d/p/d").await;
    t.result(
        "D exists+watch /d/p/d",
        r.map(|(s, w)| {
            ss[sd].watch("exists /d/p/d".into(), w);
            s
        }),
        |t, l, s| t.stat(l, &s.expect("exists")),
    );
    let r = c(&ss, s2).get_data_watch("/d/p/d").await;
    t.result(
        "S2 getData+watch /d/p/d",
        r.map(|(_, s, w)| {
            ss[s2].watch("data /d/p/d".into(), w);
            s
        }),
        |t, l, s| t.stat(l, &s),
    );
    let r = c(&ss, s1).get_children_watch("/d/p").await;
    t.result(
        "S1 getChildren+watch /d/p",
        r.map(|(k, w)| {
            ss[s1].watch("children /d/p".into(), w);
            k
        }),
        |_, l, k| l.push(Tok::Text(children(&k))),
    );
    let r = c(&ss, s1).exists_watch("/d/p/d").await;
    let gone = match r {
        Ok((s, w)) => {
            t.result("S1 exists+watch /d/p/d", Ok(s), |t, l, s| {
                t.stat(l, &s.expect("exists"))
            });
            w
        }
        Err(e) => panic!("S1 exists+watch /d/p/d: {e}"),
    };
    collect(&mut t, &mut ss).await;
    let mut ending = ss[sd].client.state_changes();
    t.line("cut D off for good".to_owned());
    cluster.isolate().await;
    ss[sd].live = false;
    // Which comes first, D's client declaring its session lost or the servers expiring it
    // (and S1 hearing of it), is timing: each is awaited on its own, and only each session's
    // own sequence is compared.
    loop {
        let next = within("D's session ends", ending.recv()).await;
        if next == Ok(State::Lost) {
            break;
        }
    }
    let ev = within("D's ephemeral node goes", gone).await;
    t.line(format!("   S1 watch exists /d/p/d -> {}", event(&ev)));
    for (label, w) in std::mem::take(&mut ss[sd].watches) {
        let ev = within("D's own watch ends", w).await;
        t.line(format!("   D watch {label} -> {}", event(&ev)));
    }
    states(&mut t, &mut ss[sd]);
    let r = c(&ss, sd).get_data("/d/p").await;
    t.result("D getData /d/p", r, |t, l, (_, s)| t.stat(l, &s));
    collect(&mut t, &mut ss).await;
    let r = c(&ss, s1).exists("/d/p/d").await;
    t.result("S1 exists /d/p/d", r, |t, l, s| match s {
        Some(s) => t.stat(l, &s),
        None => l.push(Tok::Text(" none".into())),
    });
    let r = c(&ss, s1).get_children_with_stat("/d/p").await;
    t.result("S1 getChildren2 /d/p", r, |t, l, (k, s)| {
        l.push(Tok::Text(children(&k)));
        t.stat(l, &s);
    });

    // ----- clean-up, with the last errors -----
    let r = c(&ss, s2).delete("/d/p/e", Some(0)).await;
    t.result("S2 delete /d/p/e version 0", r, |_, _, ()| {});
    let r = c(&ss, s2).delete("/d/p/e", Some(1)).await;
    t.result("S2 delete /d/p/e version 1", r, |_, _, ()| {});
    collect(&mut t, &mut ss).await;
    let r = c(&ss, s1).get_children("/d/p").await;
    t.result("S1 getChildren /d/p", r, |_, l, k| {
        l.push(Tok::Text(children(&k)))
    });
    for s in &mut ss {
        states(&mut t, s);
    }

    // ----- the leader dies: every session moves, with its watches, to the new epoch -----
    let r = c(&ss, s1).get_data_watch("/d/p").await;
    t.result(
        "S1 getData+watch /d/p",
        r.map(|(d, _, w)| {
            ss[s1].watch("data /d/p".into(), w);
            d
        }),
        |_, l, d| l.push(Tok::Text(data(&d))),
    );
    let r = c(&ss, s0).exists_watch("/d/after").await;
    t.result(
        "S0 exists+watch /d/after",
        r.map(|(s, w)| {
            ss[s0].watch("exists /d/after".into(), w);
            s
        }),
        |t, l, s| t.stat(l, &s.expect("exists")),
    );
    let ids: Vec<i64> = ss.iter().map(|s| s.client.session_id()).collect();
    let mut moves: Vec<_> = ss[..3].iter().map(|s| s.client.state_changes()).collect();
    t.line("kill L".to_owned());
    cluster.kill(l).await;
    // A follower that loses its leader drops its clients and looks for a new one
    // (`Learner.shutdown` closes every connection); the leader's clients lose theirs at once.
    for (k, rx) in moves.iter_mut().enumerate() {
        let mut seen = Vec::new();
        while seen.last() != Some(&State::Connected) {
            let next = within("a session moves to the new epoch", rx.recv())
                .await
                .expect("state changes");
            seen.push(next);
        }
        t.line(format!("   {} -> {seen:?}", ss[k].name));
    }
    let new_leader = cluster.leader().await;
    t.line(format!(
        "   new leader {}",
        role(Some(hosts[new_leader].clone()))
    ));
    for (k, s) in ss[..3].iter().enumerate() {
        t.line(format!(
            "   {} same session {}",
            s.name,
            s.client.session_id() == ids[k]
        ));
    }
    collect(&mut t, &mut ss).await;
    let r = c(&ss, s2).set_data("/d/p", b"epoch", None).await;
    t.result("S2 setData /d/p in the new epoch", r, |t, l, s| {
        t.stat(l, &s)
    });
    let r = c(&ss, s2).delete("/d/after", Some(0)).await;
    t.result("S2 delete /d/after", r, |_, _, ()| {});
    collect(&mut t, &mut ss).await;
    let r = c(&ss, s1).get_children_with_stat("/d/p").await;
    t.result(
        "S1 getChildren2 /d/p (S2's ephemeral)",
        r,
        |t, l, (k, s)| {
            l.push(Tok::Text(children(&k)));
            t.stat(l, &s);
        },
    );
    let r = c(&ss, s0).get_data("/d/p").await;
    t.result("S0 getData /d/p", r, |t, l, (d, s)| {
        l.push(Tok::Text(data(&d)));
        t.stat(l, &s);
    });
    for s in &mut ss {
        states(&mut t, s);
    }

    for s in ss.iter().filter(|s| s.live) {
        s.client.close().await;
    }
    cluster.closed().await;
    t.render()
}

// ----- running it -----

/// The script against the simulated ensemble; also returns how long the simulation took in
/// simulated time.
fn simulated() -> (Vec<String>, Duration) {
    let seed = 7;
    let ens = Ensemble::new(EnsembleConfig {
        seed,
        ..EnsembleConfig::default()
    });
    let mut sim = turmoil::Builder::new()
        .epoch(UNIX_EPOCH + Duration::from_secs(1_704_067_200))
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(600))
        .build();
    ens.register(&mut sim);
    let converge = |sim: &mut turmoil::Sim<'_>, ens: &Ensemble| {
        let until = sim.elapsed() + Duration::from_secs(30);
        while !ens.converged() {
            assert!(
                sim.elapsed() < until,
                "the simulated ensemble did not converge: {:#?}",
                ens.events()
            );
            sim.step().expect("simulation step");
        }
    };
    converge(&mut sim, &ens);
    let ctl = Rc::new(RefCell::new(Control::default()));
    let cluster = SimCluster {
        ens: ens.clone(),
        ctl: ctl.clone(),
        isolatable: None,
    };
    let out = ctl.clone();
    sim.client(SCRIPT_HOST, async move {
        let transcript = script(cluster).await;
        out.borrow_mut().transcript = Some(transcript);
        Ok(())
    });
    loop {
        if let Some(t) = ctl.borrow_mut().transcript.take() {
            return (t, sim.elapsed());
        }
        if let Err(e) = sim.step() {
            panic!("simulation failed: {e}\nservers: {:#?}", ens.events());
        }
        let cmd = ctl.borrow_mut().pending.take();
        let Some(cmd) = cmd else { continue };
        match cmd {
            Cmd::Kill(id) => ens.crash(&mut sim, id),
            Cmd::Restart(id) => {
                ens.bounce(&mut sim, id);
                converge(&mut sim, &ens);
            }
            Cmd::Isolate(id) => sim.partition(SCRIPT_HOST, Ensemble::host(id)),
        }
        ctl.borrow_mut().done += 1;
    }
}

/// The script against a real ensemble.
fn real() -> Vec<String> {
    let zk = ZkServer::ensemble(3).expect(
        "a real 3-node ZooKeeper 3.8 ensemble must start for the ensemble conformance test",
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let cluster = RealCluster {
            zk: &zk,
            proxy: None,
        };
        tokio::time::timeout(Duration::from_secs(120), script(cluster))
            .await
            .expect("the script finishes against the real ensemble")
    })
}

#[test]
fn simulated_ensemble_matches_a_real_ensemble() {
    let started = Instant::now();
    let (sim, sim_time) = simulated();
    let sim_took = started.elapsed();
    let started = Instant::now();
    let real = real();
    let real_took = started.elapsed();
    eprintln!(
        "simulated: {sim_took:?} ({sim_time:?} simulated); real: {real_took:?}; {} lines",
        real.len()
    );
    if std::env::var_os("ZKIT_CONFORMANCE_SHOW").is_some() {
        eprintln!(
            "real:\n{}\n\nsimulated:\n{}",
            real.join("\n"),
            sim.join("\n")
        );
    }
    if real != sim {
        let at = real
            .iter()
            .zip(&sim)
            .position(|(a, b)| a != b)
            .unwrap_or(real.len().min(sim.len()));
        panic!(
            "first difference at line {at}\n real: {:?}\n  sim: {:?}\n\nreal transcript:\n{}\n\nsimulated transcript:\n{}",
            real.get(at),
            sim.get(at),
            real.join("\n"),
            sim.join("\n")
        );
    }
}
