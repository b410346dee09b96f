//! Differential conformance: the zkit client against a real ZooKeeper 3.8 standalone (one
//! shared per test binary, a fresh chroot per case) and against the simulated server (a fresh
//! one per case, in process, same tick time, reaper every 100 ms like `scripts/zk`'s). The
//! two transcripts must be identical: return values, error codes, Stat fields except times
//! (zxids compared by their rank within the case, ephemeral owners by session), children
//! (and ephemeral lists) as sets, and the watch events each session received. Where timing
//! legitimately differs (expiry, reaping) the outcome is compared exactly and the time as an
//! allowed range.
//!
//! Covered:
//! - generated (proptest, 2-3 sessions): create in every mode (TTL, containers, sequential,
//!   ACLs), setData, delete, exists/getData/getChildren with and without watches,
//!   getChildren2, multi, setACL/getACL, addAuth, addWatch (persistent, recursive), sync,
//!   multiRead (getData/getChildren, empty too), getEphemerals (all, by node, by a string
//!   prefix that is no node), and closing sessions (their ephemerals and watchers end);
//! - removeWatches and checkWatches for every watcher type against every kind of watch, and
//!   none (NOWATCHER), over a raw connection (the client only sends type Any);
//! - multis the client never sends: watch flags in a multiRead (ignored), empty multi and
//!   multiRead, a multi holding a read and a multiRead holding a write (MARSHALLINGERROR);
//! - reconnect to the same session through a proxy that cut the connection, while another
//!   session changed the watched nodes: SetWatches replays, ACLs on replay and after;
//! - session expiry of a cut-off client: ephemerals that vanish, other sessions' events, the
//!   client's states, watcher events and errors, and a resume refused as expired; expiry of
//!   a silent but connected session (the server closes the connection); expiry timing as the
//!   tick-bucket range;
//! - one session over several connections: resume, wrong password, unknown id, resume after
//!   close;
//! - TTL and container reaping: emptied containers, TTL from mtime, TTL nodes with children,
//!   never-used containers, as outcomes with time bounds;
//! - malformed requests; create2 results inside multi; children listed unsorted.
//!
//! Children are compared as sets because neither server sorts them; a separate test checks
//! that the simulated server does not (a recipe must sort by sequence itself).
//!
//! Events are collected without sleeping: after each step, every live session does a `sync`
//! round trip (ZooKeeper answers in order, so a notification the step caused has arrived
//! before the sync's reply) and then polls its outstanding watchers once. The fixed scenarios
//! wait on watch and state events, never on sleeps (one sleep lets time pass before a
//! setData, which is what it tests).
//!
//! `ZKIT_CONFORMANCE_CASES` sets the number of generated cases (default 64);
//! `ZKIT_CONFORMANCE_SHOW=1` prints every transcript and measured time.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use proptest::prelude::*;
use zkit::proto::Record as _;
use zkit::{
    Acl, AddWatchMode, Client, CreateMode, CreateOptions, Error, Op, OpResult, Perms,
    PersistentWatcher, ReadOp, ReadResult, Stat, State, Watcher,
};
use zkit_sim::server::{Server, ServerConfig};
use zkit_tests::proxy::{Mode, Proxy};
use zkit_tests::ZkServer;

// ----- the model -----

/// Nodes a case addresses, relative to its chroot. Sequential creates go under `/a` or `/b`
/// with prefix `s-`, so the first sequence numbers are addressable too. Containers are only
/// ever created at `/c`, which never gets children: the reaper, whose timing differs between
/// the two servers, then never has anything to do.
const PATHS: &[&str] = &[
    "/a",
    "/b",
    "/c",
    "/a/x",
    "/a/y",
    "/b/x",
    "/a/x/z",
    "/a/s-0000000000",
    "/a/s-0000000001",
    "/b/s-0000000000",
    "/",
];

const MODES: &[CreateMode] = &[
    CreateMode::Persistent,
    CreateMode::Ephemeral,
    CreateMode::PersistentSequential,
    CreateMode::EphemeralSequential,
    CreateMode::Container,
    CreateMode::PersistentWithTtl,
    CreateMode::PersistentSequentialWithTtl,
];

/// Prefixes for getEphemerals: every node of [`PATHS`] and prefixes that are no node.
const PREFIXES: &[&str] = &[
    "/",
    "/a",
    "/b",
    "/a/x",
    "/a/s",
    "/a/s-0000000000",
    "/b/s-",
    "/c",
    "/a/x/z",
    "/nope",
];

const USERS: &[&str] = &["user1:pw1", "user2:pw2", "user1:wrong"];

#[derive(Debug, Clone, Copy)]
enum Version {
    Any,
    Exact(i32),
}

impl Version {
    fn get(self) -> Option<i32> {
        match self {
            Version::Any => None,
            Version::Exact(v) => Some(v),
        }
    }
}

#[derive(Debug, Clone)]
struct Create {
    path: usize,
    data: u8,
    mode: usize,
    /// Index into [`acl`]'s choices; `None` for the default.
    acl: Option<usize>,
    /// For the TTL modes: a TTL that never passes during a case, or an invalid zero.
    long_ttl: bool,
}

#[derive(Debug, Clone)]
enum MultiStep {
    Create(Create),
    Delete(usize, Version),
    Set(usize, u8, Version),
    Check(usize, Version),
}

#[derive(Debug, Clone)]
enum Step {
    Create(usize, Create),
    Set(usize, usize, u8, Version),
    Delete(usize, usize, Version),
    Exists(usize, usize, bool),
    GetData(usize, usize, bool),
    GetChildren(usize, usize, bool),
    ChildrenWithStat(usize, usize),
    Multi(usize, Vec<MultiStep>),
    SetAcl(usize, usize, usize, Version),
    GetAcl(usize, usize),
    AddAuth(usize, usize),
    AddWatch(usize, usize, bool),
    /// sync on a node of [`PATHS`] (ZooKeeper does not check that it exists).
    Sync(usize, usize),
    /// A read-only multi (multiRead): (getChildren?, node) per read; may be empty.
    MultiRead(usize, Vec<(bool, usize)>),
    /// The session's ephemerals under a prefix of [`PREFIXES`] (a string prefix, not a path
    /// one: `/a/s` matches `/a/s-0000000000`).
    GetEphemerals(usize, usize),
    /// Closes the session; the session's next step opens a new one in its place.
    Close(usize),
}

#[derive(Debug, Clone)]
struct Case {
    sessions: usize,
    steps: Vec<Step>,
}

/// A node of [`PATHS`], top-level and second-level ones more often.
fn path() -> impl Strategy<Value = usize> + Clone {
    prop_oneof![3 => 0..3usize, 3 => 3..7usize, 2 => 7..PATHS.len()]
}

fn watch() -> impl Strategy<Value = bool> {
    prop::bool::weighted(0.7)
}

fn version() -> impl Strategy<Value = Version> {
    prop_oneof![Just(Version::Any), (-1..3i32).prop_map(Version::Exact)]
}

fn create() -> impl Strategy<Value = Create> {
    (
        path(),
        any::<u8>(),
        0..MODES.len(),
        prop::option::weighted(0.2, 0..ACL_CHOICES),
        prop::bool::weighted(0.8),
    )
        .prop_map(|(path, data, mode, acl, long_ttl)| Create {
            path,
            data,
            mode,
            acl,
            long_ttl,
        })
}

