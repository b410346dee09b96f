//! The recipe examples run against a real ZooKeeper 3.8, as a person would run them
//! (`cargo run -p zkit --example NAME -- --hosts ...`), and say what they should.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{connect, standalone, within};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use zkit::CreateMode;

/// Starts `cargo run -q -p zkit --example NAME -- ARGS` with stdout piped.
fn example(name: &str, args: &[&str]) -> Child {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    Command::new(cargo)
        .args(["run", "-q", "-p", "zkit", "--example", name, "--"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start example {name}: {e}"))
}

/// Waits for `child` to succeed and returns what it printed.
async fn finished(name: &str, child: Child) -> String {
    let out = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("example {name} did not finish within 300 s"))
        .unwrap_or_else(|e| panic!("example {name}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "example {name} failed: {}\n{stdout}",
        out.status
    );
    stdout
}

#[tokio::test]
async fn lock_election_party_barriers_and_config_watch_examples_run() {
    let hosts = standalone().connect_string();

    // Two lock contenders take turns.
    let a = example(
        "lock",
        &[
            "--hosts",
            hosts,
            "--id",
            "a",
            "--rounds",
            "2",
            "--hold-ms",
            "100",
        ],
    );
    let b = example(
        "lock",
        &[
            "--hosts",
            hosts,
            "--id",
            "b",
            "--rounds",
            "2",
            "--hold-ms",
            "100",
        ],
    );
    let (a, b) = tokio::join!(finished("lock a", a), finished("lock b", b));
    assert_eq!(a.matches("acquired, fencing token").count(), 2, "{a}");
    assert_eq!(b.matches("acquired, fencing token").count(), 2, "{b}");

    let e = finished(
        "election",
        example(
            "election",
            &[
                "--hosts",
                hosts,
                "--id",
                "solo",
                "--rounds",
                "1",
                "--hold-ms",
                "50",
            ],
        ),
    )
    .await;
    assert!(e.contains("[solo] became leader"), "{e}");

    let p = finished(
        "party",
        example(
            "party",
            &["--hosts", hosts, "--id", "alice", "--rounds", "1"],
        ),
    )
    .await;
    assert!(p.contains("[alice] members: [\"alice\"]"), "{p}");

    let boss = example(
        "barrier",
        &["--hosts", hosts, "--id", "boss", "--hold-ms", "1000"],
    );
    let worker = example("barrier", &["--hosts", hosts, "--id", "worker"]);
    let (boss, worker) = tokio::join!(
        finished("barrier boss", boss),
        finished("barrier worker", worker)
    );
    assert!(boss.contains("[boss] barrier removed"), "{boss}");
    assert!(worker.contains("[worker] passed"), "{worker}");

    let parts: Vec<_> = ["p1", "p2", "p3"]
        .iter()
        .map(|id| {
            example(
                "double_barrier",
                &[
                    "--hosts",
                    hosts,
                    "--id",
                    id,
                    "--rounds",
                    "3",
                    "--hold-ms",
                    "50",
                ],
            )
        })
        .collect();
    for (i, child) in parts.into_iter().enumerate() {
        let out = finished("double_barrier", child).await;
        assert!(
            out.contains("everyone is in") && out.contains("everyone is out"),
            "p{}: {out}",
            i + 1
        );
    }

    // The config watcher prints the absent node, then the value written after it started.
    let writer = connect(hosts).await;
    writer.delete_recursive("/examples/config").await.unwrap();
    let mut watcher = example("config_watch", &["--hosts", hosts, "--rounds", "2"]);
    let mut lines = BufReader::new(watcher.stdout.take().expect("piped stdout")).lines();
    let first = within("first value", lines.next_line())
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(first, "/examples/config does not exist");
    writer.ensure_path("/examples").await.unwrap();
    writer
        .create("/examples/config", b"v1", CreateMode::Persistent)
        .await
        .unwrap();
    let second = within("second value", lines.next_line())
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(second, "/examples/config = \"v1\" (version 0)");
    let status = within("config_watch exits", watcher.wait()).await.unwrap();
    assert!(status.success());
}

/// Every example, as a newcomer first meets it: `--help` says what it does and lists its
/// options (exit 0), and a malformed option is refused with usage (exit 2), before any
/// connection is tried.
#[tokio::test]
async fn every_example_answers_help_and_refuses_bad_options() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("client/examples");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("client/examples")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".rs").map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 13, "examples found: {names:?}");
    for name in &names {
        let help = example_output(name, &["--help"]).await;
        let stdout = String::from_utf8_lossy(&help.stdout);
        assert!(help.status.success(), "{name} --help: {}", help.status);
        for expected in ["Usage:", "--hosts", "--path", "--rounds", "--help"] {
            assert!(
                stdout.contains(expected),
                "{name} --help lacks {expected}:\n{stdout}"
            );
        }
        let bad = example_output(name, &["--rounds", "many"]).await;
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(
            bad.status.code(),
            Some(2),
            "{name} --rounds many:\n{stderr}"
        );
        assert!(stderr.contains("--rounds"), "{name}:\n{stderr}");
    }
}

/// Runs `cargo run -q -p zkit --example NAME -- ARGS` to completion and returns its output.
async fn example_output(name: &str, args: &[&str]) -> std::process::Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["run", "-q", "-p", "zkit", "--example", name, "--"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(300), out)
        .await
        .unwrap_or_else(|_| panic!("example {name} {args:?} did not exit within 300 s"))
        .unwrap_or_else(|e| panic!("run example {name}: {e}"))
}
