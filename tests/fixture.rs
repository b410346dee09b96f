//! Tests of the real-ZooKeeper fixture (`zkit_tests::ZkServer` and
//! `scripts/zk`). They need Java and Debian's `zookeeper` package
//! (`scripts/zk install`); they fail, never skip, when those are missing.

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use zkit_tests::{zk_script, FixtureError, ZkServer};

/// True if `pid` is a live process (a zombie counts as gone: it runs nothing
/// and holds no sockets; the sandbox's init may not reap orphans).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.split(' ').next())
                .unwrap_or("");
            !matches!(state, "Z" | "X" | "")
        }
        Err(_) => false,
    }
}

fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

#[test]
fn standalone_answers_ruok_and_is_gone_after_drop() {
    let zk = ZkServer::standalone().expect("start standalone ZooKeeper");
    assert_eq!(zk.size(), 1);
    let addr = zk.address(0).expect("member 0");
    assert_eq!(zk.connect_string(), addr.to_string());
    assert!(addr.ip().is_loopback());
    assert_eq!(zk.four_letter(0, "ruok").expect("ruok"), "imok");
    assert_eq!(zk.mode(0).expect("srvr").as_deref(), Some("standalone"));
    assert_eq!(zk.leader_index(), Some(0));
    let conf = zk.four_letter(0, "conf").expect("conf");
    assert!(conf.contains("tickTime=500"), "conf: {conf}");

    let pid = zk.pid(0).expect("pid recorded");
    let dir = zk.dir().to_path_buf();
    assert!(running(pid));
    drop(zk);

    assert!(!running(pid), "JVM {pid} still running after drop");
    assert!(
        !accepts(addr),
        "{addr} still accepts connections after drop"
    );
    assert!(!dir.exists(), "{} not removed after drop", dir.display());
}

#[test]
fn standalone_kill_and_restart() {
    let zk = ZkServer::standalone().expect("start standalone ZooKeeper");
    let first = zk.pid(0).expect("pid");
    zk.kill(0).expect("kill");
    assert!(!running(first));
    assert!(
        zk.four_letter(0, "ruok").is_err(),
        "killed server still answers"
    );
    zk.kill(0).expect("killing a dead member is a no-op");
    zk.restart(0).expect("restart");
    assert_eq!(
        zk.four_letter(0, "ruok").expect("ruok after restart"),
        "imok"
    );
    let second = zk.pid(0).expect("pid");
    assert_ne!(first, second);
    assert!(
        matches!(zk.restart(0), Err(FixtureError::Script { .. })),
        "restarting a running member must fail"
    );
    drop(zk);
    assert!(!running(second));
}

#[test]
fn ensemble_of_three_one_leader_kill_and_restart() {
    let zk = ZkServer::ensemble(3).expect("start 3-node ZooKeeper ensemble");
    assert_eq!(zk.size(), 3);
    assert_eq!(zk.connect_string().split(',').count(), 3);
    let modes: Vec<String> = (0..3)
        .map(|i| zk.mode(i).expect("srvr").unwrap_or_default())
        .collect();
    assert_eq!(
        modes.iter().filter(|m| *m == "leader").count(),
        1,
        "modes: {modes:?}"
    );
    assert_eq!(
        modes.iter().filter(|m| *m == "follower").count(),
        2,
        "modes: {modes:?}"
    );
    let leader = zk.leader_index().expect("a leader");
    assert_eq!(modes[leader], "leader");

    // A killed follower stops answering and comes back after restart.
    let follower = (leader + 1) % 3;
    let addr = zk.address(follower).expect("address");
    zk.kill(follower).expect("kill follower");
    assert!(!accepts(addr), "killed member still accepts connections");
    assert!(zk.four_letter(follower, "ruok").is_err());
    zk.restart(follower).expect("restart follower");
    assert_eq!(zk.four_letter(follower, "ruok").expect("ruok"), "imok");
    assert_eq!(
        zk.mode(follower).expect("srvr").as_deref(),
        Some("follower")
    );

    // Killing the leader: the other two elect a new one; it rejoins.
    zk.kill(leader).expect("kill leader");
    let new_leader = zk
        .wait_for_leader(Duration::from_secs(30))
        .expect("re-election");
    assert_ne!(new_leader, leader);
    zk.restart(leader).expect("restart old leader");
    assert_eq!(zk.mode(leader).expect("srvr").as_deref(), Some("follower"));

    let pids: Vec<u32> = (0..3).map(|i| zk.pid(i).expect("pid")).collect();
    let addrs = zk.addresses();
    drop(zk);
    for (pid, addr) in pids.into_iter().zip(addrs) {
        assert!(!running(pid), "JVM {pid} still running after drop");
        assert!(!accepts(addr), "{addr} still accepts after drop");
    }
}

#[test]
fn bad_member_index_is_an_error() {
    let zk = ZkServer::standalone().expect("start standalone ZooKeeper");
    assert!(matches!(
        zk.address(1),
        Err(FixtureError::NoSuchMember { index: 1, size: 1 })
    ));
    assert!(zk.kill(3).is_err());
}

#[test]
fn missing_zookeeper_is_reported_with_install_hint() {
    let out = Command::new(zk_script())
        .arg("check")
        .env("ZK_JAR_DIR", "/nonexistent-zk-jars")
        .output()
        .expect("run scripts/zk check");
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("zookeeper.jar"), "{stderr}");
    assert!(stderr.contains("scripts/zk install"), "{stderr}");
}