fn multi_step() -> impl Strategy<Value = MultiStep> {
    prop_oneof![
        create().prop_map(MultiStep::Create),
        (path(), version()).prop_map(|(p, v)| MultiStep::Delete(p, v)),
        (path(), any::<u8>(), version()).prop_map(|(p, d, v)| MultiStep::Set(p, d, v)),
        (path(), version()).prop_map(|(p, v)| MultiStep::Check(p, v)),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let s = 0..3usize;
    let p = path();
    prop_oneof![
        6 => (s.clone(), create()).prop_map(|(s, c)| Step::Create(s, c)),
        3 => (s.clone(), p.clone(), any::<u8>(), version())
            .prop_map(|(s, p, d, v)| Step::Set(s, p, d, v)),
        3 => (s.clone(), p.clone(), version()).prop_map(|(s, p, v)| Step::Delete(s, p, v)),
        3 => (s.clone(), p.clone(), watch()).prop_map(|(s, p, w)| Step::Exists(s, p, w)),
        3 => (s.clone(), p.clone(), watch()).prop_map(|(s, p, w)| Step::GetData(s, p, w)),
        3 => (s.clone(), p.clone(), watch()).prop_map(|(s, p, w)| Step::GetChildren(s, p, w)),
        1 => (s.clone(), p.clone(), any::<bool>()).prop_map(|(s, p, r)| Step::AddWatch(s, p, r)),
        1 => (s.clone(), p.clone()).prop_map(|(s, p)| Step::ChildrenWithStat(s, p)),
        2 => (s.clone(), prop::collection::vec(multi_step(), 1..4))
            .prop_map(|(s, ops)| Step::Multi(s, ops)),
        2 => (s.clone(), p.clone(), 0..ACL_CHOICES, version())
            .prop_map(|(s, p, a, v)| Step::SetAcl(s, p, a, v)),
        1 => (s.clone(), p.clone()).prop_map(|(s, p)| Step::GetAcl(s, p)),
        1 => (s.clone(), 0..USERS.len()).prop_map(|(s, u)| Step::AddAuth(s, u)),
        1 => (s.clone(), p.clone()).prop_map(|(s, p)| Step::Sync(s, p)),
        2 => (s.clone(), prop::collection::vec((any::<bool>(), p), 0..4))
            .prop_map(|(s, reads)| Step::MultiRead(s, reads)),
        2 => (s.clone(), 0..PREFIXES.len()).prop_map(|(s, p)| Step::GetEphemerals(s, p)),
        1 => s.prop_map(Step::Close),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (2..=3usize, prop::collection::vec(step(), 1..25))
        .prop_map(|(sessions, steps)| Case { sessions, steps })
}

const ACL_CHOICES: usize = 9;

/// The ACL choices: the usual constants, digest entries, an ip entry, and invalid ones.
fn acl(i: usize) -> Vec<Acl> {
    let digest = |cred: &str| zkit_sim::server::acl::digest_id(cred);
    match i {
        0 => Acl::open_unsafe(),
        1 => Acl::read_unsafe(),
        2 => Acl::creator_all(),
        3 => vec![Acl::new(Perms::ALL, "digest", &digest("user1:pw1"))],
        4 => vec![
            Acl::new(Perms::ALL, "digest", &digest("user1:pw1")),
            Acl::new(Perms::READ, "world", "anyone"),
        ],
        5 => vec![],
        6 => vec![Acl::new(Perms::READ | Perms::CREATE, "world", "anyone")],
        7 => vec![Acl::new(Perms::READ | Perms::WRITE, "ip", "127.0.0.1")],
        _ => vec![Acl::new(Perms::ALL, "ip", "1.2.3")],
    }
}

// ----- the transcript -----

/// One transcript token: text, or a zxid to be replaced by its rank.
#[derive(Debug)]
enum Tok {
    Text(String),
    Zxid(i64),
}

#[derive(Default)]
struct Transcript {
    lines: Vec<Vec<Tok>>,
    sessions: Vec<i64>,
}

impl Transcript {
    fn line(&mut self, text: String) -> &mut Vec<Tok> {
        self.lines.push(vec![Tok::Text(text)]);
        self.lines.last_mut().expect("just pushed")
    }

    fn stat(&self, line: &mut Vec<Tok>, s: &Stat) {
        let owner = match self.sessions.iter().position(|&id| id == s.ephemeral_owner) {
            Some(k) if s.ephemeral_owner != 0 => format!("S{k}"),
            _ => format!("{:#x}", s.ephemeral_owner),
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
        head: String,
        r: Result<T, Error>,
        ok: impl FnOnce(&Self, &mut Vec<Tok>, T),
    ) {
        let mut line = vec![Tok::Text(head)];
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

// ----- running a case -----

/// The shared real server.
fn real() -> &'static ZkServer {
    static SERVER: OnceLock<ZkServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        ZkServer::standalone().expect("a real ZooKeeper 3.8 must start for the conformance test")
    })
}

/// The real server's tick time (`scripts/zk`'s default): the sim uses the same.
const TICK: Duration = Duration::from_millis(500);

async fn connect(hosts: &str, seed: u64) -> Client {
    Client::builder(hosts)
        .session_timeout(Duration::from_secs(4))
        .seed(seed)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {hosts}: {e}"))
}

struct Session {
    client: Option<Client>,
    watches: Vec<(String, Watcher)>,
    persistent: Vec<(String, PersistentWatcher)>,
}

fn poll_once(w: &mut Watcher) -> Option<zkit::WatchedEvent> {
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(w).poll(&mut cx) {
        Poll::Ready(e) => Some(e),
        Poll::Pending => None,
    }
}

/// The persistent watcher's next event if it has one now.
fn poll_recv(w: &mut PersistentWatcher) -> Option<zkit::WatchedEvent> {
    let mut cx = Context::from_waker(Waker::noop());
    let recv = std::pin::pin!(w.recv());
    match recv.poll(&mut cx) {
        Poll::Ready(e) => e,
        Poll::Pending => None,
    }
}

fn mode_path(c: &Create) -> (CreateMode, String) {
    let mode = MODES[c.mode];
    let path = if mode == CreateMode::Container {
        "/c".to_owned()
    } else if mode.is_sequential() {
        let parent = ["/a", "/b"][c.path & 1];
        format!("{parent}/s-")
    } else {
        PATHS[c.path].to_owned()
    };
    (mode, path)
}

fn ttl_ms(c: &Create) -> Option<i64> {
    MODES[c.mode]
        .is_ttl()
        .then_some(if c.long_ttl { 3_600_000 } else { 0 })
}

/// Runs `case` against the server at `hosts` (already holding the chroot), returning the
/// rendered transcript.
async fn run_case(hosts: &str, case: &Case) -> Vec<String> {
    let mut t = Transcript::default();
    let mut sessions = Vec::new();
    for k in 0..case.sessions {
        let c = connect(hosts, 100 + k as u64).await;
        t.sessions.push(c.session_id());
        sessions.push(Session {
            client: Some(c),
            watches: Vec::new(),
            persistent: Vec::new(),
        });
    }
    // A fixed start, so that most steps find something to work on.
    for (p, d) in [("/a", b"a"), ("/b", b"b")] {
        let r = sessions[0]
            .client
            .as_ref()
            .expect("session 0 is open")
            .create(p, d, CreateMode::Persistent)
            .await;
        t.result(format!("   S0 create {p}"), r, |t, l, (_, s)| t.stat(l, &s));
    }
    for (i, step) in case.steps.iter().enumerate() {
        let k = match step {
            Step::Create(s, _)
            | Step::Set(s, ..)
            | Step::Delete(s, ..)
            | Step::Exists(s, ..)
            | Step::GetData(s, ..)
            | Step::GetChildren(s, ..)
            | Step::ChildrenWithStat(s, _)
            | Step::Multi(s, _)
            | Step::SetAcl(s, ..)
            | Step::GetAcl(s, _)
            | Step::AddAuth(s, _)
            | Step::AddWatch(s, ..)
            | Step::Sync(s, _)
            | Step::MultiRead(s, _)
            | Step::GetEphemerals(s, _)
            | Step::Close(s) => *s % case.sessions,
        };
        let head = format!("{i:>2} S{k} {step:?}");
        let c = match sessions[k].client.clone() {
            Some(c) => c,
            None => {
                // A new session in the closed one's place (owners are named by opening order).
                let c = connect(hosts, 100 + t.sessions.len() as u64).await;
                t.sessions.push(c.session_id());
                t.line(format!("   S{k} reopened as S{}", t.sessions.len() - 1));
                sessions[k].client = Some(c.clone());
                c
            }
        };
        match step {
            Step::Create(_, cr) => {
                let (mode, path) = mode_path(cr);
                let mut opts = CreateOptions::new(mode);
                opts.acl = cr.acl.map(acl);
                opts.ttl = ttl_ms(cr);
                let r = c.create_with(&path, &[cr.data], &opts).await;
                t.result(head, r, |t, l, (p, s)| {
                    l.push(Tok::Text(format!(" {p}")));
                    t.stat(l, &s);
                });
            }
            Step::Set(_, p, d, v) => {
                let r = c.set_data(PATHS[*p], &[*d], v.get()).await;
                t.result(head, r, |t, l, s| t.stat(l, &s));
            }
            Step::Delete(_, p, v) => {
                let r = c.delete(PATHS[*p], v.get()).await;
                t.result(head, r, |_, _, ()| {});
            }
            Step::Exists(_, p, watch) => {
                let path = PATHS[*p];
                let r = if *watch {
                    c.exists_watch(path).await.map(|(s, w)| {
                        sessions[k].watches.push((format!("exists {path}"), w));
                        s
                    })
                } else {
                    c.exists(path).await
                };
                t.result(head, r, |t, l, s| match s {
                    Some(s) => t.stat(l, &s),
                    None => l.push(Tok::Text(" none".into())),
                });
            }
            Step::GetData(_, p, watch) => {
                let path = PATHS[*p];
                let r = if *watch {
                    c.get_data_watch(path).await.map(|(d, s, w)| {
                        sessions[k].watches.push((format!("data {path}"), w));
                        (d, s)
                    })
                } else {
                    c.get_data(path).await
                };
                t.result(head, r, |t, l, (d, s)| {
                    l.push(Tok::Text(format!(" {d:?}")));
                    t.stat(l, &s);
                });
            }
            Step::GetChildren(_, p, watch) => {
                let path = PATHS[*p];
                let r = if *watch {
                    c.get_children_watch(path).await.map(|(kids, w)| {
                        sessions[k].watches.push((format!("children {path}"), w));
                        kids
                    })
                } else {
                    c.get_children(path).await
                };
                t.result(head, r, |_, l, kids| l.push(Tok::Text(children(&kids))));
            }
            Step::ChildrenWithStat(_, p) => {
                let r = c.get_children_with_stat(PATHS[*p]).await;
                t.result(head, r, |t, l, (kids, s)| {
                    l.push(Tok::Text(children(&kids)));
                    t.stat(l, &s);
                });
            }
            Step::Multi(_, ops) => {
                let ops: Vec<Op> = ops
                    .iter()
                    .map(|m| match m {
                        MultiStep::Create(cr) => {
                            let (mode, path) = mode_path(cr);
                            Op::Create {
                                path,
                                data: vec![cr.data],
                                mode,
                                acl: cr.acl.map(acl),
                                ttl: ttl_ms(cr),
                            }
                        }
                        MultiStep::Delete(p, v) => Op::delete(PATHS[*p], v.get()),
                        MultiStep::Set(p, d, v) => Op::set_data(PATHS[*p], &[*d], v.get()),
                        MultiStep::Check(p, v) => Op::check(PATHS[*p], v.get()),
                    })
                    .collect();
                let r = c.multi(&ops).await;
                t.result(head, r, |t, l, results| {
                    for r in results {
                        match r {
                            OpResult::Create { path, stat } => {
                                l.push(Tok::Text(format!(" [create {path}")));
                                if let Some(stat) = &stat {
                                    t.stat(l, stat);
                                }
                                l.push(Tok::Text("]".into()));
                            }
                            OpResult::Delete => l.push(Tok::Text(" [delete]".into())),
                            OpResult::SetData { stat } => {
                                l.push(Tok::Text(" [set".into()));
                                t.stat(l, &stat);
                                l.push(Tok::Text("]".into()));
                            }
                            OpResult::Check => l.push(Tok::Text(" [check]".into())),
                        }
                    }
                });
            }
            Step::SetAcl(_, p, a, v) => {
                let r = c.set_acl(PATHS[*p], acl(*a), v.get()).await;
                t.result(head, r, |t, l, s| t.stat(l, &s));
            }
            Step::GetAcl(_, p) => {
                let r = c.get_acl(PATHS[*p]).await;
                t.result(head, r, |t, l, (a, s)| {
                    l.push(Tok::Text(format!(" {a:?}")));
                    t.stat(l, &s);
                });
            }
            Step::AddAuth(_, u) => {
                let r = c.add_auth("digest", USERS[*u].as_bytes()).await;
                t.result(head, r, |_, _, ()| {});
            }
            Step::AddWatch(_, p, recursive) => {
                let path = PATHS[*p];
                let mode = if *recursive {
                    AddWatchMode::PersistentRecursive
                } else {
                    AddWatchMode::Persistent
                };
                let r = c.add_watch(path, mode).await.map(|w| {
                    sessions[k].persistent.push((format!("{mode:?} {path}"), w));
                });
                t.result(head, r, |_, _, ()| {});
            }
            Step::Sync(_, p) => {
                let r = c.sync(PATHS[*p]).await;
                t.result(head, r, |_, _, ()| {});
            }
            Step::MultiRead(_, reads) => {
                let ops: Vec<ReadOp> = reads
                    .iter()
                    .map(|&(kids, p)| {
                        if kids {
                            ReadOp::GetChildren(PATHS[p].to_owned())
                        } else {
                            ReadOp::GetData(PATHS[p].to_owned())
                        }
                    })
                    .collect();
                let r = c.multi_read(&ops).await;
                t.result(head, r, |t, l, results| {
                    for r in results {
                        match r {
                            ReadResult::Data(d, s) => {
                                l.push(Tok::Text(format!(" [data {d:?}")));
                                t.stat(l, &s);
                                l.push(Tok::Text("]".into()));
                            }
                            ReadResult::Children(kids) => {
                                l.push(Tok::Text(format!(" [children{}]", children(&kids))));
                            }
                            ReadResult::Error(e) => {
                                l.push(Tok::Text(format!(" [{}]", error(&e))));
                            }
                        }
                    }
                });
            }
            Step::GetEphemerals(_, p) => {
                let r = c.get_ephemerals(PREFIXES[*p]).await;
                t.result(head, r, |_, l, paths| l.push(Tok::Text(children(&paths))));
            }
            Step::Close(_) => {
                c.close().await;
                sessions[k].client = None;
                // Its watchers end with the session, on the client's side alone.
                sessions[k].watches.clear();
                sessions[k].persistent.clear();
                t.line(format!("{head} -> closed"));
            }
        }
        // Collect the events this step caused, session by session, without sleeping.
        for (k, s) in sessions.iter_mut().enumerate() {
            let Some(c) = &s.client else { continue };
            if let Err(e) = c.sync("/").await {
                t.line(format!("   S{k} sync -> {}", error(&e)));
            }
            let mut pending = Vec::new();
            for (label, mut w) in std::mem::take(&mut s.watches) {
                match poll_once(&mut w) {
                    Some(ev) => {
                        t.line(format!(
                            "   S{k} watch {label} -> {:?} {} {:?}",
                            ev.event_type, ev.path, ev.state
                        ));
                    }
                    None => pending.push((label, w)),
                }
            }
            s.watches = pending;
            for (label, w) in &mut s.persistent {
                while let Some(ev) = poll_recv(w) {
                    t.line(format!(
                        "   S{k} watch {label} -> {:?} {} {:?}",
                        ev.event_type, ev.path, ev.state
                    ));
                }
            }
        }
    }
    for s in &sessions {
        if let Some(c) = &s.client {
            c.close().await;
        }
    }
    t.render()
}

/// A children list as the transcript shows it: as a set (ZooKeeper lists children in hash
/// order, and the simulated server in its own unsorted order, so only the set can be
/// compared), and how many names it repeats (none, on either server).
fn children(kids: &[String]) -> String {
    let set: BTreeSet<&String> = kids.iter().collect();
    let repeated = kids.len() - set.len();
    if repeated == 0 {
        format!(" {set:?}")
    } else {
        format!(" {set:?} ({repeated} repeated)")
    }
}

static CASE_NO: AtomicUsize = AtomicUsize::new(0);

/// Creates `chroot` at `hosts` with an admin session.
async fn make_chroot(hosts: &str, chroot: &str) {
    let admin = connect(hosts, 1).await;
    admin
        .ensure_path(chroot)
        .await
        .expect("create the case's chroot");
    admin.close().await;
}

/// Runs `case` on both servers; returns (real, sim) transcripts.
fn both(case: &Case) -> (Vec<String>, Vec<String>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let n = CASE_NO.fetch_add(1, Ordering::Relaxed);
    let chroot = format!("/conformance-{}-{n}", std::process::id());
    let real_hosts = real().connect_string().to_owned();
    rt.block_on(async {
        let limit = Duration::from_secs(60);
        make_chroot(&real_hosts, &chroot).await;
        let real = tokio::time::timeout(limit, run_case(&format!("{real_hosts}{chroot}"), case))
            .await
            .expect("case finishes against the real server");
        let config = ServerConfig {
            tick_time: TICK,
            reaper_interval: Duration::from_millis(100),
            seed: n as u64,
            ..ServerConfig::default()
        };
        let server = Server::bind("127.0.0.1:0", config)
            .await
            .expect("the simulated server binds");
        let sim_hosts = server.connect_string();
        make_chroot(&sim_hosts, &chroot).await;
        let sim = tokio::time::timeout(limit, run_case(&format!("{sim_hosts}{chroot}"), case))
            .await
            .expect("case finishes against the simulated server");
        server.shutdown().await;
        (real, sim)
    })
}

fn assert_same(case: &Case) -> Result<(), TestCaseError> {
    let (real, sim) = both(case);
    if std::env::var_os("ZKIT_CONFORMANCE_SHOW").is_some() {
        eprintln!("{}\n", real.join("\n"));
    }
    if real != sim {
        let at = real
            .iter()
            .zip(&sim)
            .position(|(a, b)| a != b)
            .unwrap_or(real.len().min(sim.len()));
        return Err(TestCaseError::fail(format!(
            "first difference at line {at}\n real: {:?}\n  sim: {:?}\n\nreal transcript:\n{}\n\nsim transcript:\n{}",
            real.get(at),
            sim.get(at),
            real.join("\n"),
            sim.join("\n")
        )));
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("ZKIT_CONFORMANCE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn sim_server_matches_real_zookeeper(case in case()) {
        assert_same(&case)?;
    }
}

// ----- regressions: differences once found, kept as plain tests -----

fn check_fixed(sessions: usize, steps: Vec<Step>) {
    let case = Case { sessions, steps };
    if let Err(e) = assert_same(&case) {
        panic!("{e}");
    }
}

fn plain(path: usize, mode: usize) -> Create {
    Create {
        path,
        data: 7,
        mode,
        acl: None,
        long_ttl: true,
    }
}

/// ZooKeeper 3.8 answers a create2 inside a multi with a plain create result (path, no
/// Stat), but containers and TTL nodes with their Stat.
#[test]
fn regression_multi_create_results_per_mode() {
    let steps = (0..MODES.len())
        .map(|mode| Step::Multi(0, vec![MultiStep::Create(plain(3 + mode % 3, mode))]))
        .collect();
    check_fixed(2, steps);
}

/// Children (and a session's ephemerals) of `/p` listed by a simulated server seeded with
/// `seed`: eight sequential nodes, as a lock's contenders would create them.
fn sim_listing(seed: u64) -> (Vec<String>, Vec<String>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let config = ServerConfig {
            tick_time: TICK,
            seed,
            ..ServerConfig::default()
        };
        let server = Server::bind("127.0.0.1:0", config)
            .await
            .expect("the simulated server binds");
        let zk = connect(&server.connect_string(), 1).await;
        zk.create("/p", b"", CreateMode::Persistent)
            .await
            .expect("create /p");
        for _ in 0..8 {
            zk.create("/p/n-", b"", CreateMode::EphemeralSequential)
                .await
                .expect("create a child");
        }
        let kids = zk.get_children("/p").await.expect("list /p");
        let ephemerals = zk.get_ephemerals("/p").await.expect("list ephemerals");
        zk.close().await;
        server.shutdown().await;
        (kids, ephemerals)
    })
}

/// The simulated server does not list children or ephemerals sorted (ZooKeeper does not
/// either): a recipe that forgets to sort by sequence number must fail in simulation. The
/// order is the same for the same seed and differs between seeds (servers).
#[test]
fn the_simulated_server_does_not_list_children_sorted() {
    let sorted = |v: &[String]| v.windows(2).all(|w| w[0] <= w[1]);
    let mut unsorted = (0, 0);
    let mut orders = BTreeSet::new();
    for seed in 0..4 {
        let (kids, ephemerals) = sim_listing(seed);
        assert_eq!(kids.len(), 8, "{kids:?}");
        assert_eq!(
            kids.iter().collect::<BTreeSet<_>>().len(),
            8,
            "each child once: {kids:?}"
        );
        let mut paths: Vec<String> = kids.iter().map(|k| format!("/p/{k}")).collect();
        let mut listed = ephemerals.clone();
        paths.sort();
        listed.sort();
        assert_eq!(listed, paths, "the session's ephemerals are its children");
        unsorted.0 += usize::from(!sorted(&kids));
        unsorted.1 += usize::from(!sorted(&ephemerals));
        assert_eq!(
            sim_listing(seed),
            (kids.clone(), ephemerals),
            "seed {seed} replays"
        );
        orders.insert(kids);
    }
    assert!(
        unsorted.0 >= 3 && unsorted.1 >= 3,
        "sorted too often: {unsorted:?}"
    );
    assert!(orders.len() >= 3, "servers agree too often: {orders:?}");
}

/// A raw connection: frames written and read with `zkit::proto` alone.
struct RawConn {
    stream: tokio::net::TcpStream,
    buf: bytes::BytesMut,
    decoder: zkit::proto::FrameDecoder,
}

impl RawConn {
    /// Connects to the first server of `hosts` and opens a session.
    async fn open(hosts: &str) -> RawConn {
        let (c, resp) = RawConn::handshake(hosts, 0, vec![0; 16]).await;
        let resp = resp.expect("a handshake reply");
        assert_ne!(resp.session_id, 0, "a session");
        c
    }

    /// Connects to the first server of `hosts` and asks for session `session_id` with
    /// `passwd` (0: a new session); returns the connection and the server's answer (`None`
    /// if it closed the connection without one).
    async fn handshake(
        hosts: &str,
        session_id: i64,
        passwd: Vec<u8>,
    ) -> (RawConn, Option<zkit::proto::ConnectResponse>) {
        let addr = hosts.split(['/', ',']).next().expect("an address");
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut c = RawConn {
            stream,
            buf: bytes::BytesMut::new(),
            decoder: zkit::proto::FrameDecoder::default(),
        };
        let hello = zkit::proto::ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: 4000,
            session_id,
            passwd,
            read_only: false,
        };
        c.send(|o| hello.encode(o))
            .await
            .expect("write the handshake");
        let resp = c.frame().await.map(|reply| {
            zkit::proto::ConnectResponse::from_frame(&reply).expect("a connect response")
        });
        (c, resp)
    }

    /// Writes one frame (an error once the server has closed the connection).
    async fn send(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        let mut out = Vec::new();
        zkit::proto::encode_frame(&mut out, write);
        self.stream.write_all(&out).await
    }

    /// The next frame; `None` once the server closed the connection.
    async fn frame(&mut self) -> Option<Vec<u8>> {
        use tokio::io::AsyncReadExt;
        loop {
            if let Some(f) = self.decoder.decode(&mut self.buf).expect("a frame") {
                return Some(f.to_vec());
            }
            let read = self.stream.read_buf(&mut self.buf);
            match tokio::time::timeout(Duration::from_secs(10), read).await {
                Ok(Ok(0)) | Ok(Err(_)) => return None,
                Ok(Ok(_)) => {}
                Err(_) => panic!("no reply and no close within 10 s"),
            }
        }
    }

    /// Sends `frame` (header and body) and describes the reply: xid, error code and zxid
    /// relative to `base` (`-1` is shown as is), or `closed`.
    async fn ask(&mut self, frame: &[u8], base: i64) -> (String, i64) {
        if self.send(|o| o.extend_from_slice(frame)).await.is_err() {
            return ("closed".to_owned(), base);
        }
        match self.frame().await {
            None => ("closed".to_owned(), base),
            Some(f) => {
                let h = zkit::proto::ReplyHeader::decode(&mut zkit::proto::Reader::new(&f))
                    .expect("a reply header");
                let zxid = if h.zxid == -1 {
                    "-1".to_owned()
                } else {
                    format!("+{}", h.zxid - base)
                };
                (format!("xid {} err {} zxid {zxid}", h.xid, h.err), h.zxid)
            }
        }
    }
}

