//! Other clients against the simulated server: Kazoo (Python, Debian's `python3-kazoo`) and
//! ZooKeeper's own Java CLI (`zkCli.sh`, Debian's `zookeeper`), over real TCP. The server runs
//! in process, except in one test that spawns the `zkit-sim serve` binary cargo builds.
//!
//! These tests never skip: a missing Kazoo or CLI fails them and says what to install
//! (`scripts/test` installs both).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use zkit_sim::server::{Server, ServerConfig, ServerHandle};

/// Debian's python, which has `python3-kazoo` (a pyenv python on PATH may not).
const PYTHON: &str = "/usr/bin/python3";

/// Where Debian's `zookeeper` package puts the CLI.
const ZK_CLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";

async fn sim_server() -> ServerHandle {
    let config = ServerConfig {
        tick_time: Duration::from_millis(500),
        ..ServerConfig::default()
    };
    Server::bind("127.0.0.1:0", config)
        .await
        .expect("the simulated server binds a loopback port")
}

fn show(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a blocking command off the runtime's threads (the server keeps serving meanwhile).
async fn run(mut cmd: Command, what: &str) -> Output {
    let what = what.to_owned();
    tokio::task::spawn_blocking(move || {
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"))
    })
    .await
    .expect("the blocking task finishes")
}

// ----- Kazoo -----

const KAZOO_SCRIPT: &str = r#"
import sys, threading
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError, NodeExistsError, BadVersionError

hosts = sys.argv[1]
zk = KazooClient(hosts=hosts, timeout=10)
zk.start(timeout=10)

# create / get / set / children
assert zk.create("/kz", b"root") == "/kz"
data, stat = zk.get("/kz")
assert data == b"root" and stat.version == 0, (data, stat)
stat = zk.set("/kz", b"v1", version=0)
assert stat.version == 1, stat
try:
    zk.set("/kz", b"v2", version=0)
    raise SystemExit("set with a stale version succeeded")
except BadVersionError:
    pass
for name in ("b", "a", "c"):
    zk.create("/kz/" + name, name.encode())
assert sorted(zk.get_children("/kz")) == ["a", "b", "c"]
try:
    zk.create("/kz/a")
    raise SystemExit("duplicate create succeeded")
except NodeExistsError:
    pass
seq = zk.create("/kz/seq-", b"", sequence=True)
assert seq == "/kz/seq-0000000003", seq  # cversion 3 after a, b, c

# ephemeral
path = zk.create("/kz/eph", b"", ephemeral=True)
_, stat = zk.get(path)
assert stat.ephemeralOwner == zk.client_id[0], (stat.ephemeralOwner, zk.client_id)

# a one-shot data watch, fired by another session
fired = threading.Event()
events = []
def watch(event):
    events.append(event)
    fired.set()
zk.get("/kz/a", watch=watch)
other = KazooClient(hosts=hosts, timeout=10)
other.start(timeout=10)
other.set("/kz/a", b"changed")
assert fired.wait(10), "watch did not fire"
assert events[0].type == "CHANGED" and events[0].path == "/kz/a", events

# the other session's ephemeral goes when it stops
other.create("/kz/other-eph", b"", ephemeral=True)
gone = threading.Event()
def deleted(event):
    if event.type == "DELETED":
        gone.set()
assert zk.exists("/kz/other-eph", watch=deleted) is not None
other.stop()
other.close()
assert gone.wait(10), "ephemeral of a closed session still there"

# a transaction that commits, and one that fails as a whole
t = zk.transaction()
t.create("/kz/t1", b"x")
t.check("/kz", 1)
t.set_data("/kz/b", b"tx")
results = t.commit()
assert results[0] == "/kz/t1" and results[1] is True, results
assert zk.get("/kz/b")[0] == b"tx"
t = zk.transaction()
t.create("/kz/t2", b"x")
t.check("/kz", 99)
results = t.commit()
assert isinstance(results[1], BadVersionError), results
assert zk.exists("/kz/t2") is None

# the Lock recipe, with two contenders
a = KazooClient(hosts=hosts, timeout=10); a.start(timeout=10)
b = KazooClient(hosts=hosts, timeout=10); b.start(timeout=10)
la = a.Lock("/kz/lock", "a")
lb = b.Lock("/kz/lock", "b")
assert la.acquire(timeout=10)
assert not lb.acquire(blocking=False)
assert sorted(la.contenders()) == ["a"], la.contenders()
got = threading.Event()
def contend():
    if lb.acquire(timeout=10):
        got.set()
thread = threading.Thread(target=contend)
thread.start()
la.release()
thread.join()
assert got.is_set(), "second contender did not get the lock after release"
assert lb.contenders() == ["b"], lb.contenders()
lb.release()
a.stop(); a.close(); b.stop(); b.close()

zk.delete("/kz", recursive=True)
assert zk.exists("/kz") is None
zk.stop()
zk.close()
print("KAZOO OK")
"#;

fn kazoo_command(hosts: &str) -> Command {
    assert!(
        Path::new(PYTHON).exists(),
        "{PYTHON} is missing: install Debian's python3 and python3-kazoo (scripts/test does)"
    );
    let probe = Command::new(PYTHON)
        .args(["-c", "import kazoo"])
        .output()
        .expect("run /usr/bin/python3");
    assert!(
        probe.status.success(),
        "Kazoo is missing for {PYTHON}: `apt-get install python3-kazoo` (scripts/test does)\n{}",
        show(&probe)
    );
    let mut cmd = Command::new(PYTHON);
    cmd.args(["-c", KAZOO_SCRIPT, hosts]);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_drives_the_sim_server() {
    let server = sim_server().await;
    let out = run(kazoo_command(&server.connect_string()), "kazoo").await;
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("KAZOO OK"),
        "Kazoo against the sim server failed:\n{}",
        show(&out)
    );
    server.shutdown().await;
}

// ----- zkCli.sh -----

fn zk_cli(hosts: &str, args: &[&str]) -> Command {
    assert!(
        Path::new(ZK_CLI).exists(),
        "{ZK_CLI} is missing: install Debian's zookeeper package (`scripts/zk install`)"
    );
    let mut cmd = Command::new(ZK_CLI);
    cmd.arg("-server").arg(hosts).args(args);
    // Its log goes to a file of its own, not into the test's directory.
    cmd.env("ZOO_LOG_DIR", std::env::temp_dir());
    cmd
}

/// Runs one CLI command, which must succeed (exit 0) or fail (exit 1, as the CLI does on a
/// ZooKeeper error) as `ok` says; returns stdout and stderr (the CLI reports results on both).
async fn cli(hosts: &str, args: &[&str], ok: bool) -> String {
    let out = run(zk_cli(hosts, args), "zkCli.sh").await;
    let want = if ok { 0 } else { 1 };
    assert_eq!(
        out.status.code(),
        Some(want),
        "zkCli.sh {args:?}:\n{}",
        show(&out)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn cli_session(hosts: &str) {
    let out = cli(hosts, &["create", "/cli", "hello"], true).await;
    assert!(out.contains("Created /cli"), "{out}");
    let out = cli(hosts, &["create", "/cli/child", "c"], true).await;
    assert!(out.contains("Created /cli/child"), "{out}");
    let out = cli(hosts, &["get", "/cli"], true).await;
    assert!(out.lines().any(|l| l.trim() == "hello"), "{out}");
    let out = cli(hosts, &["ls", "/cli"], true).await;
    assert!(out.lines().any(|l| l.trim() == "[child]"), "{out}");
    let out = cli(hosts, &["create", "/cli", "again"], false).await;
    assert!(out.contains("Node already exists: /cli"), "{out}");
    let out = cli(hosts, &["delete", "/cli"], false).await;
    assert!(out.contains("Node not empty: /cli"), "{out}");
    cli(hosts, &["delete", "/cli/child"], true).await;
    cli(hosts, &["delete", "/cli"], true).await;
    let out = cli(hosts, &["ls", "/"], true).await;
    let root = out
        .lines()
        .find(|l| l.starts_with('['))
        .unwrap_or_else(|| panic!("no listing in {out}"));
    assert!(root.contains("zookeeper") && !root.contains("cli"), "{out}");
    let out = cli(hosts, &["get", "/cli"], false).await;
    assert!(out.contains("Node does not exist: /cli"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zk_cli_drives_the_sim_server() {
    let server = sim_server().await;
    cli_session(&server.connect_string()).await;
    server.shutdown().await;
}

// ----- the `zkit-sim serve` binary -----

/// The `zkit-sim` binary of the same profile as this test, built by cargo first (a no-op
/// when `cargo test --workspace` has built it already).
fn zkit_sim_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test> -> target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps")
        .to_path_buf();
    let target_dir = profile_dir
        .parent()
        .expect("target/<profile> has a parent")
        .to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(zkit_tests::workspace_root())
        .args(["build", "-p", "zkit-sim", "--bin", "zkit-sim"])
        .env("CARGO_TARGET_DIR", &target_dir);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            build.arg("--release");
        }
        Some(other) => {
            build.args(["--profile", other]);
        }
        None => panic!("cannot tell the cargo profile from {}", exe.display()),
    }
    let out = build.output().expect("run cargo build -p zkit-sim");
    assert!(
        out.status.success(),
        "cargo build -p zkit-sim:\n{}",
        show(&out)
    );
    let bin = profile_dir.join(format!("zkit-sim{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "no {} after cargo build", bin.display());
    bin
}

/// A `zkit-sim serve` process, killed on drop.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zkit_sim_serve_binary_serves_real_clients() {
    let bin = tokio::task::spawn_blocking(zkit_sim_binary)
        .await
        .expect("the build finishes");
    let mut child = Command::new(&bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--tick-ms", "500"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let served = Served(child);
    // The first line says where it listens: "zkit-sim X serving ZooKeeper on 127.0.0.1:PORT".
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read zkit-sim's stdout");
        line
    })
    .await
    .expect("the read finishes");
    let hosts = line
        .trim()
        .rsplit(' ')
        .next()
        .filter(|h| h.starts_with("127.0.0.1:"))
        .unwrap_or_else(|| panic!("zkit-sim serve printed {line:?}"))
        .to_owned();

    // The zkit client, then the Java CLI reads what it wrote, then Kazoo's whole script.
    let zk = zkit::Client::connect(&hosts).await.expect("zkit connects");
    zk.create("/from-zkit", b"z", zkit::CreateMode::Persistent)
        .await
        .expect("create");
    assert_eq!(zk.get_data("/from-zkit").await.expect("get").0, b"z");
    zk.close().await;
    let out = cli(&hosts, &["get", "/from-zkit"], true).await;
    assert!(out.lines().any(|l| l.trim() == "z"), "{out}");
    let out = run(kazoo_command(&hosts), "kazoo").await;
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("KAZOO OK"),
        "Kazoo against zkit-sim serve failed:\n{}",
        show(&out)
    );
    drop(served);
}
