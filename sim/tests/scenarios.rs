//! The main job under `cargo test`: every shipped scenario over a seed budget through the
//! `zkit-sim run` binary (worker processes, so every seed replays exactly), every seed of
//! `scenarios/regressions.toml`, and each shipped scenario's faults actually firing.
//!
//! - `ZKIT_SEEDS` (default 300) seeds per scenario, `ZKIT_RECIPE_SEEDS` (default 10) per
//!   per-recipe scenario ([`RECIPES`]: one scenario per recipe, each asserting what it exists
//!   to provoke);
//! - `ZKIT_SHARD=I/N` runs shard I of N of them (many CI machines split one budget);
//! - `ZKIT_JOBS` worker processes (default: the cores).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use zkit_sim::runner;
use zkit_sim::scenario;

fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// Every `*.toml` in `scenarios/` but the regressions list.
fn shipped() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .expect("read scenarios/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "toml")
                && p.file_name().is_some_and(|n| n != "regressions.toml")
        })
        .collect();
    files.sort();
    files
}

/// Whether `file` is one of the per-recipe scenarios ([`RECIPES`]).
fn is_recipe(file: &Path) -> bool {
    file.file_stem()
        .and_then(|s| s.to_str())
        .is_some_and(|stem| RECIPES.iter().any(|(name, _)| *name == stem))
}

/// Runs `files` over `seeds` seeds through the CLI; checks that every scenario reported,
/// failed no seed, fired its faults, and
/// provoked what `must_happen` says it exists to provoke.
fn sweep(files: &[PathBuf], seeds: &str, must_happen: &[(&str, &[&str])]) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zkit-sim"));
    cmd.arg("run")
        .args(files)
        .args(["--seeds", seeds])
        .arg("--trace-dir")
        .arg(Path::new(env!("CARGO_TARGET_TMPDIR")).join("traces"));
    if let Ok(jobs) = std::env::var("ZKIT_JOBS") {
        cmd.args(["--jobs", &jobs]);
    }
    if let Ok(shard) = std::env::var("ZKIT_SHARD") {
        cmd.args(["--shard", &shard]);
    }
    let out = cmd.output().expect("run zkit-sim");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "zkit-sim run failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // Every scenario reported, with no failure, and its faults fired.
    for file in files {
        let s = scenario::load(file).unwrap_or_else(|e| panic!("{e}"));
        let row = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(s.name.as_str()))
            .unwrap_or_else(|| panic!("no summary row for {}:\n{stdout}", s.name));
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols.get(2), Some(&"0"), "{}: {row}", s.name);
        let fired: usize = cols.get(3).and_then(|c| c.parse().ok()).unwrap_or(0);
        assert!(fired > 0, "{}: no fault ever fired: {row}", s.name);
    }
    // What each scenario exists to provoke did happen (summed over its seeds).
    for (name, wanted) in must_happen {
        let line = stdout
            .lines()
            .skip_while(|l| l.split_whitespace().next() != Some(name))
            .nth(1)
            .unwrap_or_else(|| panic!("no coverage line for {name}:\n{stdout}"));
        for key in *wanted {
            let count = line
                .split_once("coverage: ")
                .map_or("", |(_, c)| c)
                .split(", ")
                .find_map(|c| c.strip_prefix(key)?.trim().parse::<usize>().ok())
                .unwrap_or(0);
            assert!(count > 0, "{name}: no {key}: {line}");
        }
    }
}

/// The lock, election, barrier, config and swarm scenarios, `ZKIT_SEEDS` (default 300)
/// seeds each.
#[test]
fn every_shipped_scenario_passes_its_seed_budget() {
    let files: Vec<PathBuf> = shipped()
        .into_iter()
        .filter(|f| !is_recipe(f) && !f.ends_with(EVERYTHING.0))
        .collect();
    sweep(&files, &env_or("ZKIT_SEEDS", "300"), MUST_HAPPEN);
}

/// The swarm of every fault in every variant, and what it must provoke over its seeds.
const EVERYTHING: (&str, &[(&str, &[&str])]) = (
    "swarm_everything.toml",
    &[(
        "swarm_everything",
        &[
            "lock handoffs",
            "leader changes",
            "leases acquired",
            "fault:pause",
            "fault:cancel",
            "fault:lag",
            "fault:expire",
            "cancelled acquires",
        ],
    )],
);