/// Malformed requests, answered by `hosts`: a create with flags that name no mode (then a
/// ping, then a look for the node), and a request type ZooKeeper does not take (then a
/// ping, if the connection is still open).
async fn malformed_transcript(hosts: &str, path: &str) -> Vec<String> {
    use zkit::proto::{CreateRequest, Request, RequestHeader, WatchedRequest};
    let mut c = RawConn::open(hosts).await;
    let mut lines = Vec::new();
    let frame = |request: &Request, xid: i32| {
        let mut out = Vec::new();
        request.encode(xid, &mut out);
        out
    };
    let ping = frame(&Request::Ping, -2);
    let (_, base) = c.ask(&ping, 0).await;
    let mut create = frame(
        &Request::Create(CreateRequest {
            path: path.to_owned(),
            data: vec![],
            acl: Acl::open_unsafe(),
            flags: CreateMode::Persistent,
        }),
        1,
    );
    let n = create.len();
    create[n - 4..].copy_from_slice(&9i32.to_be_bytes());
    let (line, base) = c.ask(&create, base).await;
    lines.push(format!("create with flags 9 -> {line}"));
    let (line, base) = c.ask(&ping, base).await;
    lines.push(format!("ping -> {line}"));
    let exists = frame(
        &Request::Exists(WatchedRequest {
            path: path.to_owned(),
            watch: false,
        }),
        2,
    );
    let (line, base) = c.ask(&exists, base).await;
    lines.push(format!("exists -> {line}"));
    let mut unknown = Vec::new();
    RequestHeader { xid: 3, op: 77 }.encode(&mut unknown);
    let (line, base) = c.ask(&unknown, base).await;
    lines.push(format!("opcode 77 -> {line}"));
    let (line, _) = c.ask(&ping, base).await;
    lines.push(format!("ping -> {line}"));
    lines
}

/// Malformed input as ZooKeeper 3.8.0 (the fixture's version) answers it: a create with
/// unknown flags gets BADARGUMENTS in an error transaction (a zxid taken) and the
/// connection stays open; an unknown request type gets UNIMPLEMENTED with zxid -1 and the
/// connection is closed. The simulated server answers the same.
#[test]
fn malformed_requests_are_answered_as_zookeeper_does() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let path = format!("/malformed-{}", std::process::id());
    // A server of its own: the zxids it compares are taken by nobody else's writes (the
    // shared one serves the other conformance tests, which run at the same time).
    let own = ZkServer::standalone().expect("a real ZooKeeper 3.8 must start");
    let real_hosts = own.connect_string().to_owned();
    let (real, sim) = rt.block_on(async {
        let real = malformed_transcript(&real_hosts, &path).await;
        let config = ServerConfig {
            tick_time: TICK,
            ..ServerConfig::default()
        };
        let server = Server::bind("127.0.0.1:0", config)
            .await
            .expect("the simulated server binds");
        let sim = malformed_transcript(&server.connect_string(), &path).await;
        server.shutdown().await;
        (real, sim)
    });
    assert_eq!(real, sim, "real ZooKeeper vs the simulated server");
    assert_eq!(
        real,
        vec![
            "create with flags 9 -> xid 1 err -8 zxid +1".to_owned(),
            "ping -> xid -2 err 0 zxid +0".to_owned(),
            "exists -> xid 2 err -101 zxid +0".to_owned(),
            "opcode 77 -> xid 3 err -6 zxid -1".to_owned(),
            "ping -> closed".to_owned(),
        ],
        "ZooKeeper 3.8.0's answers"
    );
}

// ----- removeWatches and checkWatches, over a raw connection -----

/// The watches a removeWatches case sets before it removes some.
const WATCH_SETUPS: &[&str] = &[
    "none",
    "data",
    "exists",
    "exists-missing",
    "children",
    "data+children",
    "persistent",
    "recursive",
];

const WATCHER_TYPES: &[zkit::proto::WatcherType] = &[
    zkit::proto::WatcherType::Children,
    zkit::proto::WatcherType::Data,
    zkit::proto::WatcherType::Any,
    zkit::proto::WatcherType::Persistent,
    zkit::proto::WatcherType::PersistentRecursive,
];

impl RawConn {
    /// Sends `request` with `xid`; returns the reply's error code (`None`: the server closed
    /// the connection), pushing the notifications that came first onto `events` (paths
    /// relative to `base`).
    async fn call(
        &mut self,
        request: &zkit::proto::Request,
        xid: i32,
        base: &str,
        events: &mut Vec<String>,
    ) -> Option<i32> {
        self.call_body(request, xid, base, events)
            .await
            .map(|(err, _, _)| err)
    }

    /// [`RawConn::call`], also returning the reply header's zxid and the reply's body.
    async fn call_body(
        &mut self,
        request: &zkit::proto::Request,
        xid: i32,
        base: &str,
        events: &mut Vec<String>,
    ) -> Option<(i32, i64, Vec<u8>)> {
        use zkit::proto::{Reader, ReplyHeader, WatcherEvent};
        let mut frame = Vec::new();
        request.encode(xid, &mut frame);
        self.send(|o| o.extend_from_slice(&frame)).await.ok()?;
        loop {
            let f = self.frame().await?;
            let mut r = Reader::new(&f);
            let h = ReplyHeader::decode(&mut r).expect("a reply header");
            if h.xid == -1 {
                let e = WatcherEvent::decode(&mut r).expect("a notification");
                let path = e.path.strip_prefix(base).unwrap_or(&e.path);
                events.push(format!("{:?} {path}", e.event_type));
            } else {
                assert_eq!(h.xid, xid, "replies in request order");
                return Some((h.err, h.zxid, f[f.len() - r.remaining()..].to_vec()));
            }
        }
    }
}

/// For every watcher type and every kind of watch set on a node (by one connection): what
/// removeWatches of that type answers, what checkWatches of each type answers afterwards,
/// and which notifications the connection still gets when the node's data and children
/// change. The zkit client exposes no removeWatches of its own (dropping a
/// [`PersistentWatcher`] sends one of type Any), so this speaks the protocol directly.
async fn remove_watches_transcript(hosts: &str, base: &str) -> Vec<String> {
    use zkit::proto::{
        AddWatchRequest, CreateRequest, DeleteRequest, RemoveWatchesRequest, Request,
        SetDataRequest, WatchedRequest,
    };
    let mut lines = Vec::new();
    for ty in WATCHER_TYPES {
        for setup in WATCH_SETUPS {
            let mut c = RawConn::open(hosts).await;
            let mut events = Vec::new();
            let mut xid = 0;
            let node = format!("{base}/{ty:?}-{setup}");
            let create = |path: &str| {
                Request::Create(CreateRequest {
                    path: path.to_owned(),
                    data: vec![],
                    acl: Acl::open_unsafe(),
                    flags: CreateMode::Persistent,
                })
            };
            let watched = |path: &str| WatchedRequest {
                path: path.to_owned(),
                watch: true,
            };
            let mut setup_errs =
                vec![call(&mut c, &mut xid, base, create(&node), &mut events).await];
            // The node watched: `node`, or a child of it that does not exist.
            let target = if *setup == "exists-missing" {
                format!("{node}/m")
            } else {
                node.clone()
            };
            let sets: Vec<Request> = match *setup {
                "none" => vec![],
                "data" => vec![Request::GetData(watched(&target))],
                "exists" | "exists-missing" => vec![Request::Exists(watched(&target))],
                "children" => vec![Request::GetChildren(watched(&target))],
                "data+children" => vec![
                    Request::GetData(watched(&target)),
                    Request::GetChildren(watched(&target)),
                ],
                mode => vec![Request::AddWatch(AddWatchRequest {
                    path: target.clone(),
                    mode: if mode == "persistent" {
                        AddWatchMode::Persistent
                    } else {
                        AddWatchMode::PersistentRecursive
                    },
                })],
            };
            for r in sets {
                setup_errs.push(call(&mut c, &mut xid, base, r, &mut events).await);
            }
            let watches = |w| RemoveWatchesRequest {
                path: target.clone(),
                watcher_type: w,
            };
            let removed = call(
                &mut c,
                &mut xid,
                base,
                Request::RemoveWatches(watches(*ty)),
                &mut events,
            )
            .await;
            let mut checks = Vec::new();
            for w in WATCHER_TYPES {
                checks.push(
                    call(
                        &mut c,
                        &mut xid,
                        base,
                        Request::CheckWatches(watches(*w)),
                        &mut events,
                    )
                    .await,
                );
            }
            // Changes that would fire what is left: the node's data (or its creation), a
            // child created and deleted.
            let change = if target == node {
                Request::SetData(SetDataRequest {
                    path: target.clone(),
                    data: vec![1],
                    version: -1,
                })
            } else {
                create(&target)
            };
            let kid = format!("{target}/k");
            let mut changes = vec![call(&mut c, &mut xid, base, change, &mut events).await];
            changes.push(call(&mut c, &mut xid, base, create(&kid), &mut events).await);
            changes.push(
                call(
                    &mut c,
                    &mut xid,
                    base,
                    Request::Delete(DeleteRequest {
                        path: kid,
                        version: -1,
                    }),
                    &mut events,
                )
                .await,
            );
            // A ping: every notification of the changes precedes its reply.
            changes.push(call(&mut c, &mut xid, base, Request::Ping, &mut events).await);
            lines.push(format!(
                "remove {ty:?} after {setup} (set {setup_errs:?}) -> {removed}; check \
                 [children, data, any, persistent, recursive] -> {checks:?}; changes \
                 {changes:?} -> events {events:?}"
            ));
        }
    }
    lines
}