/// `swarm_everything`, `ZKIT_SWARM_SEEDS` (default 40) seeds: its seeds cost about six
/// times a `swarm_lock` seed (more clients, longer holds, every fault), so it gets a
/// budget of its own; the CLI runs thousands outside CI.
#[test]
fn the_swarm_of_every_fault_passes_its_seed_budget() {
    let file = scenarios_dir().join(EVERYTHING.0);
    sweep(&[file], &env_or("ZKIT_SWARM_SEEDS", "40"), EVERYTHING.1);
}

/// The per-recipe scenarios ([`RECIPES`]), `ZKIT_RECIPE_SEEDS` (default 10) seeds each: one
/// per recipe, so a modest budget each keeps the whole sweep fast.
#[test]
fn every_recipe_scenario_passes_its_seed_budget() {
    let files: Vec<PathBuf> = shipped().into_iter().filter(|f| is_recipe(f)).collect();
    assert_eq!(
        files.len(),
        RECIPES.len(),
        "a scenario of RECIPES has no file in scenarios/"
    );
    sweep(&files, &env_or("ZKIT_RECIPE_SEEDS", "10"), RECIPES);
}

/// Per scenario, coverage counts that must not be zero.
const MUST_HAPPEN: &[(&str, &[&str])] = &[
    (
        "lock_holder_partitioned",
        &["sessions expired", "lock handoffs"],
    ),
    ("lock_holder_crashes", &["lock handoffs"]),
    (
        "minority_read_only",
        &["read-only connections", "lock handoffs", "leader changes"],
    ),
    ("lock_holder_session_expires", &["sessions killed"]),
    (
        "lagging_follower_waiters",
        &[
            "fault:lag",
            "fault:expire",
            "ensemble expiries",
            "lock handoffs",
        ],
    ),
    (
        "lock_holder_paused",
        &[
            "stale writes rejected",
            "expected overlaps (fenced)",
            "pauses",
        ],
    ),
    ("leader_crash_during_handoff", &["lock handoffs"]),
    (
        "leader_paused",
        &[
            "fault:pause",
            "lock handoffs",
            "leader changes",
            "ensemble expiries",
        ],
    ),
    (
        "leader_election_split_halves",
        &["leader changes", "fault:split"],
    ),
    ("lost_create_reply", &["lock handoffs"]),
    (
        "double_barrier_dying_participant",
        &["barrier rounds", "fault:crash"],
    ),
    ("config_watcher_across_reconnects", &["config values seen"]),
    ("swarm_lock", &["lock handoffs"]),
    (
        "five_servers_minority_down",
        &[
            "lock handoffs",
            "leader changes",
            "fault:crash",
            "fault:partition",
        ],
    ),
];