/// One request of [`remove_watches_transcript`]: its error code as text, or `closed`.
async fn call(
    c: &mut RawConn,
    xid: &mut i32,
    base: &str,
    request: zkit::proto::Request,
    events: &mut Vec<String>,
) -> String {
    *xid += 1;
    // Pings go with their reserved xid.
    let x = if matches!(request, zkit::proto::Request::Ping) {
        -2
    } else {
        *xid
    };
    match c.call(&request, x, base, events).await {
        Some(err) => format!("{err}"),
        None => "closed".to_owned(),
    }
}

/// removeWatches and checkWatches as ZooKeeper 3.8 answers them, for each watcher type
/// against each kind of watch (and none: NOWATCHER), and what still fires afterwards.
#[test]
fn remove_watches_matches_real_zookeeper() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let n = CASE_NO.fetch_add(1, Ordering::Relaxed);
    let base = format!("/remove-watches-{}-{n}", std::process::id());
    let real_hosts = real().connect_string().to_owned();
    let (real, sim) = rt.block_on(async {
        make_chroot(&real_hosts, &base).await;
        let real = remove_watches_transcript(&real_hosts, &base).await;
        let server = sim_server(n as u64).await;
        let sim_hosts = server.connect_string();
        make_chroot(&sim_hosts, &base).await;
        let sim = remove_watches_transcript(&sim_hosts, &base).await;
        server.shutdown().await;
        (real, sim)
    });
    assert_lines("removeWatches", &real, &sim);
    assert_eq!(real.len(), WATCHER_TYPES.len() * WATCH_SETUPS.len());
}

/// A simulated server set up like the real one: same tick, reaper every 100 ms.
async fn sim_server(seed: u64) -> zkit_sim::server::ServerHandle {
    let config = ServerConfig {
        tick_time: TICK,
        reaper_interval: Duration::from_millis(100),
        seed,
        ..ServerConfig::default()
    };
    Server::bind("127.0.0.1:0", config)
        .await
        .expect("the simulated server binds")
}

/// Fails with both transcripts and the first difference unless they are equal.
fn assert_lines(what: &str, real: &[String], sim: &[String]) {
    if std::env::var_os("ZKIT_CONFORMANCE_SHOW").is_some() {
        eprintln!("{what}:\n{}\n", real.join("\n"));
    }
    if real != sim {
        let at = real
            .iter()
            .zip(sim)
            .position(|(a, b)| a != b)
            .unwrap_or(real.len().min(sim.len()));
        panic!(
            "{what}: first difference at line {at}\n real: {:?}\n  sim: {:?}\n\nreal:\n{}\n\nsim:\n{}",
            real.get(at),
            sim.get(at),
            real.join("\n"),
            sim.join("\n")
        );
    }
}

// ----- reconnects, expiry and reaping: fixed scenarios behind a proxy -----

/// One server as a fixed scenario sees it: its connect string with the scenario's chroot,
/// and the same through a proxy that can cut the connections that go through it.
struct Target {
    /// `real` or `sim`, for messages.
    name: &'static str,
    direct: String,
    proxied: String,
    proxy: Proxy,
}

/// Runs `scenario` against the real server (the shared one, a fresh chroot) and against a
/// fresh simulated server (same tick, reaper every 100 ms like the real one), both at the
/// same time, each behind a proxy of its own; returns (real, sim).
fn on_both<F, Fut>(name: &str, scenario: F) -> (Vec<String>, Vec<String>)
where
    F: Fn(Target) -> Fut,
    Fut: Future<Output = Vec<String>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let n = CASE_NO.fetch_add(1, Ordering::Relaxed);
    let chroot = format!("/{name}-{}-{n}", std::process::id());
    rt.block_on(async {
        let server = sim_server(n as u64).await;
        let addrs = [
            real().addresses()[0],
            server.local_addr().expect("the simulated server's address"),
        ];
        let mut targets = Vec::new();
        for (addr, name) in addrs.into_iter().zip(["real", "sim"]) {
            make_chroot(&addr.to_string(), &chroot).await;
            let proxy = Proxy::start(addr).await.expect("a proxy starts");
            targets.push(Target {
                name,
                direct: format!("{addr}{chroot}"),
                proxied: format!("{}{chroot}", proxy.connect_string()),
                proxy,
            });
        }
        let sim_target = targets.pop().expect("two targets");
        let real_target = targets.pop().expect("two targets");
        let limit = Duration::from_secs(40);
        let (real, sim) = tokio::join!(
            tokio::time::timeout(limit, scenario(real_target)),
            tokio::time::timeout(limit, scenario(sim_target)),
        );
        server.shutdown().await;
        (
            real.expect("the scenario finishes against the real server"),
            sim.expect("the scenario finishes against the simulated server"),
        )
    })
}

/// Labelled one-shot and persistent watchers of one client, polled after a sync.
#[derive(Default)]
struct Watchers {
    one: Vec<(String, Option<Watcher>)>,
    persistent: Vec<(String, PersistentWatcher)>,
}

impl Watchers {
    /// Syncs `c` (every notification sent before the sync's reply has arrived), then says
    /// what each watcher got, in the order they were set; persistent watchers' events are
    /// sorted when `sort` (where the servers' deletion order is a hash order).
    async fn poll(&mut self, c: &Client, sort: bool, out: &mut Vec<String>) {
        if let Err(e) = c.sync("/").await {
            out.push(format!("sync -> {}", error(&e)));
        }
        for (label, w) in &mut self.one {
            if let Some(ev) = w.as_mut().and_then(poll_once) {
                out.push(format!(
                    "{label} -> {:?} {} {:?}",
                    ev.event_type, ev.path, ev.state
                ));
                *w = None;
            }
        }
        for (label, w) in &mut self.persistent {
            let mut got = Vec::new();
            while let Some(ev) = poll_recv(w) {
                got.push(format!("{:?} {} {:?}", ev.event_type, ev.path, ev.state));
            }
            if sort {
                got.sort();
            }
            if !got.is_empty() {
                out.push(format!("{label} -> {got:?}"));
            }
        }
    }

    fn pending(&self) -> Vec<&str> {
        self.one
            .iter()
            .filter(|(_, w)| w.is_some())
            .map(|(l, _)| l.as_str())
            .collect()
    }
}

/// Every state change `rx` holds now.
fn drain_states(rx: &mut tokio::sync::broadcast::Receiver<State>) -> Vec<State> {
    let mut states = Vec::new();
    while let Ok(s) = rx.try_recv() {
        states.push(s);
    }
    states
}

/// A session's connection drops while another session changes what it watches; it comes
/// back to the same session, restores its watches with SetWatches, and gets at once the
/// events of what changed since the last zxid it saw (`DataTree.setWatches`): NodeDeleted
/// for a watched node now gone, NodeDataChanged for one modified (or deleted and created
/// again), NodeCreated for an exists watch on a node that now exists (not for one created
/// and deleted again: that watch is set anew), NodeChildrenChanged for a child watch whose
/// node's children changed. Persistent watches are set again without replaying what they
/// missed. The rest fire later as usual. Replays ignore ACLs; later notifications do not.
async fn reconnect_scenario(t: Target) -> Vec<String> {
    let mut out = Vec::new();
    let other = connect(&t.direct, 11).await;
    let c = connect(&t.proxied, 12).await;
    for p in [
        "/d", "/dd", "/dr", "/c", "/c2", "/c2/old", "/c3", "/u", "/pw", "/rw", "/rw/x", "/acl1",
        "/acl2",
    ] {
        other
            .create(p, b"0", CreateMode::Persistent)
            .await
            .expect("create a node");
    }
    let mut w = Watchers::default();
    for p in ["/d", "/dd", "/dr", "/u", "/acl1", "/acl2"] {
        let (_, _, x) = c.get_data_watch(p).await.expect("getData");
        w.one.push((format!("data {p}"), Some(x)));
    }
    for p in ["/ne", "/ne2", "/u"] {
        let (_, x) = c.exists_watch(p).await.expect("exists");
        w.one.push((format!("exists {p}"), Some(x)));
    }
    for p in ["/c", "/c2", "/c3", "/dd"] {
        let (_, x) = c.get_children_watch(p).await.expect("getChildren");
        w.one.push((format!("children {p}"), Some(x)));
    }
    for (p, mode) in [
        ("/pw", AddWatchMode::Persistent),
        ("/rw", AddWatchMode::PersistentRecursive),
    ] {
        let x = c.add_watch(p, mode).await.expect("addWatch");
        w.persistent.push((format!("{mode:?} {p}"), x));
    }
    let mut states = c.state_changes();
    t.proxy.set_mode(Mode::Refuse);
    t.proxy.cut();
    c.wait_for_state(|s| s == State::Suspended).await;
    let set = |p: &'static str| other.set_data(p, b"1", None);
    set("/d").await.expect("set /d");
    other.delete("/dd", None).await.expect("delete /dd");
    other.delete("/dr", None).await.expect("delete /dr");
    other
        .create("/dr", b"0", CreateMode::Persistent)
        .await
        .expect("create /dr");
    for p in ["/ne", "/ne2", "/c/k", "/rw/x/y"] {
        other
            .create(p, b"", CreateMode::Persistent)
            .await
            .expect("create");
    }
    other.delete("/ne2", None).await.expect("delete /ne2");
    other.delete("/c2/old", None).await.expect("delete /c2/old");
    set("/pw").await.expect("set /pw");
    // Nodes the watcher may no longer read: SetWatches replays without checking ACLs; what
    // fires later is delivered only to a watcher that may read the node (ZooKeeper 3.6+).
    let unreadable = vec![Acl::new(Perms::WRITE | Perms::ADMIN, "world", "anyone")];
    for p in ["/acl1", "/acl2"] {
        other
            .set_acl(p, unreadable.clone(), None)
            .await
            .expect("setAcl");
    }
    set("/acl1").await.expect("set /acl1");
    t.proxy.set_mode(Mode::Forward);
    c.wait_for_state(|s| s == State::Connected).await;
    out.push(format!("states {:?}", drain_states(&mut states)));
    out.push("-- on reconnect".into());
    w.poll(&c, false, &mut out).await;
    out.push(format!("pending {:?}", w.pending()));
    out.push("-- later changes".into());
    for p in ["/u", "/pw", "/rw/x", "/d", "/acl2"] {
        set(p).await.expect("set");
    }
    for p in ["/c3/k", "/ne2"] {
        other
            .create(p, b"", CreateMode::Persistent)
            .await
            .expect("create");
    }
    w.poll(&c, false, &mut out).await;
    out.push(format!("pending {:?}", w.pending()));
    out.push(format!("same session {}", c.state() == State::Connected));
    c.close().await;
    other.close().await;
    out
}

#[test]
fn reconnect_restores_watches_as_real_zookeeper_does() {
    let (real, sim) = on_both("reconnect", reconnect_scenario);
    assert_lines("reconnect", &real, &sim);
    // The scenario did what it says: a reconnect, replayed events, no persistent replay.
    let at = |l: &str| real.iter().position(|x| x == l);
    let reconnect = at("-- on reconnect").expect("reconnected");
    let later = at("-- later changes").expect("went on");
    assert_eq!(real[0], "states [Suspended, Connected]");
    let replayed = at("data /dd -> NodeDeleted /dd SyncConnected").expect("replayed");
    assert!(reconnect < replayed && replayed < later, "{real:#?}");
    assert!(
        !real[reconnect..later]
            .iter()
            .any(|l| l.starts_with("Persistent")),
        "{real:#?}"
    );
}

/// The session timeout every client asks for (and gets: between 2 and 20 ticks).
const SESSION_TIMEOUT: Duration = Duration::from_secs(4);

/// Allowed beyond `timeout + tick` for an expiry to be seen: the expiry's own processing,
/// the notification, and scheduling on a loaded machine (measured: under 50 ms).
const EXPIRY_SLACK: Duration = Duration::from_secs(1);

/// Asserts `took` lies in `range` (inclusive), naming the server and what was timed.
fn assert_within(t: &Target, what: &str, took: Duration, range: (Duration, Duration)) {
    if std::env::var_os("ZKIT_CONFORMANCE_SHOW").is_some() {
        eprintln!("{}: {what}: {took:?} (allowed {range:?})", t.name);
    }
    assert!(
        range.0 <= took && took <= range.1,
        "{}: {what} took {took:?}, outside {range:?}",
        t.name
    );
}

/// A session is cut off (its proxy closes the connection and refuses new ones) until it
/// expires. Compared: which of its nodes vanish, the events other sessions get, what the
/// cut-off client goes through (its own timer declares the session lost; its watchers end
/// with an Expired event; requests fail), and what a client resuming the session hears
/// from the server afterwards (expired).
///
/// Expiry timing is compared as a range, not exactly: ZooKeeper (`ExpiryQueue`) files a
/// session under `roundToNextInterval(lastHeard + timeout)`, the next multiple of the tick,
/// so the session expires after more than `timeout` and at most `timeout + tick` after the
/// server last heard from it. The last packet it heard is the sync sent just before the
/// cut, so the other session must see the ephemerals go more than `timeout` after that
/// sync was sent and no later than `timeout + tick` after the cut (plus a second for
/// processing and scheduling).
async fn expiry_scenario(t: Target) -> Vec<String> {
    let mut out = Vec::new();
    let other = connect(&t.direct, 21).await;
    let doomed = connect(&t.proxied, 22).await;
    other
        .create("/p", b"", CreateMode::Persistent)
        .await
        .expect("create /p");
    doomed
        .create("/e1", b"", CreateMode::Ephemeral)
        .await
        .expect("create /e1");
    for _ in 0..2 {
        doomed
            .create("/p/e-", b"", CreateMode::EphemeralSequential)
            .await
            .expect("create /p/e-");
    }
    doomed
        .create("/keep", b"", CreateMode::Persistent)
        .await
        .expect("create /keep");
    // A container whose only child is the doomed session's: the expiry empties it, and the
    // reaper then deletes it.
    other
        .create("/box", b"", CreateMode::Container)
        .await
        .expect("create /box");
    doomed
        .create("/box/e", b"", CreateMode::Ephemeral)
        .await
        .expect("create /box/e");
    let box_gone = watch_deletion(&other, &t, "/box").await;
    let mut mine = Watchers::default();
    let (_, _, x) = doomed.get_data_watch("/keep").await.expect("getData");
    mine.one.push(("data /keep".into(), Some(x)));
    let x = doomed
        .add_watch("/p", AddWatchMode::PersistentRecursive)
        .await
        .expect("addWatch");
    mine.persistent.push(("recursive /p".into(), x));
    let (_, gone) = other.exists_watch("/e1").await.expect("exists");
    let mut theirs = Watchers::default();
    let (_, x) = other.get_children_watch("/p").await.expect("getChildren");
    theirs.one.push(("children /p".into(), Some(x)));
    let x = other
        .add_watch("/", AddWatchMode::PersistentRecursive)
        .await
        .expect("addWatch");
    theirs.persistent.push(("recursive /".into(), x));
    let mut states = doomed.state_changes();
    out.push(format!(
        "ephemerals {:?}",
        doomed.get_ephemerals("/").await.map(|e| children(&e))
    ));
    // The last packet the server hears from the doomed session.
    let synced = tokio::time::Instant::now();
    doomed.sync("/").await.expect("sync");
    t.proxy.set_mode(Mode::Refuse);
    t.proxy.cut();
    let cut = tokio::time::Instant::now();
    let ev = gone.await;
    let (since_sync, since_cut) = (synced.elapsed(), cut.elapsed());
    out.push(format!(
        "other: exists /e1 -> {:?} {} {:?}",
        ev.event_type, ev.path, ev.state
    ));
    let tick_ms = TICK;
    assert_within(
        &t,
        "expiry after the last packet",
        since_sync,
        (SESSION_TIMEOUT - Duration::from_millis(50), Duration::MAX),
    );
    assert_within(
        &t,
        "expiry after the cut",
        since_cut,
        (Duration::ZERO, SESSION_TIMEOUT + tick_ms + EXPIRY_SLACK),
    );
    let ev = box_gone.await;
    out.push(format!("other: container /box -> {:?}", ev.event_type));
    assert_within(
        &t,
        "container emptied by the expiry reaped",
        cut.elapsed() - since_cut,
        (Duration::ZERO, Duration::from_secs(1)),
    );
    // Every ephemeral went in one closeSession: its events are all here after a sync (their
    // order is the server's hash order: sorted).
    theirs.poll(&other, true, &mut out).await;
    for p in ["/e1", "/p/e-0000000000", "/keep"] {
        out.push(format!(
            "other: exists {p} -> {:?}",
            other.exists(p).await.map(|s| s.is_some())
        ));
    }
    out.push(format!(
        "other: children /p -> {:?}",
        other.get_children("/p").await.map(|k| children(&k))
    ));
    // The doomed client: its own timer ran out no later than the server's.
    let end = doomed.wait_for_state(State::is_terminal).await;
    out.push(format!(
        "doomed: {end:?}, states {:?}",
        drain_states(&mut states)
    ));
    for (label, w) in &mut mine.one {
        let ev = w.take().expect("set").await;
        out.push(format!(
            "doomed: {label} -> {:?} {} {:?}",
            ev.event_type, ev.path, ev.state
        ));
    }
    for (label, w) in &mut mine.persistent {
        let mut got = Vec::new();
        while let Some(ev) = w.recv().await {
            got.push(format!("{:?} {} {:?}", ev.event_type, ev.path, ev.state));
        }
        out.push(format!("doomed: {label} -> {got:?}"));
    }
    out.push(format!(
        "doomed: getData /keep -> {:?}",
        doomed.get_data("/keep").await.map_err(|e| error(&e))
    ));
    // The server's word: resuming the session now is refused as expired.
    t.proxy.set_mode(Mode::Forward);
    let (id, password) = doomed.session_credentials();
    let resumed = Client::builder(&t.proxied)
        .session_timeout(SESSION_TIMEOUT)
        .resume_session(id, &password)
        .seed(23)
        .connect()
        .await;
    match resumed {
        Ok(c) => {
            let state = c.wait_for_state(|s| s != State::Connecting).await;
            out.push(format!(
                "resumed: {state:?}, exists /keep -> {:?}",
                c.exists("/keep").await.map_err(|e| error(&e))
            ));
            c.close().await;
        }
        Err(e) => out.push(format!("resumed: {}", error(&e))),
    }
    other.close().await;
    out
}