/// The per-recipe scenarios (file stem = name), with the coverage counts that must not be
/// zero: what each exists to provoke.
const RECIPES: &[(&str, &[&str])] = &[
    (
        "cancelled_calls",
        &[
            "cancelled acquires",
            "cancelled releases",
            "cancelled enters",
            "cancelled leaves",
            "cancelled closes",
            "lock handoffs",
            "leases acquired",
            "barrier rounds",
            "leaderships",
            "fault:cancel",
        ],
    ),
    (
        "semaphore_holders_expire",
        &[
            "leases acquired",
            "sessions killed",
            "sessions expired",
            "expected overlaps (fenced)",
        ],
    ),
    (
        "rwlock_mixed_holders_fail",
        &[
            "rwlock write acquisitions",
            "rwlock acquisitions",
            "sessions expired",
            "sessions killed",
            "fault:crash",
        ],
    ),
    (
        "multi_lock_holders_fail",
        &[
            "multi-lock acquisitions",
            "sessions expired",
            "sessions killed",
            "expected overlaps (fenced)",
        ],
    ),
    (
        "counter_lost_replies",
        &[
            "counter adds",
            "counter adds uncertain",
            "counter reads",
            "sessions expired",
        ],
    ),
    (
        "queue_lost_replies",
        &["queue puts", "queue items taken", "fault:crash"],
    ),
    (
        "locking_queue_consumers_fail",
        &[
            "queue puts",
            "queue items taken",
            "sessions expired",
            "sessions killed",
        ],
    ),
    (
        "lease_holders_cut_off",
        &["lease holds", "lease handoffs", "pauses"],
    ),
    (
        "partitioner_members_fail",
        &[
            "partition shares",
            "sessions expired",
            "sessions killed",
            "expected overlaps (fenced)",
        ],
    ),
    (
        "tree_cache_reconnects",
        &[
            "tree writes",
            "tree cache events",
            "tree caches started",
            "sessions expired",
        ],
    ),
    (
        "party_members_fail",
        &["party joins", "sessions expired", "sessions killed"],
    ),
    (
        "barrier_keeper_cut_off",
        &["barrier waiters held then released", "sessions expired"],
    ),
    (
        "writer_lost_replies",
        &["creates acknowledged", "fault:split", "fault:crash"],
    ),
    (
        "register_under_faults",
        &[
            "register ops",
            "indeterminate register ops",
            "register cas applied",
            "register cas refused",
            "register multi applied",
            "register multi refused",
            "register watch notifications judged",
            "fault:lag",
            "fault:crash",
        ],
    ),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Regressions {
    #[serde(default)]
    seed: Vec<Regression>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Regression {
    scenario: String,
    seed: u64,
    /// The simulation step the seed was found with, if not the scenario's.
    step_ms: Option<u64>,
    #[allow(dead_code)]
    why: String,
}

#[test]
fn every_regression_seed_passes() {
    let path = scenarios_dir().join("regressions.toml");
    let text = std::fs::read_to_string(&path).expect("read scenarios/regressions.toml");
    let list: Regressions =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(!list.seed.is_empty(), "regressions.toml lists no seed");
    for r in &list.seed {
        let mut s =
            scenario::load(&scenarios_dir().join(&r.scenario)).unwrap_or_else(|e| panic!("{e}"));
        if let Some(ms) = r.step_ms {
            s.step = std::time::Duration::from_millis(ms);
        }
        let outcome = runner::run(&s, r.seed);
        assert!(
            outcome.passed(),
            "regression {} seed {}: {:#?}\n{}",
            r.scenario,
            r.seed,
            outcome.violations,
            outcome.trace
        );
    }
}

#[test]
fn the_cli_rejects_bad_arguments_with_usage() {
    for args in [
        vec!["run"],
        vec!["run", "scenarios", "--seeds", "0"],
        vec!["run", "scenarios", "--seeds", "5..2"],
        vec!["run", "scenarios", "--shard", "3/2"],
        vec!["replay", "x.toml"],
        vec!["frobnicate"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_zkit-sim"))
            .args(&args)
            .output()
            .expect("run zkit-sim");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}: no message");
    }
    // A bad scenario file is a located error, not a panic.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let bad = dir.join("bad-scenario.toml");
    std::fs::write(
        &bad,
        "[ensemble]\nservers = 3\nbogus = 1\n[run]\nduration_s = 5\n",
    )
    .expect("write a scenario");
    let out = Command::new(env!("CARGO_BIN_EXE_zkit-sim"))
        .arg("run")
        .arg(&bad)
        .output()
        .expect("run zkit-sim");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad-scenario.toml:3:1: "), "{stderr}");
}

#[test]
fn replay_writes_the_same_trace_and_timeline_every_time() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let scenario = scenarios_dir().join("swarm_lock.toml");
    // A seed whose schedule expires a session: the helper host that does it is a client
    // too, and once took an unseeded client's per-process seed (two replays differed).
    let s = scenario::load(&scenario).unwrap_or_else(|e| panic!("{e}"));
    let seed = (0..100)
        .find(|&seed| {
            runner::schedule(&s, seed)
                .iter()
                .any(|f| f.kind == scenario::FaultKind::Expire)
        })
        .expect("a swarm_lock seed with an expire fault");
    let seed = seed.to_string();
    let mut files = Vec::new();
    for i in 0..2 {
        let trace = dir.join(format!("replay-{i}.txt"));
        let page = dir.join(format!("replay-{i}.html"));
        let out = Command::new(env!("CARGO_BIN_EXE_zkit-sim"))
            .arg("replay")
            .arg(&scenario)
            .args(["--seed", &seed, "--trace"])
            .arg(&trace)
            .arg("--timeline")
            .arg(&page)
            .output()
            .expect("run zkit-sim replay");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("swarm_lock seed {seed}: passed")),
            "{stdout}"
        );
        let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        files.push((read(&trace), read(&page)));
    }
    let trace = String::from_utf8_lossy(&files[0].0);
    let first = trace.lines().next().unwrap_or_default();
    let stamp = first.trim_start().split(" s ").next().unwrap_or_default();
    assert!(
        stamp
            .split_once('.')
            .is_some_and(|(s, us)| s.parse::<u64>().is_ok() && us.len() == 6),
        "trace lines start with simulated time: {first:?}"
    );
    assert_eq!(files[0].0, files[1].0, "two replays wrote different traces");
    assert_eq!(
        files[0].1, files[1].1,
        "two replays wrote different timelines"
    );
    assert!(files[0].1.starts_with(b"<!doctype html>"));
}