#[test]
fn session_expiry_matches_real_zookeeper() {
    let (real, sim) = on_both("expiry", expiry_scenario);
    assert_lines("expiry", &real, &sim);
    assert!(
        real.iter().any(|l| l == "other: exists /e1 -> Ok(false)"),
        "the ephemerals went: {real:#?}"
    );
}

/// Containers and TTL nodes as the reaper leaves them (`ContainerManager`, every
/// `znode.container.checkIntervalMs` = 100 ms on both servers). Compared as outcomes with
/// time bounds, not exact times (each server's reaper runs on its own clock): an emptied
/// container goes within a second; a childless TTL node goes more than its TTL after its
/// last modification (the TTL counts from mtime: a setData restarts it) and within a
/// second after that; a container that never had a child, and a TTL node with a child,
/// stay (checked after two later reaper passes, found by two probe TTL nodes of 1 ms
/// reaped one after the other); the TTL node goes once its child is deleted.
async fn reaper_scenario(t: Target) -> Vec<String> {
    let mut out = Vec::new();
    let zk = connect(&t.direct, 31).await;
    let mut all = Watchers::default();
    let x = zk
        .add_watch("/", AddWatchMode::PersistentRecursive)
        .await
        .expect("addWatch");
    all.persistent.push(("recursive /".into(), x));
    let ttl = |ms: i64, mode: CreateMode| {
        let mut o = CreateOptions::new(mode);
        o.ttl = Some(ms);
        o
    };
    let create = async |path: &str, opts: &CreateOptions| {
        zk.create_with(path, b"", opts)
            .await
            .unwrap_or_else(|e| panic!("{}: create {path}: {e}", t.name))
            .0
    };
    let plain = CreateOptions::new(CreateMode::Persistent);
    let container = CreateOptions::new(CreateMode::Container);
    let created = tokio::time::Instant::now();
    let ttl_node = create("/ttl", &ttl(1000, CreateMode::PersistentWithTtl)).await;
    let seq = create("/ts-", &ttl(1000, CreateMode::PersistentSequentialWithTtl)).await;
    create("/ttl-set", &ttl(1000, CreateMode::PersistentWithTtl)).await;
    create("/ttl-kids", &ttl(1000, CreateMode::PersistentWithTtl)).await;
    create("/ttl-kids/k", &plain).await;
    create("/never", &container).await;
    create("/box", &container).await;
    create("/box/k", &plain).await;
    out.push(format!("created {ttl_node} {seq}"));
    let (w_ttl, w_seq, w_box) = (
        watch_deletion(&zk, &t, &ttl_node).await,
        watch_deletion(&zk, &t, &seq).await,
        watch_deletion(&zk, &t, "/box").await,
    );
    let emptied = tokio::time::Instant::now();
    zk.delete("/box/k", None).await.expect("delete /box/k");
    let ev = w_box.await;
    out.push(format!("/box -> {:?}", ev.event_type));
    let second = Duration::from_secs(1);
    assert_within(
        &t,
        "emptied container reaped",
        emptied.elapsed(),
        (Duration::ZERO, second),
    );
    // Nothing to wait for here: the point is that time passes before the setData.
    tokio::time::sleep_until(created + Duration::from_millis(500)).await;
    let set_at = tokio::time::Instant::now();
    zk.set_data("/ttl-set", b"1", None)
        .await
        .expect("set /ttl-set");
    let w_set = watch_deletion(&zk, &t, "/ttl-set").await;
    let ttl_ms = Duration::from_millis(1000);
    for (label, w) in [("/ttl", w_ttl), ("/ts-", w_seq)] {
        let ev = w.await;
        out.push(format!("{label} -> {:?}", ev.event_type));
        assert_within(
            &t,
            "TTL node reaped",
            created.elapsed(),
            (ttl_ms, ttl_ms + second),
        );
    }
    let ev = w_set.await;
    out.push(format!("/ttl-set -> {:?}", ev.event_type));
    assert_within(
        &t,
        "TTL node reaped after setData",
        set_at.elapsed(),
        (ttl_ms, ttl_ms + second),
    );
    // Two later passes, one after the other: what they would reap is gone by then.
    for probe in ["/probe1", "/probe2"] {
        let probed = tokio::time::Instant::now();
        create(probe, &ttl(1, CreateMode::PersistentWithTtl)).await;
        let ev = watch_deletion(&zk, &t, probe).await.await;
        out.push(format!("{probe} -> {:?}", ev.event_type));
        assert_within(
            &t,
            "1 ms TTL probe reaped",
            probed.elapsed(),
            (Duration::ZERO, second),
        );
    }
    for p in ["/never", "/ttl-kids", "/ttl-kids/k"] {
        out.push(format!(
            "{p} stays -> {:?}",
            zk.exists(p).await.map(|s| s.is_some())
        ));
    }
    let w_kids = watch_deletion(&zk, &t, "/ttl-kids").await;
    let emptied = tokio::time::Instant::now();
    zk.delete("/ttl-kids/k", None)
        .await
        .expect("delete /ttl-kids/k");
    let ev = w_kids.await;
    out.push(format!("/ttl-kids emptied -> {:?}", ev.event_type));
    assert_within(
        &t,
        "emptied TTL node reaped",
        emptied.elapsed(),
        (Duration::ZERO, second),
    );
    all.poll(&zk, true, &mut out).await;
    zk.close().await;
    out
}

/// An exists watch on `path`, which must exist: it fires when the node goes.
async fn watch_deletion(zk: &Client, t: &Target, path: &str) -> Watcher {
    let (stat, w) = zk.exists_watch(path).await.expect("exists");
    assert!(stat.is_some(), "{}: {path} exists", t.name);
    w
}

#[test]
fn ttl_and_container_reaping_match_real_zookeeper() {
    let (real, sim) = on_both("reaper", reaper_scenario);
    assert_lines("reaper", &real, &sim);
}

// ----- one session, several connections -----

/// A handshake's answer as the transcript shows it: the negotiated timeout, and whether the
/// session id and password are the ones asked for (`id` and `passwd`).
fn handshake_line(
    who: &str,
    resp: &Option<zkit::proto::ConnectResponse>,
    id: i64,
    passwd: &[u8],
) -> String {
    match resp {
        None => format!("{who}: closed without an answer"),
        Some(r) => format!(
            "{who}: timeout {} same id {} same password {}",
            r.timeout,
            r.session_id == id,
            r.passwd == passwd
        ),
    }
}

/// One session over several connections: a second connection resumes a live session (the
/// first connection is closed, its watches gone with it); a wrong password and an unknown
/// session id are answered as expired (timeout 0), and the wrong password also closes the
/// session's live connection (ZooKeeper 3.8 does); closing the session ends it for every
/// later resume.
async fn handover_transcript(hosts: &str, base: &str) -> Vec<String> {
    use zkit::proto::{CreateRequest, Request, WatchedRequest};
    let mut lines = Vec::new();
    let mut xid = 0;
    let (mut a, resp) = RawConn::handshake(hosts, 0, vec![0; 16]).await;
    let resp = resp.expect("a new session");
    let (id, pw) = (resp.session_id, resp.passwd.clone());
    let node = format!("{base}/h");
    let (mut ev_a, mut ev_b) = (Vec::new(), Vec::new());
    let exists = Request::Exists(WatchedRequest {
        path: node.clone(),
        watch: true,
    });
    lines.push(format!(
        "A: exists {} -> {}",
        "/h",
        call(&mut a, &mut xid, base, exists, &mut ev_a).await
    ));
    let (mut b, resp) = RawConn::handshake(hosts, id, pw.clone()).await;
    lines.push(handshake_line("B resumes", &resp, id, &pw));
    lines.push(format!(
        "A: ping -> {}",
        call(&mut a, &mut xid, base, Request::Ping, &mut ev_a).await
    ));
    let create = Request::Create(CreateRequest {
        path: node.clone(),
        data: vec![],
        acl: Acl::open_unsafe(),
        flags: CreateMode::Ephemeral,
    });
    lines.push(format!(
        "B: create /h (ephemeral) -> {}",
        call(&mut b, &mut xid, base, create, &mut ev_b).await
    ));
    lines.push(format!(
        "B: ping -> {}",
        call(&mut b, &mut xid, base, Request::Ping, &mut ev_b).await
    ));
    let mut wrong = pw.clone();
    wrong[0] ^= 1;
    let (mut c, resp) = RawConn::handshake(hosts, id, wrong.clone()).await;
    lines.push(handshake_line("C, wrong password", &resp, id, &wrong));
    let mut ev_c = Vec::new();
    lines.push(format!(
        "C: ping -> {}",
        call(&mut c, &mut xid, base, Request::Ping, &mut ev_c).await
    ));
    lines.push(format!(
        "B: ping after C -> {}",
        call(&mut b, &mut xid, base, Request::Ping, &mut ev_b).await
    ));
    // An id no server handed out: this one's server byte is 0x7e.
    let unknown = (id & 0x00ff_ffff_ffff_ffff) | (0x7e << 56);
    let (_, resp) = RawConn::handshake(hosts, unknown, pw.clone()).await;
    lines.push(handshake_line("D, unknown id", &resp, unknown, &pw));
    let (mut f, resp) = RawConn::handshake(hosts, id, pw.clone()).await;
    lines.push(handshake_line("F resumes", &resp, id, &pw));
    let mut ev_f = Vec::new();
    lines.push(format!(
        "F: close session -> {}",
        call(&mut f, &mut xid, base, Request::CloseSession, &mut ev_f).await
    ));
    let (_, resp) = RawConn::handshake(hosts, id, pw.clone()).await;
    lines.push(handshake_line(
        "E resumes the closed session",
        &resp,
        id,
        &pw,
    ));
    lines.push(format!(
        "events A {ev_a:?} B {ev_b:?} C {ev_c:?} F {ev_f:?}"
    ));
    lines
}

#[test]
fn session_handover_matches_real_zookeeper() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let n = CASE_NO.fetch_add(1, Ordering::Relaxed);
    let base = format!("/handover-{}-{n}", std::process::id());
    let real_hosts = real().connect_string().to_owned();
    let (real, sim) = rt.block_on(async {
        make_chroot(&real_hosts, &base).await;
        let real = handover_transcript(&real_hosts, &base).await;
        let server = sim_server(n as u64).await;
        let sim_hosts = server.connect_string();
        make_chroot(&sim_hosts, &base).await;
        let sim = handover_transcript(&sim_hosts, &base).await;
        server.shutdown().await;
        (real, sim)
    });
    assert_lines("handover", &real, &sim);
}

// ----- multi and multiRead beyond what the client sends -----

/// Multis the zkit client never sends, as raw requests: a multiRead whose reads ask for
/// watches (ZooKeeper's `Op.getData`/`Op.getChildren` drop the flag, so nothing fires
/// later), an empty multiRead and an empty multi, a multiRead holding a write, and a multi
/// holding a read; and getEphemerals and sync with prefixes and paths the client would not
/// send (empty, blank, not a path). Each answer: its error code and, when it has one, its
/// decoded body.
async fn raw_multi_transcript(hosts: &str, base: &str) -> Vec<String> {
    use zkit::proto::{
        CheckVersionRequest, CreateRequest, MultiOp, MultiRequest, OpCode, PathRequest, Request,
        Response, SetDataRequest, WatchedRequest,
    };
    let mut lines = Vec::new();
    let mut c = RawConn::open(hosts).await;
    let mut events = Vec::new();
    let node = format!("{base}/m");
    let read = |watch| WatchedRequest {
        path: node.clone(),
        watch,
    };
    let check = MultiOp::Check(CheckVersionRequest {
        path: node.clone(),
        version: -1,
    });
    let ephemerals = |p: &str| Request::GetEphemerals(PathRequest { path: p.to_owned() });
    let sync = |p: &str| Request::Sync(PathRequest { path: p.to_owned() });
    let requests = vec![
        (
            "create /m",
            Request::Create(CreateRequest {
                path: node.clone(),
                data: vec![7],
                acl: Acl::open_unsafe(),
                flags: CreateMode::Persistent,
            }),
        ),
        (
            "multiRead with watches",
            Request::MultiRead(MultiRequest {
                ops: vec![
                    MultiOp::GetData(read(true)),
                    MultiOp::GetChildren(read(true)),
                ],
            }),
        ),
        (
            "setData /m",
            Request::SetData(SetDataRequest {
                path: node.clone(),
                data: vec![8],
                version: -1,
            }),
        ),
        (
            "create /m/k",
            Request::Create(CreateRequest {
                path: format!("{node}/k"),
                data: vec![],
                acl: Acl::open_unsafe(),
                flags: CreateMode::Persistent,
            }),
        ),
        ("ping", Request::Ping),
        (
            "empty multiRead",
            Request::MultiRead(MultiRequest { ops: vec![] }),
        ),
        (
            "create /m/e (ephemeral)",
            Request::Create(CreateRequest {
                path: format!("{node}/e"),
                data: vec![],
                acl: Acl::open_unsafe(),
                flags: CreateMode::Ephemeral,
            }),
        ),
        ("getEphemerals \"\"", ephemerals("")),
        ("getEphemerals \" \"", ephemerals(" ")),
        ("getEphemerals base/m/", ephemerals(&format!("{node}/"))),
        ("getEphemerals base/n", ephemerals(&format!("{base}/n"))),
        ("sync \"\"", sync("")),
        ("sync \"no/path\"", sync("no/path")),
        ("sync base/missing", sync(&format!("{base}/missing"))),
        (
            "multi of a read",
            Request::Multi(MultiRequest {
                ops: vec![MultiOp::GetData(read(false))],
            }),
        ),
        (
            "multiRead of a write",
            Request::MultiRead(MultiRequest {
                ops: vec![check.clone()],
            }),
        ),
        (
            "multi, a read then a write",
            Request::Multi(MultiRequest {
                ops: vec![MultiOp::GetData(read(false)), check.clone()],
            }),
        ),
        ("empty multi", Request::Multi(MultiRequest { ops: vec![] })),
        (
            "multi with a read",
            Request::Multi(MultiRequest {
                ops: vec![check.clone(), MultiOp::GetData(read(false))],
            }),
        ),
        (
            "multiRead with a write",
            Request::MultiRead(MultiRequest {
                ops: vec![MultiOp::GetData(read(false)), check],
            }),
        ),
        ("ping", Request::Ping),
    ];
    let mut last_zxid = None;
    for (xid, (label, request)) in (1..).zip(requests) {
        let xid = if matches!(request, Request::Ping) {
            -2
        } else {
            xid
        };
        let opcode: OpCode = request.op_code();
        let Some((err, zxid, body)) = c.call_body(&request, xid, base, &mut events).await else {
            lines.push(format!("{label} -> closed"));
            break;
        };
        // How many zxids the request took (a failed write still takes one: an error txn).
        let took = last_zxid.map_or("-".to_owned(), |z| format!("{}", zxid - z));
        last_zxid = Some(zxid);
        let answer = match err {
            0 => match Response::from_bytes(opcode, &body) {
                Ok(Response::Multi(m)) => {
                    let results: Vec<String> = m.results.iter().map(multi_result_text).collect();
                    format!("ok {results:?}")
                }
                Ok(Response::GetEphemerals(e)) => {
                    let paths: Vec<String> = e
                        .ephemerals
                        .iter()
                        .map(|p| p.strip_prefix(base).unwrap_or(p).to_owned())
                        .collect();
                    format!("ok{}", children(&paths))
                }
                Ok(Response::Sync(s)) => {
                    format!("ok {:?}", s.path.strip_prefix(base).unwrap_or(&s.path))
                }
                Ok(_) => "ok".to_owned(),
                Err(e) => format!("ok, undecodable body: {e}"),
            },
            err => format!("err {err}"),
        };
        lines.push(format!(
            "{label} -> {answer}, zxids taken {took}; events so far {events:?}"
        ));
    }
    lines
}

/// A multi's sub-result without times and zxids.
fn multi_result_text(r: &zkit::proto::MultiResult) -> String {
    use zkit::proto::MultiResult;
    match r {
        MultiResult::GetData(d) => format!(
            "data {:?} v={} cv={} kids={}",
            d.data, d.stat.version, d.stat.cversion, d.stat.num_children
        ),
        MultiResult::GetChildren(c) => format!("children{}", children(&c.children)),
        MultiResult::Error(code) => format!("error {code:?}"),
        other => format!("{other:?}"),
    }
}

#[test]
fn raw_multis_match_real_zookeeper() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let n = CASE_NO.fetch_add(1, Ordering::Relaxed);
    let base = format!("/raw-multi-{}-{n}", std::process::id());
    // A server of its own: the zxids a request takes are counted, and the shared server
    // takes others' writes at the same time.
    let own = ZkServer::standalone().expect("a real ZooKeeper 3.8 must start");
    let real_hosts = own.connect_string().to_owned();
    let (real, sim) = rt.block_on(async {
        make_chroot(&real_hosts, &base).await;
        let real = raw_multi_transcript(&real_hosts, &base).await;
        let server = sim_server(n as u64).await;
        let sim_hosts = server.connect_string();
        make_chroot(&sim_hosts, &base).await;
        let sim = raw_multi_transcript(&sim_hosts, &base).await;
        server.shutdown().await;
        (real, sim)
    });
    assert_lines("raw multis", &real, &sim);
}

/// A raw session that stays connected but sends nothing after creating an ephemeral node:
/// the server expires it and closes its connection. Returns the transcript and how long
/// after the last request was sent the connection closed.
async fn silent_session_transcript(hosts: &str, base: &str) -> (Vec<String>, Duration) {
    use zkit::proto::{CreateRequest, Request, WatchedRequest};
    let mut lines = Vec::new();
    let mut c = RawConn::open(hosts).await;
    let node = format!("{base}/silent");
    let create = Request::Create(CreateRequest {
        path: node.clone(),
        data: vec![],
        acl: Acl::open_unsafe(),
        flags: CreateMode::Ephemeral,
    });
    let mut events = Vec::new();
    let sent = tokio::time::Instant::now();
    let mut xid = 0;
    lines.push(format!(
        "create ephemeral -> {}",
        call(&mut c, &mut xid, base, create, &mut events).await
    ));
    // Whatever the server sends before it closes the connection (nothing, on both).
    while let Some(frame) = c.frame().await {
        lines.push(format!("server sent {} bytes", frame.len()));
    }
    let closed = sent.elapsed();
    lines.push("closed".into());
    let mut other = RawConn::open(hosts).await;
    let exists = Request::Exists(WatchedRequest {
        path: node,
        watch: false,
    });
    lines.push(format!(
        "exists, from another session -> {}",
        call(&mut other, &mut xid, base, exists, &mut events).await
    ));
    (lines, closed)
}

/// A session whose connection stays open but silent expires like a cut-off one (timing as
/// in [`expiry_scenario`]: more than the timeout after the last request was sent, at most
/// timeout + tick after, plus a second), and the server closes its connection without a word.
#[test]
fn silent_session_expires_and_is_closed_as_real_zookeeper_does() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let n = CASE_NO.fetch_add(1, Ordering::Relaxed);
    let base = format!("/silent-{}-{n}", std::process::id());
    let real_hosts = real().connect_string().to_owned();
    let (real, sim) = rt.block_on(async {
        let server = sim_server(n as u64).await;
        let sim_hosts = server.connect_string();
        make_chroot(&real_hosts, &base).await;
        make_chroot(&sim_hosts, &base).await;
        let both = tokio::join!(
            silent_session_transcript(&real_hosts, &base),
            silent_session_transcript(&sim_hosts, &base),
        );
        server.shutdown().await;
        both
    });
    for (name, took) in [("real", real.1), ("sim", sim.1)] {
        if std::env::var_os("ZKIT_CONFORMANCE_SHOW").is_some() {
            eprintln!("{name}: silent session closed after {took:?}");
        }
        assert!(
            SESSION_TIMEOUT - Duration::from_millis(50) <= took
                && took <= SESSION_TIMEOUT + TICK + EXPIRY_SLACK,
            "{name}: the silent session's connection closed after {took:?}"
        );
    }
    assert_lines("silent session", &real.0, &sim.0);
}
